package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// benchRecords splits a -json run's stdout into its interval records and
// its summary, checking that the summary is the last line.
func benchRecords(t *testing.T, out string) ([]intervalRecord, *benchSummary) {
	t.Helper()
	var ivs []intervalRecord
	var sum *benchSummary
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if sum != nil {
			t.Fatalf("a line after the summary: %s", line)
		}
		var k struct{ Kind string }
		if err := json.Unmarshal([]byte(line), &k); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		switch k.Kind {
		case "interval":
			var iv intervalRecord
			if err := json.Unmarshal([]byte(line), &iv); err != nil {
				t.Fatal(err)
			}
			ivs = append(ivs, iv)
		case "summary":
			sum = &benchSummary{}
			if err := json.Unmarshal([]byte(line), sum); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unknown record %q", line)
		}
	}
	if sum == nil {
		t.Fatalf("no summary in %q", out)
	}
	return ivs, sum
}

func TestBenchClosedLoop(t *testing.T) {
	t.Parallel()
	cfg := phxtest.DemoConfig()
	users := make(chan string, 16)
	cfg.Connect = func(info phxtest.ConnectInfo) (phxtest.Socket, error) {
		users <- info.Params.Get("user")
		return phxtest.DemoConnect(info)
	}
	srv := phxtest.NewServer(t, cfg)
	c := start(t, "bench", "-sockets", "5", "-channels", "2", "-topic", "echo:{socket}:{channel}",
		"-event", "echo", "-inflight", "2", "-pushes", "300", "-size", "100", "-interval", "20ms",
		"-socket", "user=u{socket}", "-json", srv.URL())
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	ivs, s := benchRecords(t, c.stdout.String())
	if s.Sockets.Connected != 5 || s.Channels.Joined != 10 || s.Pushes.OK != 300 || s.Pushes.Sent != 300 || len(s.Errors) != 0 {
		t.Fatalf("summary %+v", s)
	}
	if s.Latency.Push.N != 300 || s.Latency.Join.N != 10 || s.Latency.Connect.N != 5 {
		t.Fatalf("histogram counts %d %d %d", s.Latency.Push.N, s.Latency.Join.N, s.Latency.Connect.N)
	}
	// Other tests share the process: its RSS says nothing of this run's
	// sockets, only that it was measured.
	if runtime.GOOS == "linux" && (s.Memory.Base == 0 || s.Memory.RSS == 0 || s.Memory.RSSAfterGC == 0 || s.Memory.Goroutines == 0) {
		t.Fatalf("memory %+v", s.Memory)
	}
	if s.Scenario.PayloadSize < 95 || s.Scenario.PayloadSize > 105 {
		t.Fatalf("payload %d bytes, want about 100", s.Scenario.PayloadSize)
	}
	var fromIntervals uint64
	for _, iv := range ivs {
		fromIntervals += iv.Push.N
	}
	if fromIntervals > 300 {
		t.Fatalf("intervals hold %d pushes, more than the 300 made", fromIntervals)
	}
	// The server saw what the templates said.
	close(users)
	seen := map[string]bool{}
	for u := range users {
		seen[u] = true
	}
	if len(seen) != 5 || !seen["u0"] || !seen["u4"] {
		t.Fatalf("connect params %v", seen)
	}
	// Human summary on stderr with -json.
	if !strings.Contains(c.stderr.String(), "300 sent, 300 ok") {
		t.Fatalf("stderr %s", c.stderr.String())
	}
}

// TestBenchOpenLoopCountsFromIntendedTime: a server that takes 200 ms a
// push, one worker, 50 pushes a second. A closed-loop measure would say
// 200 ms; the open loop times each push from its slot in the schedule, so
// the queue behind the slow server shows, and what could not be sent is
// the backlog.
func TestBenchOpenLoopCountsFromIntendedTime(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "bench", "-event", "slow", "-payload", `{"ms":200}`, "-rate", "50", "-workers", "1",
		"-duration", "1s", "-json", srv.URL())
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	_, s := benchRecords(t, c.stdout.String())
	push := s.Latency.Push
	if push.N < 2 || push.N > 6 {
		t.Fatalf("%d pushes replied in 1 s at 200 ms each with one worker", push.N)
	}
	// The k-th push (from 0) was meant for k*20 ms and replied at about
	// (k+1)*200 ms.
	if push.Max < 500_000 {
		t.Fatalf("max latency %d µs: the wait behind the slow server is not counted", push.Max)
	}
	if s.Pushes.Backlog < 30 || s.Pushes.Intended != 50 {
		t.Fatalf("backlog %d intended %v: want about 45 unsent at 50/s", s.Pushes.Backlog, s.Pushes.Intended)
	}
}

