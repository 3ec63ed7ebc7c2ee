package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	bi, _ := debug.ReadBuildInfo()
	for _, arg := range []string{"version", "-version"} {
		c := start(t, arg)
		if code := c.exit(t); code != exitOK {
			t.Fatalf("%s: exit %d", arg, code)
		}
		out := strings.TrimSpace(c.stdout.String())
		if !strings.HasPrefix(out, "phx "+bi.Main.Path+" ") || !strings.Contains(out, bi.GoVersion) {
			t.Fatalf("%s: %q", arg, out)
		}
	}
}

func TestVersionFormat(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/phxgo/phxgo", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionOf(bi), "phx github.com/phxgo/phxgo v0.3.0, revision abc123 (modified) of 2026-01-02T03:04:05Z, go1.26.8"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	bi = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/phxgo/phxgo"}}
	if got, want := versionOf(bi), "phx github.com/phxgo/phxgo (devel), go1.26.8"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestVersionOfBuiltBinary builds phx as a user does, with VCS stamping
// on, and checks its version against what the toolchain recorded in it
// (go version -m): the module version, and the revision when the checkout
// let the toolchain stamp one.
func TestVersionOfBuiltBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "phx")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=auto")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			if !strings.Contains(string(out), " "+f[2]) {
				t.Errorf("version %q lacks the module version %s", out, f[2])
			}
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			if rev := strings.TrimPrefix(f[1], "vcs.revision="); !strings.Contains(string(out), "revision "+rev) {
				t.Errorf("version %q lacks the revision %s", out, rev)
			}
		}
	}
}

func TestFlagErrorIsOneLineAndAHint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"listen", "-bogus", "x:1", "t"}, "phx listen: flag provided but not defined: -bogus"},
		{[]string{"push", "-timeout", "soon", "x:1", "t", "e"}, `phx push: invalid value "soon" for flag -timeout`},
		{[]string{"presence", "-params", "novalue", "x:1", "t"}, "phx presence: invalid value"},
		{[]string{"serve", "-nope"}, "phx serve: flag provided but not defined: -nope"},
		{[]string{"demo", "-speed", "x"}, "phx demo: invalid value"},
	} {
		c := start(t, tc.args...)
		if code := c.exit(t); code != exitUsage {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		lines := strings.Split(strings.TrimSpace(c.stderr.String()), "\n")
		hint := "run 'phx " + tc.args[0] + " -h' for help"
		if len(lines) != 2 || !strings.HasPrefix(lines[0], tc.want) || lines[1] != hint {
			t.Errorf("%v: stderr %q, want %q and %q", tc.args, c.stderr.String(), tc.want, hint)
		}
	}
}

func TestHelpCommand(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"listen", "push", "shell", "presence", "bench", "serve", "demo"} {
		c := start(t, "help", name)
		if code := c.exit(t); code != exitOK {
			t.Fatalf("help %s: exit %d", name, code)
		}
		if out := c.stdout.String(); !strings.HasPrefix(out, "usage: phx ") || !strings.Contains(out, "phx "+name+" ") || !strings.Contains(c.stdout.String(), "\nflags:\n") {
			t.Fatalf("help %s: %q", name, c.stdout.String())
		}
	}
	c := start(t, "help", "nope")
	if code := c.exit(t); code != exitUsage {
		t.Fatalf("help nope: exit %d", code)
	}
}

// TestCommandTableAligned: the descriptions of 'phx -h' start in one column.
func TestCommandTableAligned(t *testing.T) {
	t.Parallel()
	c := start(t, "-h")
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	col := -1
	n := 0
	for _, line := range strings.Split(c.stdout.String(), "\n") {
		for _, cmd := range commands {
			if !strings.HasPrefix(line, "  "+cmd[0]+" ") {
				continue
			}
			n++
			at := strings.Index(line, cmd[1])
			if col == -1 {
				col = at
			}
			if at != col || at < 0 {
				t.Fatalf("%q: description at %d, others at %d:\n%s", line, at, col, c.stdout.String())
			}
		}
	}
	if n != len(commands) {
		t.Fatalf("%d of %d commands listed:\n%s", n, len(commands), c.stdout.String())
	}
}

