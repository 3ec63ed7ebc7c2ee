package phxtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// lpAnswer is one long-poll HTTP exchange as a test sees it.
type lpAnswer struct {
	code    int // HTTP status
	header  http.Header
	Status  int      `json:"status"`
	Token   string   `json:"token"`
	Message []string `json:"messages"`
	took    time.Duration
}

// lpDo makes one long-poll request with a raw body and content type.
func lpDo(t *testing.T, method, u, ctype, body string) lpAnswer {
	t.Helper()
	a, err := lpTry(ctxT(t), method, u, ctype, body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// lpTry is lpDo for other goroutines; sent, if not nil, is closed once the
// request has been written.
func lpTry(ctx context.Context, method, u, ctype, body string, sent chan struct{}) (lpAnswer, error) {
	if sent != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) },
		})
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return lpAnswer{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	start := time.Now()
	resp, err := lpClient.Do(req)
	if err != nil {
		return lpAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return lpAnswer{}, err
	}
	a := lpAnswer{code: resp.StatusCode, header: resp.Header, took: time.Since(start)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &a); err != nil {
			return a, fmt.Errorf("%s %s: %s: %w", method, u, b, err)
		}
	}
	return a, nil
}

// lpClient keeps no idle connection: nothing of it outlives a test.
var lpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// pendingPoll starts a poll on u and returns once it has been sent, with a
// moment for the server to start waiting on it. (Were it late, the server
// would answer it as a poll of an ended session, and the test would fail,
// not pass.)
func pendingPoll(t *testing.T, u string) <-chan lpAnswer {
	t.Helper()
	out := make(chan lpAnswer, 1)
	sent := make(chan struct{})
	go func() {
		a, err := lpTry(context.Background(), http.MethodGet, u, "", "", sent)
		if err != nil {
			a.code = -1
		}
		out <- a
	}()
	select {
	case <-sent:
	case <-ctxT(t).Done():
		t.Fatal("poll not sent")
	}
	time.Sleep(20 * time.Millisecond)
	return out
}

// lpOpen opens a session and returns the URL its requests use.
func lpOpen(t *testing.T, srv *phxtest.Server, query string) string {
	t.Helper()
	a := lpDo(t, http.MethodGet, srv.LongPollURL()+"?"+query, "", "")
	if a.Status != 410 || a.Token == "" {
		t.Fatalf("open: %+v", a)
	}
	return srv.LongPollURL() + "?" + query + "&token=" + a.Token
}

// Phoenix reads an ndjson line as text only when it starts with "[" and
// base64-decodes the others: a vsn 1.0.0 object there fails the POST with
// HTTP 500 (no CORS header), nothing of the batch reaches the session, and
// the session lives on. The same object alone as application/json works.
func TestLongPollNdjsonReadAsPhoenixDoes(t *testing.T) {
	t.Parallel()
	srv := demo(t, func(c *phxtest.Config) { c.LongPollWindow = 2 * time.Second })
	u := lpOpen(t, srv, "vsn=1.0.0&user=v1")
	join := `{"topic":"room:v1","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}`
	a := lpDo(t, http.MethodPost, u, "application/x-ndjson", join)
	if a.code != 500 || a.header.Get("Access-Control-Allow-Origin") != "" ||
		a.header.Get("Cache-Control") != "max-age=0, private, must-revalidate" {
		t.Fatalf("v1 object in ndjson: HTTP %d %v", a.code, a.header)
	}
	conn := waitConns(t, srv, 1)[0]
	if got := conn.Received(); len(got) != 0 {
		t.Fatalf("the session received %v", got)
	}
	if a := lpDo(t, http.MethodPost, u, "application/json", join); a.code != 200 || a.Status != 200 ||
		a.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("v1 object as JSON: %+v", a)
	}
	a = lpDo(t, http.MethodGet, u, "", "")
	if a.Status != 200 || len(a.Message) == 0 || !strings.Contains(a.Message[0], `"phx_reply"`) {
		t.Fatalf("poll: %+v", a)
	}

	// On vsn 2.0.0, a batch with one bad line delivers none of its lines.
	u2 := lpOpen(t, srv, "vsn=2.0.0&user=v2")
	a = lpDo(t, http.MethodPost, u2, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`+"\n"+`{"not":"base64"}`)
	if a.code != 500 {
		t.Fatalf("bad batch: %+v", a)
	}
	a = lpDo(t, http.MethodPost, u2, "application/x-ndjson", `[null,"2","phoenix","heartbeat",{}]`)
	if a.Status != 200 {
		t.Fatalf("after the 500: %+v", a)
	}
	a = lpDo(t, http.MethodGet, u2, "", "")
	if a.Status != 200 || len(a.Message) != 1 || !strings.Contains(a.Message[0], `"2"`) {
		t.Fatalf("poll after a failed batch: %+v", a)
	}
}

// After a server-side disconnect the poll in flight runs out its window
// (204, not 410), and the next request waits the resume timeout before the
// server gives up on the session: a GET gets a new session, a POST 410. A
// token never issued is answered at once.
func TestLongPollDisconnectTiming(t *testing.T) {
	t.Parallel()
	const window, resume = 400 * time.Millisecond, 300 * time.Millisecond
	srv := demo(t, func(c *phxtest.Config) {
		c.LongPollWindow, c.LongPollResumeTimeout = window, resume
	})
	u := lpOpen(t, srv, "vsn=2.0.0&user=dc")
	conn := waitConns(t, srv, 1)[0]
	polled := pendingPoll(t, u)
	if srv.Disconnect("user_socket:dc") != 1 {
		t.Fatal("not disconnected")
	}
	<-conn.Done()
	a := <-polled
	if a.Status != 204 || a.took < window-50*time.Millisecond {
		t.Fatalf("pending poll: status %d after %v, want 204 after the %v window", a.Status, a.took, window)
	}
	a = lpDo(t, http.MethodPost, u, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`)
	if a.Status != 410 || a.took < resume {
		t.Fatalf("POST after the session ended: %+v", a)
	}
	a = lpDo(t, http.MethodGet, u, "", "")
	if a.Status != 410 || a.Token == "" || strings.HasSuffix(u, a.Token) || a.took < resume {
		t.Fatalf("GET after the session ended: %+v", a)
	}
	a = lpDo(t, http.MethodPost, srv.LongPollURL()+"?vsn=2.0.0&token=forged", "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`)
	if a.Status != 410 || a.took >= resume {
		t.Fatalf("POST with a token never issued: %+v", a)
	}
}

