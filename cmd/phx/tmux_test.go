package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPresenceTableInTmux runs phx presence on a real terminal (a tmux pane)
// and reads the screen: the table must be redrawn in place, not appended.
func TestPresenceTableInTmux(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	dir := t.TempDir()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := demoServer(t)
	sock := filepath.Join(dir, "tmux.sock")
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", "phx", "-x", "120", "-y", "20",
		// The shell traps SIGINT only to outlive phx and print its exit
		// status (tmux does not always report it for a dead pane).
		"trap true INT; env "+runMainEnv+"=1 '"+bin+"' presence -socket user=watcher "+srv.URL()+" room:lobby; echo phx exited with $?")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	tmux("set-option", "-t", "phx", "remain-on-exit", "on")

	// A pane can only be polled: there is no event to wait on.
	screen := func(cond func(string) bool) string {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		for {
			s := tmux("capture-pane", "-p", "-t", "phx")
			if cond(s) {
				return s
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				t.Fatalf("screen never matched:\n%s", s)
			}
		}
	}
	screen(func(s string) bool { return strings.Contains(s, "1 present") && strings.Contains(s, "watcher") })
	_, ann := joinAs(t, srv, "ann")
	s := screen(func(s string) bool { return strings.Contains(s, "2 present") && strings.Contains(s, "ann ") })
	if n := strings.Count(s, "room:lobby  "); n != 1 {
		t.Fatalf("%d table headers on screen, want 1 (redrawn in place):\n%s", n, s)
	}
	if err := ann.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	s = screen(func(s string) bool {
		return strings.Contains(s, "1 present") && strings.Contains(s, "last change: -ann")
	})
	if strings.Count(s, "room:lobby  ") != 1 || strings.Contains(s, "ann   ") {
		t.Fatalf("stale table left on screen:\n%s", s)
	}
	tmux("send-keys", "-t", "phx", "C-c")
	s = screen(func(s string) bool { return strings.Contains(s, "phx exited with ") })
	if !strings.Contains(s, "phx exited with 0") {
		t.Fatalf("want exit status 0 after Ctrl-C:\n%s", s)
	}
}
