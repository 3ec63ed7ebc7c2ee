package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// lines collects what a command writes, line by line, for a test to wait on.
type lines struct {
	ch  chan string
	mu  sync.Mutex
	buf []byte
	all bytes.Buffer
}

func newLines() *lines { return &lines{ch: make(chan string, 4096)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case l.ch <- string(l.buf[:i]):
		default: // a test that stopped reading has what it needed
		}
		l.buf = l.buf[i+1:]
	}
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// next returns the next line.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	return l.wait(t, "")
}

// wait returns the first line from now on that contains want.
func (l *lines) wait(t *testing.T, want string) string {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case s := <-l.ch:
			if strings.Contains(s, want) {
				return s
			}
		case <-timer.C:
			t.Fatalf("no line containing %q; got:\n%s", want, l.String())
		}
	}
}

// cmd is a subcommand running in the test's process.
type cmd struct {
	stdout, stderr *lines
	stop           context.CancelFunc // stands for SIGINT
	code           chan int
}

func start(t *testing.T, args ...string) *cmd {
	t.Helper()
	return startIn(t, strings.NewReader(""), args...)
}

// startIn runs a command reading stdin.
func startIn(t *testing.T, stdin io.Reader, args ...string) *cmd {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	c := &cmd{stdout: newLines(), stderr: newLines(), stop: stop, code: make(chan int, 1)}
	go func() { c.code <- run(ctx, args, stdin, c.stdout, c.stderr) }()
	t.Cleanup(func() {
		stop()
		<-c.code
	})
	return c
}

// exit waits for the exit code.
func (c *cmd) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.code:
		c.code <- code // for Cleanup
		return code
	case <-time.After(15 * time.Second):
		t.Fatalf("command did not exit; stderr:\n%s", c.stderr.String())
		return -1
	}
}

func demoServer(t *testing.T) *phxtest.Server {
	return phxtest.NewServer(t, phxtest.DemoConfig())
}

func TestListenSeesBroadcast(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	// phxtest sends a join's reply before it subscribes the channel to the
	// topic's broadcasts (Phoenix subscribes first), so a broadcast made as
	// soon as the client has joined may be missed. The server handles one
	// connection's joins in order: once the last topic has joined, the
	// topics before it are subscribed.
	c := start(t, "listen", srv.URL(), "room:lobby", "room:other", "room:lobby", "echo:last", "-event", "news", "-params", `{"device":"cli"}`)
	c.stderr.wait(t, "joined echo:last")
	if err := srv.Broadcast("room:other", "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Broadcast("room:lobby", "ignored", map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Broadcast("room:lobby", "news", map[string]int{"n": 3}); err != nil {
		t.Fatal(err)
	}
	// Order is kept within a topic, not across topics.
	want := map[string]string{"room:other": `{"n":1}`, "room:lobby": `{"n":3}`}
	for range 2 {
		var got eventLine
		if err := json.Unmarshal([]byte(c.stdout.next(t)), &got); err != nil {
			t.Fatal(err)
		}
		if got.Event != "news" || string(got.Payload) != want[got.Topic] {
			t.Fatalf("got %+v, want news %s", got, want[got.Topic])
		}
		delete(want, got.Topic)
		if _, err := time.Parse(time.RFC3339Nano, got.Time); err != nil {
			t.Fatalf("time %q: %v", got.Time, err)
		}
	}
	conn := srv.Conns()[0]
	c.stop()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d after interrupt; stderr:\n%s", code, c.stderr.String())
	}
	leaves := 0
	for _, m := range conn.Received() {
		if m.Event == "phx_leave" {
			leaves++
		}
	}
	if leaves != 3 {
		t.Fatalf("%d phx_leave sent, want 3", leaves)
	}
}

func TestListenReportsReconnect(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "listen", srv.URL(), "room:lobby")
	c.stderr.wait(t, "joined room:lobby")
	srv.Conns()[0].Drop()
	c.stderr.wait(t, "reconnecting in 10ms (attempt 1)")
	c.stderr.wait(t, "connected to ws://")
	c.stderr.wait(t, "joined room:lobby")
	c.stop()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

func TestListenVerboseFrames(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "listen", "-v", "-params", `{"token":"j0in-s3cret"}`, "-socket", "user_token=s0ck-s3cret", srv.URL(), "echo:x")
	c.stderr.wait(t, `> ["1","1","echo:x","phx_join",{"token":"REDACTED"}]`)
	c.stderr.wait(t, `< ["1","1","echo:x","phx_reply",{"response":{},"status":"ok"}]`)
	c.stop()
	c.exit(t) // 0, or 130 when the stop came before Join returned
	if out := c.stderr.String(); strings.Contains(out, "s3cret") {
		t.Fatalf("stderr:\n%s", out)
	}
}

