package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pane is a tmux session running a shell command line in a real terminal.
type pane struct {
	t    *testing.T
	sock string
	conf string
}

// newPane starts cmdline in a 120×20 tmux pane that stays after it exits.
// "$PHX" in cmdline is the phx command (this test binary acting as main).
func newPane(t *testing.T, cmdline string) *pane {
	t.Helper()
	return newPaneSized(t, 120, cmdline)
}

func newPaneSized(t *testing.T, width int, cmdline string) *pane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &pane{t: t, sock: filepath.Join(dir, "tmux.sock"), conf: filepath.Join(dir, "tmux.conf")}
	// Set before the session starts: a command may end before a
	// set-option could reach its pane.
	if err := os.WriteFile(p.conf, []byte("set -g remain-on-exit on\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	phx := "env " + runMainEnv + "=1 '" + bin + "'"
	p.tmux("new-session", "-d", "-s", "phx", "-x", strconv.Itoa(width), "-y", "20",
		// The shell traps SIGINT only to outlive phx and print its exit
		// status (tmux does not always report it for a dead pane).
		"trap true INT; "+strings.ReplaceAll(cmdline, "$PHX", phx)+"; echo phx exited with $?")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", p.sock, "kill-server").Run() })
	return p
}

func (p *pane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", p.sock, "-f", p.conf}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen polls the pane (there is no event to wait on) until cond holds,
// and returns it; escapes keeps the colour escapes.
func (p *pane) screen(escapes bool, cond func(string) bool) string {
	p.t.Helper()
	args := []string{"capture-pane", "-p", "-t", "phx"}
	if escapes {
		args = append(args, "-e")
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	ctx, cancel := context.WithTimeout(p.t.Context(), 15*time.Second)
	defer cancel()
	for {
		s := p.tmux(args...)
		if cond(s) {
			return s
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			p.t.Fatalf("screen never matched:\n%s", s)
		}
	}
}

func has(subs ...string) func(string) bool {
	return func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}
}

// TestPresenceTableInTmux runs phx presence on a real terminal (a tmux pane)
// and reads the screen: the table must be redrawn in place, not appended.
func TestPresenceTableInTmux(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	p := newPane(t, "$PHX presence -socket user=watcher "+srv.URL()+" room:lobby")
	p.screen(false, has("1 present", "watcher"))
	_, ann := joinAs(t, srv, "ann")
	s := p.screen(false, has("2 present", "ann "))
	if n := strings.Count(s, "room:lobby  "); n != 1 {
		t.Fatalf("%d table headers on screen, want 1 (redrawn in place):\n%s", n, s)
	}
	if err := ann.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	s = p.screen(false, has("1 present", "last change: -ann"))
	if strings.Count(s, "room:lobby  ") != 1 || strings.Contains(s, "ann   ") {
		t.Fatalf("stale table left on screen:\n%s", s)
	}
	p.tmux("send-keys", "-t", "phx", "C-c")
	s = p.screen(false, has("phx exited with "))
	if !strings.Contains(s, "phx exited with 0") {
		t.Fatalf("want exit status 0 after Ctrl-C:\n%s", s)
	}
}

// TestBenchProgressInTmux: on a terminal the progress is one line redrawn
// in place, cut to the terminal's width (a wrapped line could not be
// redrawn); Ctrl-C ends the hold, closes the sockets and still prints the
// summary.
func TestBenchProgressInTmux(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	p := newPaneSized(t, 70, "$PHX bench -sockets 3 -topic 'echo:{socket}' -event echo -inflight 1 -duration 1h -interval 30ms "+srv.URL())
	// Several redraws later, still one line.
	first := p.screen(false, has("up 3/3  joined 3/3", "push p50"))
	s := p.screen(false, func(s string) bool { return s != first && strings.Contains(s, "joined 3/3") })
	if n := strings.Count(s, "joined 3/3"); n != 1 {
		t.Fatalf("%d progress lines on screen, want 1 redrawn in place:\n%s", n, s)
	}
	p.tmux("send-keys", "-t", "phx", "C-c")
	s = p.screen(false, has("phx exited with "))
	for _, want := range []string{"phx exited with 130", "3 of 3 connected", "interrupted", "push  "} {
		if !strings.Contains(s, want) {
			t.Fatalf("no %q after Ctrl-C:\n%s", want, s)
		}
	}
	if strings.Contains(s, "joined 3/3") {
		t.Fatalf("the progress line was left on screen:\n%s", s)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.WaitActive(ctx, 0); err != nil {
		t.Fatalf("sockets left open: %v", err)
	}
}

// TestColourInTmux: errors are red on a terminal, and plain with NO_COLOR.
func TestColourInTmux(t *testing.T) {
	t.Parallel()
	gone := demoServer(t)
	url := gone.URL()
	gone.Close()
	// The commands wait for a key: what a command writes as the pane is
	// being made may not reach the screen.
	p := newPane(t, "read go; $PHX push "+url+" room:lobby e; NO_COLOR=1 $PHX push "+url+" room:lobby e")
	p.tmux("send-keys", "-t", "phx", "Enter")
	s := p.screen(true, has("phx exited with "))
	lines := strings.Split(s, "\n")
	var errs []string
	for _, l := range lines {
		if strings.Contains(l, "cannot connect") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 2 || !strings.Contains(errs[0], ansiRed) || strings.Contains(errs[1], ansiRed) {
		t.Fatalf("want a red error then a plain one:\n%q\n%q", errs, s)
	}
}