func TestBenchErrorKinds(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	for _, tc := range []struct {
		name string
		args []string
		kind string
		code int
	}{
		{"refused upgrade", []string{"-sockets", "2", "-socket", "token=bad", "-duration", "1ms"}, "refused_upgrade", exitConnect},
		{"refused join", []string{"-topic", "room:secret", "-duration", "1ms"}, "refused_join", exitOK},
		{"reply error", []string{"-event", "error", "-inflight", "1", "-pushes", "3"}, "reply_error", exitOK},
		{"timeout", []string{"-event", "noreply", "-inflight", "1", "-pushes", "2", "-timeout", "100ms"}, "timeout", exitOK},
		{"disconnect", []string{"-event", "crash", "-inflight", "1", "-pushes", "1"}, "disconnect", exitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := start(t, append(append([]string{"bench", "-json"}, tc.args...), srv.URL())...)
			if code := c.exit(t); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, c.stderr.String())
			}
			_, s := benchRecords(t, c.stdout.String())
			if s.Errors[tc.kind] == 0 || len(s.Errors) != 1 || s.FirstErrors[tc.kind] == "" {
				t.Fatalf("errors %v (%v), want only %s", s.Errors, s.FirstErrors, tc.kind)
			}
			if strings.Contains(c.stderr.String(), "token=bad") {
				t.Fatalf("a token in the output: %s", c.stderr.String())
			}
		})
	}
}

func TestBenchListenCountsBroadcasts(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	// Every push of new_msg is broadcast to the room: 3 sockets in one room,
	// 4 pushes each, 12 broadcasts reach each of the 3.
	c := start(t, "bench", "-sockets", "3", "-topic", "room:all", "-socket", "user=u{socket}",
		"-event", "new_msg", "-payload", `{"body":"{seq}"}`, "-inflight", "1", "-pushes", "12",
		"-listen", "new_msg,presence_diff", "-json", srv.URL())
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	_, s := benchRecords(t, c.stdout.String())
	// Broadcasts still on their way when the hold ends are not waited for.
	if n := s.Events["new_msg"].Count; n < 12 || n > 36 {
		t.Fatalf("new_msg counted %d times, want 12 to 36", n)
	}
	if s.Events["presence_diff"].Count == 0 {
		t.Fatalf("events %v", s.Events)
	}
}