// A session ends when no poll started within an idle check interval, and
// only polls keep it: POSTs do not.
func TestLongPollIdleSession(t *testing.T) {
	t.Parallel()
	const idle = 500 * time.Millisecond
	srv := demo(t, func(c *phxtest.Config) {
		c.LongPollWindow, c.LongPollIdle = 100*time.Millisecond, idle
		c.LongPollResumeTimeout = time.Millisecond
	})
	start := time.Now()
	u := lpOpen(t, srv, "vsn=2.0.0")
	conn := waitConns(t, srv, 1)[0]
	// Polling keeps it: more than two checks go by.
	for time.Since(start) < 3*idle {
		if a := lpDo(t, http.MethodGet, u, "", ""); a.Status != 204 && a.Status != 200 {
			t.Fatalf("poll: %+v", a)
		}
	}
	select {
	case <-conn.Done():
		t.Fatal("a polled session ended")
	default:
	}
	// POSTs alone do not.
	stop := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-conn.Done():
				return
			default:
			}
			_, _ = lpTry(context.Background(), http.MethodPost, u, "application/x-ndjson", `[null,"1","phoenix","heartbeat",{}]`, nil)
		}
	}()
	<-conn.Done()
	el := time.Since(stop)
	<-done
	if el < idle-100*time.Millisecond || el > 2*idle+time.Second {
		t.Fatalf("ended %v after the last poll, want within (%v, %v]", el, idle, 2*idle)
	}
}

// Stopping the server lets a pending poll run out its window (it gets its
// 204) before the sessions end, as Phoenix's endpoint drains requests; an
// abrupt Down does not wait.
func TestLongPollStopDrainsPoll(t *testing.T) {
	t.Parallel()
	const window = 500 * time.Millisecond
	srv := demo(t, func(c *phxtest.Config) { c.LongPollWindow = window })
	u := lpOpen(t, srv, "vsn=2.0.0")
	polled := pendingPoll(t, u)
	start := time.Now()
	if err := srv.Down(1001); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	a := <-polled
	if a.code != 200 || a.Status != 204 {
		t.Fatalf("pending poll at stop: %+v", a)
	}
	if took < window/2 {
		t.Fatalf("Down took %v, the poll's window is %v", took, window)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	u = lpOpen(t, srv, "vsn=2.0.0")
	polled = pendingPoll(t, u)
	start = time.Now()
	if err := srv.Down(0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > window/2 {
		t.Fatalf("abrupt Down took %v", took)
	}
	if a := <-polled; a.code != -1 {
		t.Fatalf("pending poll at an abrupt Down: %+v", a)
	}
}