func TestTimeoutMustBePositive(t *testing.T) {
	t.Parallel()
	for _, tc := range [][]string{
		{"push", "-timeout", "0", "x:1", "t", "e"},
		{"push", "-timeout", "-1s", "x:1", "t", "e"},
		{"listen", "-timeout", "0s", "x:1", "t"},
		{"presence", "-timeout", "-5ms", "x:1", "t"},
	} {
		c := start(t, tc...)
		if code := c.exit(t); code != exitUsage || !strings.Contains(c.stderr.String(), "-timeout must be positive") {
			t.Errorf("%v: exit %d stderr %q", tc, code, c.stderr.String())
		}
	}
}

func TestPushPayloadFromStdin(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := startIn(t, strings.NewReader(" {\"from\":\"stdin\"}\n"), "push", srv.URL(), "echo:x", "e", "-")
	if code := c.exit(t); code != exitOK || strings.TrimSpace(c.stdout.String()) != `{"status":"ok","response":{"from":"stdin"}}` {
		t.Fatalf("exit %d stdout %q stderr %q", code, c.stdout.String(), c.stderr.String())
	}
	bad := startIn(t, strings.NewReader("not json"), "push", srv.URL(), "echo:x", "e", "-")
	if code := bad.exit(t); code != exitUsage || !strings.Contains(bad.stderr.String(), "not JSON") {
		t.Fatalf("exit %d stderr %q", code, bad.stderr.String())
	}
}

func TestShellPushesEachLine(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	in, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	c := startIn(t, in, "shell", "-socket", "user=ann", srv.URL(), "room:lobby")
	_, _ = io.WriteString(w, "echo {\"a\":1}\n")
	c.stdout.wait(t, `{"status":"ok","response":{"a":1}}`)
	_, _ = io.WriteString(w, "new_msg {\"body\":\"hi\"}\n")
	// The broadcast to the room comes back as an event line, and the reply
	// as a reply line, each once.
	c.stdout.wait(t, `"event":"new_msg","payload":{"body":"hi"}`)
	_, _ = io.WriteString(w, "{\"no\":\"event\"}\nerror\n")
	c.stderr.wait(t, "a line is EVENT [PAYLOAD]")
	c.stdout.wait(t, `{"status":"error","response":{"reason":"nope"}}`)
	w.Close()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
}

func TestPushInteractiveWithEvent(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := startIn(t, strings.NewReader("{\"n\":1}\n\n[2]\n"), "push", "-i", srv.URL(), "echo:x", "again")
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	if got := c.stdout.String(); got != "{\"status\":\"ok\",\"response\":{\"n\":1}}\n{\"status\":\"ok\",\"response\":[2]}\n" {
		t.Fatalf("stdout %q", got)
	}
}

func TestNotPhoenixServer(t *testing.T) {
	t.Parallel()
	page := `<!DOCTYPE html><html><head><title>Welcome to
nginx!</title></head><body>` + strings.Repeat("<p>lorem ipsum</p>\n", 100) + `</body></html>`
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok/socket/websocket" {
			_, _ = io.WriteString(w, page) // 200, and no upgrade
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, page)
	}))
	t.Cleanup(web.Close)
	for path, want := range map[string]string{
		"/socket":    "HTTP 404 Not Found (Welcome to nginx!); no Phoenix socket answers there",
		"/ok/socket": "HTTP 200 OK (Welcome to nginx!); no Phoenix socket answers there",
	} {
		c := start(t, "push", web.URL+path+"?token=s3cret", "room:lobby", "e")
		if code := c.exit(t); code != exitConnect {
			t.Fatalf("%s: exit %d", path, code)
		}
		errs := c.stderr.String()
		if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, want) || strings.Contains(errs, "<") || strings.Contains(errs, "s3cret") {
			t.Fatalf("%s: stderr %q, want one line with %q", path, errs, want)
		}
	}
}