func TestBenchMerge(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	dir := t.TempDir()
	var files []string
	for i, n := range []string{"40", "60"} {
		c := start(t, "bench", "-sockets", "2", "-topic", "echo:{socket}", "-event", "echo",
			"-inflight", "1", "-pushes", n, "-json", srv.URL())
		if code := c.exit(t); code != exitOK {
			t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
		}
		f := filepath.Join(dir, []string{"a.json", "b.json"}[i])
		if err := os.WriteFile(f, []byte(c.stdout.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	c := start(t, append([]string{"bench", "merge", "-json"}, files...)...)
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	var m benchSummary
	if err := json.Unmarshal([]byte(c.stdout.String()), &m); err != nil {
		t.Fatal(err)
	}
	if m.Runs != 2 || m.Pushes.OK != 100 || m.Latency.Push.N != 100 || m.Sockets.Connected != 4 || len(m.Hosts) != 2 || m.Scenario.Sockets != 4 {
		t.Fatalf("merged %+v", m)
	}
	text := start(t, append([]string{"bench", "merge", "-histogram"}, files...)...)
	code := text.exit(t)
	out := text.stdout.String()
	if code != exitOK || !strings.Contains(out, "(2 runs on") ||
		!strings.Contains(out, "100 ok") || !strings.Contains(out, "push latency histogram (100 values)") ||
		!strings.Contains(out, "100.0%  █") {
		t.Fatalf("exit %d, merged text:\n%s", code, out)
	}
	bad := start(t, "bench", "merge", filepath.Join(dir, "none.json"))
	if code := bad.exit(t); code != exitFailure {
		t.Fatalf("missing file: exit %d", code)
	}
}

func TestBenchInterruptClosesAndSummarises(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "bench", "-sockets", "4", "-topic", "echo:{socket}", "-duration", "1h", "-interval", "10ms", srv.URL())
	c.stderr.wait(t, "up 4/4  joined 4/4")
	c.stop()
	if code := c.exit(t); code != exitInterrupted {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	out := c.stdout.String()
	if !strings.Contains(out, "interrupted") || !strings.Contains(out, "4 of 4 connected") {
		t.Fatalf("summary:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.WaitActive(ctx, 0); err != nil {
		t.Fatalf("sockets left open: %v", err)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rate", "10", "-inflight", "1", "-event", "e", "x:1"}, "exclude each other"},
		{[]string{"-rate", "10", "x:1"}, "name it"},
		{[]string{"-rate", "ten", "x:1"}, "positive number"},
		{[]string{"-timeout", "0s", "x:1"}, "-timeout must be positive"},
		{[]string{"-params", "{", "x:1"}, "-params"},
		{[]string{"-event", "e", "-rate", "1", "-payload", "{seq", "x:1"}, "-payload is not JSON"},
		{[]string{}, "need one URL"},
	} {
		c := start(t, append([]string{"bench"}, tc.args...)...)
		if code := c.exit(t); code != exitUsage {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		lines := strings.Split(strings.TrimSpace(c.stderr.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], tc.want) || lines[1] != "run 'phx bench -h' for help" {
			t.Errorf("%v: stderr %q", tc.args, c.stderr.String())
		}
	}
}

func TestRaiseFileLimitSaysWhenSocketsExceedIt(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("no open-file limit to raise here")
	}
	if msg := raiseFileLimit(1 << 40); !strings.Contains(msg, "open files") {
		t.Fatalf("no warning for 2^40 sockets: %q", msg)
	}
	if msg := raiseFileLimit(10); msg != "" {
		t.Fatalf("warning for 10 sockets: %q", msg)
	}
}

func TestTruncateKeepsEscapesWhole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc" + ansiReset},
		{"µs µs", 2, "µs" + ansiReset},
		{"a" + ansiRed + "bcd" + ansiReset + "ef", 3, "a" + ansiRed + "bc" + ansiReset},
		{"ab" + ansiRed + "c" + ansiReset, 3, "ab" + ansiRed + "c" + ansiReset},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestBenchRampKeepsItsRate(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	// 6 sockets at 20 a second: five gaps of 50 ms ± 20 %.
	c := start(t, "bench", "-sockets", "6", "-connect-rate", "20", "-jitter", "0.2", "-topic", "echo:{socket}",
		"-duration", "1ms", "-json", srv.URL())
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	_, s := benchRecords(t, c.stdout.String())
	if s.Ramp < 5*0.050*0.8 || s.Sockets.Connected != 6 {
		t.Fatalf("ramp of 6 sockets at 20/s took %.3fs; %d connected", s.Ramp, s.Sockets.Connected)
	}
}

func TestBenchHeartbeatInterval(t *testing.T) {
	t.Parallel()
	srv := demoServer(t)
	c := start(t, "bench", "-heartbeat", "20ms", "-topic", "echo:x", "-duration", "500ms", "-json", srv.URL())
	if code := c.exit(t); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, c.stderr.String())
	}
	_, s := benchRecords(t, c.stdout.String())
	// The join's reply, then a heartbeat's every 20 ms or so; at the
	// default 30 s there would be none.
	if s.Frames.Received < 5 || s.Scenario.Heartbeat != "20ms" {
		t.Fatalf("%d frames in 500 ms with a 20 ms heartbeat (scenario %q)", s.Frames.Received, s.Scenario.Heartbeat)
	}
}