func TestListenLogLevel(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "listen", "-log-level", "info", srv.URL(), "room:lobby")
	c.stderr.wait(t, `level=INFO msg="phx: joined" topic=room:lobby`)
	srv.Conns()[0].Drop()
	c.stderr.wait(t, `level=INFO msg="phx: disconnected" err.code=1006`)
	c.stderr.wait(t, `level=INFO msg="phx: reconnecting" attempt=1`)
	c.stderr.wait(t, `level=INFO msg="phx: connected" url=ws://`)
	c.stderr.wait(t, `level=INFO msg="phx: joined" topic=room:lobby`)
	c.stop()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if out := c.stderr.String(); strings.Contains(out, "phx listen: joined") {
		t.Fatalf("status lines beside the records:\n%s", out)
	}
}

func TestPushLogLevelDebug(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "push", "-log-level", "debug", "-params", "password=p4ss-s3cret", "-token", "t0k-s3cret", srv.URL(), "echo:d", "hi", `{"api_key":"k3y-s3cret"}`)
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, c.stderr.String())
	}
	out := c.stderr.String()
	for _, want := range []string{
		`level=INFO msg="phx: connected"`,
		`level=DEBUG msg="phx: frame" dir=sent topic=echo:d event=phx_join join_ref=1 ref=1`,
		`payload="{\"password\":\"REDACTED\"}"`,
		`level=DEBUG msg="phx: frame" dir=sent topic=echo:d event=hi`,
		`level=DEBUG msg="phx: frame" dir=received topic=echo:d event=phx_reply`,
		`level=INFO msg="phx: channel ended" topic=echo:d err="phx: channel left"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in stderr:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("a secret in stderr:\n%s", out)
	}
	if c := start(t, "push", "-log-level", "loud", srv.URL(), "echo:d", "hi"); c.exit(t) != exitUsage {
		t.Fatal("a bad -log-level is not a usage error")
	}
}

func TestPushOutcomes(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	gone := phxtest.NewServer(t, phxtest.Config{})
	goneURL := gone.URL()
	gone.Close()
	u := srv.URL()
	bare := strings.TrimPrefix(u, "ws://")
	httpURL := "http://" + bare
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"ok", []string{u, "room:lobby", "echo", `{"a":1}`}, exitOK, `{"status":"ok","response":{"a":1}}`, ""},
		{"ok http and /websocket", []string{httpURL + "/websocket", "echo:x", "e"}, exitOK, `{"status":"ok","response":{}}`, ""},
		{"ok host:port", []string{bare, "echo:x", "e", "[1,2]"}, exitOK, `{"status":"ok","response":[1,2]}`, ""},
		{"flags after arguments", []string{u, "echo:x", "e", "-timeout", "5s", "-params", "a=1&b=2"}, exitOK, `{"status":"ok"`, ""},
		{"error reply", []string{u, "room:lobby", "error"}, exitFailure, `{"status":"error","response":{"reason":"nope"}}`, `reply status "error"`},
		{"timeout", []string{"-timeout", "100ms", u, "room:lobby", "noreply"}, exitTimeout, "", "no reply within 100ms"},
		{"no reply", []string{"-no-reply", "-timeout", "100ms", u, "room:lobby", "noreply"}, exitOK, "", ""},
		{"join refused", []string{u, "room:secret", "echo"}, exitJoinRefused, "", `join room:secret refused: error {"reason":"unauthorized"}`},
		{"upgrade refused", []string{"-socket", "token=bad", u, "room:lobby", "echo"}, exitConnect, "", "cannot connect to " + u + "/websocket: the server refused the WebSocket upgrade with HTTP 403"},
		{"no server", []string{goneURL, "room:lobby", "echo"}, exitConnect, "", "cannot connect to " + goneURL + "/websocket"},
		{"channel crashed", []string{u, "room:lobby", "crash"}, exitCrashed, "", "channel crashed on the server"},
		{"payload not JSON", []string{u, "room:lobby", "echo", "hi"}, exitUsage, "", "PAYLOAD must be JSON"},
		{"bad URL", []string{"ftp://x/socket", "room:lobby", "echo"}, exitUsage, "", "scheme must be"},
		{"missing event", []string{u, "room:lobby"}, exitUsage, "", "need URL TOPIC EVENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := start(t, append([]string{"push"}, tc.args...)...)
			if code := c.exit(t); code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, c.stdout.String(), c.stderr.String())
			}
			if !strings.Contains(c.stdout.String(), tc.stdout) || (tc.stdout == "" && c.stdout.String() != "") {
				t.Errorf("stdout %q, want %q", c.stdout.String(), tc.stdout)
			}
			if !strings.Contains(c.stderr.String(), tc.stderr) {
				t.Errorf("stderr %q, want %q", c.stderr.String(), tc.stderr)
			}
		})
	}
}

func TestPushInterrupted(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "push", srv.URL(), "room:lobby", "noreply")
	if _, err := srv.WaitJoined(t.Context(), "room:lobby"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(t.Context(), func() bool { return received(srv, "noreply") }); err != nil {
		t.Fatal(err)
	}
	c.stop()
	if code := c.exit(t); code != exitInterrupted {
		t.Fatalf("exit %d, want %d", code, exitInterrupted)
	}
}

// push -no-reply returns once the frame is written: the server has it, and
// no timeout is waited for.
func TestPushNoReply(t *testing.T) {
	t.Parallel()
	// The room records what it was pushed: once the command has exited its
	// connection may be gone from srv.Conns, so Received cannot tell.
	got := make(chan json.RawMessage, 1)
	cfg := phxtest.DemoConfig()
	cfg.Channels["room:*"] = phxtest.HandlerFuncs{
		InFunc: func(_ context.Context, _ *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
			if in.Event == "noreply" {
				select {
				case got <- in.Payload:
				default:
				}
			}
			return phxtest.NoReply()
		},
	}
	srv := phxtest.NewServer(t, cfg)
	begun := time.Now()
	c := start(t, "push", "-no-reply", "-timeout", "1m", srv.URL(), "room:lobby", "noreply", `{"n":1}`)
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, c.stderr.String())
	}
	if d := time.Since(begun); d > 30*time.Second {
		t.Fatalf("took %v: waited for a reply", d)
	}
	if c.stdout.String() != "" {
		t.Errorf("stdout %q", c.stdout.String())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case p := <-got:
		if string(p) != `{"n":1}` {
			t.Errorf("the server got payload %s", p)
		}
	case <-ctx.Done():
		t.Fatal("the server did not get the push")
	}
}

func received(srv *phxtest.Server, event string) bool {
	for _, conn := range srv.Conns() {
		for _, m := range conn.Received() {
			if m.Event == event {
				return true
			}
		}
	}
	return false
}

// joinAs joins room:lobby as user on its own socket.
func joinAs(t *testing.T, srv *phxtest.Server, user string) (*phx.Socket, *phx.Channel) {
	t.Helper()
	sock, err := phx.Connect(t.Context(), srv.URL(), &phx.Config{Params: url.Values{"user": {user}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sock.Close() })
	ch := sock.Channel("room:lobby", map[string]string{"device": "test"})
	if _, err := ch.Join(t.Context()); err != nil {
		t.Fatal(err)
	}
	return sock, ch
}

func TestPresenceJSONLines(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "presence", "-format", "json", "-socket", "user=watcher", srv.URL(), "room:lobby")
	c.stdout.wait(t, `"event":"sync","count":1,"keys":["watcher"]`)
	_, ann := joinAs(t, srv, "ann")
	line := c.stdout.wait(t, `"event":"join","key":"ann"`)
	var got struct{ Metas []map[string]any }
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Metas) != 1 || got.Metas[0]["device"] != "test" || got.Metas[0]["phx_ref"] == nil {
		t.Fatalf("metas %s", line)
	}
	c.stdout.wait(t, `"event":"sync","count":2,"keys":["watcher","ann"]`)
	bobSock, _ := joinAs(t, srv, "bob")
	c.stdout.wait(t, `"event":"join","key":"bob"`)
	if err := ann.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.stdout.wait(t, `"event":"leave","key":"ann"`)
	c.stdout.wait(t, `"keys":["watcher","bob"]`)
	_ = bobSock.Close()
	c.stdout.wait(t, `"event":"leave","key":"bob"`)
	c.stdout.wait(t, `"event":"sync","count":1,"keys":["watcher"]`)
	c.stop()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

func TestPresenceTable(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "presence", "-format", "table", "-socket", "user=watcher", srv.URL(), "room:lobby")
	c.stdout.wait(t, "watcher      1")
	joinAs(t, srv, "ann")
	c.stdout.wait(t, "last change: +ann")
	c.stdout.wait(t, "ann          1  {\"device\":\"test\",")
	out := c.stdout.String()
	// The first drawing only clears; every later one first moves back up
	// over the previous drawing.
	if !strings.HasPrefix(out, "\x1b[J") || !strings.Contains(out, "F\x1b[J") {
		t.Fatalf("no in-place redraw: %q", out)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	for _, speed := range []string{"50", "0"} {
		t.Run("speed"+speed, func(t *testing.T) {
			t.Parallel()
			testDemo(t, speed)
		})
	}
}

func testDemo(t *testing.T, speed string) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errs strings.Builder
	started := time.Now()
	code := run(ctx, []string{"demo", "-speed", speed}, nil, &out, &errs)
	if code != exitOK {
		t.Fatalf("exit %d; stderr %s\nstdout:\n%s", code, errs.String(), out.String())
	}
	// speed 50: the 13.5-second story in about 0.27 s, pauses included.
	if d := time.Since(started); speed == "50" && d < 265*time.Millisecond {
		t.Errorf("took %v, less than its paced 0.27 s", d)
	}
	for _, want := range []string{
		"ann       join room:lobby → ok",
		"presence  + ann (phone)",
		"ann       push new_msg {\"body\":\"hi bob!\",\"user\":\"ann\"} → ok {}",
		"broadcast new_msg {\"body\":\"hi bob!\",\"user\":\"ann\"}",
		"cy        push error {} → error {\"reason\":\"nope\"}",
		"presence  ~ bob now",
		"presence  - bob",
		"presence  - cy",
		"broadcast broadcast_from",
		// dee's managed client: pushes queued while refused, sent once joined
		"dee       connection refused (HTTP 403)",
		"dee       QueuedPushes: 2 waiting for room:lobby; PushQueued(offline-1): true",
		"dee       joined room:lobby by itself → ok",
		"presence  + dee (watch)",
		"broadcast new_msg {\"body\":\"written offline\",\"user\":\"dee\"}",
		// an unanswered push: timeout, countdown, drop
		"dee       push noreply: no reply in time (attempt 1); will retry at ",
		"dee       RetryIn: noreply is sent again in ",
		"dee       DropPush(unanswered): 1 dropped",
		"dee       push noreply cancelled",
		"dee       PushWaiting(room:lobby): false",
		"present now: you, ann, bob, dee",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The queued pushes went out in the order they were sent, each before
	// the unanswered one was sent.
	order := []string{
		"dee       send new_msg {\"body\":\"written offline\"",
		"dee       send new_msg {\"body\":\"also offline, sent second\"",
		"dee       push new_msg {\"body\":\"written offline\",\"user\":\"dee\"} → ok {}",
		"dee       push new_msg {\"body\":\"also offline, sent second\",\"user\":\"dee\"} → ok {}",
		"dee       send noreply {}",
	}
	last := -1
	for _, line := range order {
		i := strings.Index(out.String(), line)
		if i <= last {
			t.Errorf("%q is missing or out of order:\n%s", line, out.String())
		}
		last = max(last, i)
	}
	if strings.Contains(out.String(), "bad") || strings.Contains(out.String(), "fresh") {
		t.Errorf("a token is in the output:\n%s", out.String())
	}
}

func TestDemoInterrupted(t *testing.T) {
	t.Parallel()
	c := start(t, "demo", "-speed", "10")
	c.stdout.wait(t, "ann       join room:lobby")
	c.stop()
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"listen", "push", "presence", "demo", "serve"} {
		var out strings.Builder
		if code := run(context.Background(), []string{name, "-help"}, nil, &out, io.Discard); code != exitOK {
			t.Errorf("%s -help: exit %d", name, code)
		}
		if !strings.Contains(out.String(), "usage: phx "+name) {
			t.Errorf("%s -help: %q", name, out.String())
		}
		if name == "push" && !strings.Contains(out.String(), "130  interrupted") {
			t.Errorf("push -help does not document exit codes: %q", out.String())
		}
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	var p jsonParams
	for _, s := range []string{`{"a":1,"b":{"c":true}}`, "d=x&e=y=z", "f="} {
		if err := p.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := p.value()
	if want := `{"a":1,"b":{"c":true},"d":"x","e":"y=z","f":""}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"novalue", "=x", `{"a":`, ""} {
		if err := p.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var empty jsonParams
	if v, _ := empty.value(); string(v) != "{}" {
		t.Fatalf("empty params %s", v)
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	v := fs.Bool("v", false, "")
	pos, err := parseArgs(fs, []string{"a", "-v", "b", "--", "-c", "d"})
	if err != nil || !*v || strings.Join(pos, " ") != "a b -c d" {
		t.Fatalf("pos %q v %v err %v", pos, *v, err)
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ws://h:4000/socket":           "ws://h:4000/socket",
		"http://h:4000/socket?token=x": "http://h:4000/socket?token=x",
		"h:4000/socket/websocket":      "ws://h:4000/socket/websocket",
	} {
		if got, err := endpoint(in); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://h/socket", "ws:///socket"} {
		if _, err := endpoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