// TestInterruptDuringHangingDial: a server that accepts TCP and never
// answers the upgrade. Ctrl-C must end the command at once, not after the
// handshake timeout.
func TestInterruptDuringHangingDial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- conn
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for conn := range accepted {
			conn.Close()
		}
	})
	for _, args := range [][]string{
		// -timeout bounds the handshake the library goes on with after
		// the command has returned.
		{"push", "-timeout", "1s", ln.Addr().String() + "/socket", "room:lobby", "e"},
		{"listen", "-timeout", "1s", ln.Addr().String() + "/socket", "room:lobby"},
		{"bench", "-timeout", "1s", "-sockets", "3", "-duration", "1h", ln.Addr().String() + "/socket"},
	} {
		c := start(t, args...)
		select {
		case <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatal("no connection")
		}
		stopped := time.Now()
		c.stop()
		code := c.exit(t)
		if d := time.Since(stopped); d > 2*time.Second {
			t.Fatalf("%s took %v to stop", args[0], d)
		}
		if code != exitInterrupted {
			t.Fatalf("%s: exit %d; stderr %s", args[0], code, c.stderr.String())
		}
	}
}

// TestListenReconnectLinesAndGapMarker: one status line per reconnect
// attempt, no token in any of them, and a gap record in the JSON Lines
// between the two join sessions.
func TestListenReconnectLinesAndGapMarker(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "listen", "-socket", "token=s3cret", "-event", "news", srv.URL()+"?key=k3y", "room:lobby")
	c.stderr.wait(t, "joined room:lobby")
	if err := srv.Broadcast("room:lobby", "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	c.stdout.wait(t, `{"n":1}`)
	if err := srv.Down(0); err != nil {
		t.Fatal(err)
	}
	c.stderr.wait(t, "(attempt 3)")
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	c.stderr.wait(t, "joined room:lobby")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.WaitJoined(ctx, "room:lobby"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Broadcast("room:lobby", "news", map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	gap := c.stdout.next(t)
	var g gapLine
	if err := json.Unmarshal([]byte(gap), &g); err != nil || !g.Gap || g.Topic != "room:lobby" || g.JoinRef == "" {
		t.Fatalf("want a gap record, got %q", gap)
	}
	if next := c.stdout.next(t); !strings.Contains(next, `{"n":2}`) {
		t.Fatalf("after the gap: %q", next)
	}
	c.stop()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	errs := c.stderr.String()
	if strings.Contains(errs, "s3cret") || strings.Contains(errs, "k3y") {
		t.Fatalf("a secret in the status lines:\n%s", errs)
	}
	if strings.Contains(errs, "\x1b[") {
		t.Fatalf("colour on a pipe:\n%q", errs)
	}
	var attempts int
	for _, line := range strings.Split(errs, "\n") {
		if strings.Contains(line, "disconnected") != strings.Contains(line, "reconnecting in") {
			t.Fatalf("a reconnect attempt told in two lines:\n%s", errs)
		}
		if strings.Contains(line, "reconnecting in") {
			attempts++
		}
	}
	// A drop, then two refused attempts at least, each one line.
	if attempts < 3 || strings.Count(errs, "connection refused") < 2 {
		t.Fatalf("%d reconnect lines, want 3 or more:\n%s", attempts, errs)
	}
}

func TestRedactURLs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"phx: dial ws://h:4000/socket/websocket?token=abc&vsn=2.0.0: refused": "phx: dial ws://h:4000/socket/websocket?token=REDACTED&vsn=2.0.0: refused",
		"connected to wss://u:pw@h/socket?a=1&b=":                             "connected to wss://u:REDACTED@h/socket?a=REDACTED&b=",
		"no URL here, token=abc":                                              "no URL here, token=abc",
		"(http://h/x?k=v)":                                                    "(http://h/x?k=REDACTED)",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestColourOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if colorOn(f) || colorOn(io.Discard) {
		t.Fatal("colour on a file")
	}
	if paint(false, ansiRed, "x") != "x" || paint(true, ansiRed, "x") != "\x1b[31mx\x1b[0m" {
		t.Fatal("paint")
	}
}
