package phx_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/wire"
)

// Long-poll and fallback transports against phxtest over loopback HTTP.

// lpServer serves phxtest's demo application behind a handler that can
// break the WebSocket endpoint, and counts the requests of each transport.
type lpServer struct {
	*phxtest.Server
	url        string // ws://127.0.0.1:PORT/socket
	ws, lp     atomic.Int64
	gets       chan struct{} // a signal per long-poll GET, dropped when full
	posts      chan struct{} // a signal per long-poll POST, dropped when full
	mu         sync.Mutex
	authTokens []string // X-Phoenix-AuthToken of every long-poll GET
	// postGate, when set, holds every long-poll POST until it is closed.
	postGate atomic.Pointer[chan struct{}]
	reqs     []lpRequest  // every long-poll request, under mu
	failed   atomic.Int64 // long-poll answers with an HTTP status of 500 or more
}

// lpPhoenixTiming runs the long-poll tests against phxtest's default
// timing, Phoenix's (a 10 s poll window, a 2 s resume timeout): set
// PHXGO_LP_PHOENIX_TIMING=1. By default the windows are short, so that a
// lost session is noticed in a fraction of a second.
var lpPhoenixTiming = os.Getenv("PHXGO_LP_PHOENIX_TIMING") != ""

// lpTiming gives cfg the long-poll timing of the run, unless the test
// chose a window itself.
func lpTiming(cfg phxtest.Config) phxtest.Config {
	if cfg.LongPollWindow == 0 && !lpPhoenixTiming {
		cfg.LongPollWindow = 100 * time.Millisecond
		cfg.LongPollResumeTimeout = 100 * time.Millisecond
	}
	return cfg
}

// lpRequestTimeout bounds a long-poll request of the tests: it must exceed
// the server's window.
func lpRequestTimeout() time.Duration {
	if lpPhoenixTiming {
		return 0 // phoenix.js's 20 s
	}
	return 5 * time.Second
}

// lpCtx bounds a test in which a long-poll session is lost: with
// Phoenix's timing the client notices 2 to 12 s later.
func lpCtx(t *testing.T) context.Context {
	if !lpPhoenixTiming {
		return testCtx(t)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// statusRecorder remembers the HTTP status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// vsns runs f as a subtest under each serializer.
func vsns(t *testing.T, f func(t *testing.T, vsn string)) {
	for _, vsn := range []string{"2.0.0", "1.0.0"} {
		t.Run("vsn="+vsn, func(t *testing.T) {
			t.Parallel()
			f(t, vsn)
		})
	}
}

// wsMode says what the WebSocket endpoint does.
// lpRequest is a long-poll request as the server received it.
type lpRequest struct {
	method string
	query  url.Values
	header http.Header
	body   string
}

type wsMode int

const (
	wsServe     wsMode = iota // phxtest answers
	wsNotFound                // 404, no upgrade
	wsHang                    // never answers
	wsBlackhole               // upgrades, then passes no frame
)

func newLPServer(t *testing.T, cfg phxtest.Config, mode wsMode) *lpServer {
	t.Helper()
	srv := phxtest.New(lpTiming(cfg))
	s := &lpServer{Server: srv, gets: make(chan struct{}, 64), posts: make(chan struct{}, 64)}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/socket/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/longpoll"):
			s.lp.Add(1)
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			s.mu.Lock()
			s.reqs = append(s.reqs, lpRequest{r.Method, r.URL.Query(), r.Header.Clone(), string(body)})
			s.mu.Unlock()
			if r.Method == http.MethodPost {
				select {
				case s.posts <- struct{}{}:
				default:
				}
			}
			if g := s.postGate.Load(); g != nil && r.Method == http.MethodPost {
				// The body has been read: the server notices a client
				// that gives up.
				select {
				case <-*g:
				case <-r.Context().Done():
					return
				}
			}
			if r.Method == http.MethodGet {
				s.mu.Lock()
				s.authTokens = append(s.authTokens, r.Header.Get("X-Phoenix-AuthToken"))
				s.mu.Unlock()
				select {
				case s.gets <- struct{}{}:
				default:
				}
			}
			rec := &statusRecorder{ResponseWriter: w}
			srv.ServeHTTP(rec, r)
			if rec.code >= 500 {
				s.failed.Add(1)
			}
			return
		case strings.HasSuffix(r.URL.Path, "/websocket"):
			s.ws.Add(1)
			switch mode {
			case wsNotFound:
				http.NotFound(w, r)
				return
			case wsHang:
				<-r.Context().Done()
				return
			case wsBlackhole:
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}
		}
		srv.ServeHTTP(w, r)
	})
	hts := httptest.NewServer(mux)
	t.Cleanup(hts.Close)
	t.Cleanup(srv.Close) // before hts.Close: it ends the sessions that hold polls
	s.url = "ws://" + hts.Listener.Addr().String() + "/socket"
	return s
}

// lpDial connects to s over long-poll, unless cfg names a transport or asks
// for the fallback.
func lpDial(t *testing.T, s *lpServer, cfg *phx.Config) *phx.Socket {
	t.Helper()
	if cfg == nil {
		cfg = &phx.Config{}
	}
	if cfg.Transport == nil && cfg.LongPollFallback == 0 {
		cfg.Transport = &phx.LongPoll{Timeout: lpRequestTimeout()}
	}
	sock, err := phx.Connect(context.Background(), s.url, fast(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return sock
}

func onlyTransport(t *testing.T, ctx context.Context, s *lpServer, want string) {
	t.Helper()
	c, err := s.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport() != want {
		t.Fatalf("transport %s, want %s", c.Transport(), want)
	}
}

func TestLongPollJoinPushBroadcastPresence(t *testing.T) {
	t.Parallel()
	vsns(t, testLongPollJoinPushBroadcastPresence)
}

func testLongPollJoinPushBroadcastPresence(t *testing.T, vsn string) {
	ctx := testCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	sock := lpDial(t, s, &phx.Config{Vsn: vsn, Params: url.Values{"user": {"ann"}}})
	onlyTransport(t, ctx, s, "longpoll")
	if s.ws.Load() != 0 {
		t.Fatal("the long-poll transport touched the WebSocket endpoint")
	}

	ch := sock.Channel("room:lp", map[string]string{"device": "lp"})
	state := mustSub(t, ch, phx.Events("presence_state"))
	defer state.Close()
	msgs := mustSub(t, ch, phx.Events("n"))
	defer msgs.Close()
	bins := mustSub(t, ch, phx.Events("binary"))
	defer bins.Close()
	resp, err := ch.Join(ctx)
	if err != nil || !bytes.Contains(resp, []byte(`"device":"lp"`)) {
		t.Fatalf("join = %s, %v", resp, err)
	}
	select {
	case m := <-state.C():
		if !bytes.Contains(m.Payload, []byte(`"ann":{"metas":[{`)) {
			t.Fatalf("presence_state %s", m.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no presence_state")
	}

	r, err := ch.Push(ctx, "echo", map[string]int{"n": 1})
	if err != nil || r.Status != "ok" || string(r.Response) != `{"n":1}` {
		t.Fatalf("echo = %+v, %v", r, err)
	}
	// One message a line: a payload spread over lines is compacted.
	r, err = ch.Push(ctx, "echo", json.RawMessage("{\n  \"a\": [1,\r\n 2]\n}"))
	if err != nil || string(r.Response) != `{"a":[1,2]}` {
		t.Fatalf("multi-line echo = %+v, %v", r, err)
	}
	_, err = ch.Push(ctx, "error", nil)
	if re, ok := phx.AsReplyError(err); !ok || string(re.Response) != `{"reason":"nope"}` {
		t.Fatalf("error = %v", err)
	}
	if vsn == "2.0.0" { // vsn 1.0.0 has no binary frames
		// Binary: sent as a base64 line, answered raw (these bytes are UTF-8).
		r, err = ch.Push(ctx, "echo", phx.Binary("bin\x01"))
		if err != nil || !r.Binary || string(r.Response) != "bin\x01" {
			t.Fatalf("binary echo = %+v, %v", r, err)
		}
		r, err = ch.Push(ctx, "binary", phx.Binary("raw"))
		if err != nil || !r.Binary || string(r.Response) != "raw" {
			t.Fatalf("binary = %+v, %v", r, err)
		}
		select {
		case m := <-bins.C():
			if !m.Binary || string(m.Payload) != "raw" {
				t.Fatalf("binary push %+v", m)
			}
		case <-ctx.Done():
			t.Fatal("no binary push")
		}
	}
	if _, err := sock.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// Broadcasts arrive in order, many per poll.
	const n = 50
	for i := range n {
		if err := s.Broadcast("room:lp", "n", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case m := <-msgs.C():
			if want := fmt.Sprintf(`{"i":%d}`, i); string(m.Payload) != want {
				t.Fatalf("broadcast %d: %s", i, m.Payload)
			}
		case <-ctx.Done():
			t.Fatalf("broadcast %d missing", i)
		}
	}

	// Concurrent pushes share POSTs and all get their replies.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := ch.Push(ctx, "echo", map[string]int{"k": i})
			if err == nil && string(r.Response) != fmt.Sprintf(`{"k":%d}`, i) {
				err = fmt.Errorf("reply %s to %d", r.Response, i)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	_, err = sock.Channel("room:secret", nil).Join(ctx)
	if re, ok := phx.AsReplyError(err); !ok || string(re.Response) != `{"reason":"unauthorized"}` {
		t.Fatalf("refused join = %v", err)
	}
	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.WaitConn(ctx, 1); c.Vsn() != vsn {
		t.Fatal(c.Vsn())
	}
	if n := s.failed.Load(); n != 0 || sock.Stats().Reconnects != 0 {
		t.Fatalf("%d long-poll requests failed, %+v", n, sock.Stats())
	}
}

// vsn 1.0.0 messages go one per POST as application/json, the only form in
// which Phoenix reads a JSON object (it base64-decodes every ndjson line
// that does not start with "["), even when several are queued at once.
func TestLongPollVsn1OnePerPost(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	gate := make(chan struct{})
	s.postGate.Store(&gate)
	c, err := (&phx.LongPoll{}).Dial(ctx, s.url+"/websocket?vsn=1.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hb := func(i int) []byte {
		return fmt.Appendf(nil, `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"%d","join_ref":null}`, i)
	}
	if err := c.WriteMessage(wire.Text, hb(1), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select { // that POST is held: the next two queue behind it
	case <-s.posts:
	case <-ctx.Done():
		t.Fatal("no POST")
	}
	for i := 2; i <= 3; i++ {
		if err := c.WriteMessage(wire.Text, hb(i), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	for i := 1; i <= 3; i++ {
		_, b, err := c.ReadMessage()
		if err != nil || !bytes.Contains(b, fmt.Appendf(nil, `"ref":"%d"`, i)) {
			t.Fatalf("reply %d: %s %v", i, b, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var posts []lpRequest
	for _, r := range s.reqs {
		if r.method == http.MethodPost {
			posts = append(posts, r)
		}
	}
	if len(posts) != 3 {
		t.Fatalf("%d POSTs for 3 messages", len(posts))
	}
	for i, p := range posts {
		if p.header.Get("Content-Type") != "application/json" || p.body != string(hb(i+1)) {
			t.Fatalf("POST %d: %s %q", i, p.header.Get("Content-Type"), p.body)
		}
	}
	if n := s.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed", n)
	}
}

// Empty poll windows (204) are followed by the next poll; the session
// stays usable.
func TestLongPollEmptyWindows(t *testing.T) {
	t.Parallel()
	vsns(t, testLongPollEmptyWindows)
}

func testLongPollEmptyWindows(t *testing.T, vsn string) {
	ctx := testCtx(t)
	cfg := phxtest.DemoConfig()
	cfg.LongPollWindow = 10 * time.Millisecond
	s := newLPServer(t, cfg, wsServe)
	sock := lpDial(t, s, &phx.Config{Vsn: vsn})
	ch := sock.Channel("room:idle", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	for range 8 { // several empty windows, whatever was left from the join
		select {
		case <-s.gets:
		case <-ctx.Done():
			t.Fatal("polling stopped")
		}
	}
	if _, err := ch.Push(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Accepted != 1 {
		t.Fatalf("sessions %+v", st)
	}
}

// A session the server ends (disconnect, restart, drop) makes the socket
// reconnect with a new session and rejoin its channels.
func TestLongPollSessionEndReconnects(t *testing.T) {
	t.Parallel()
	vsns(t, testLongPollSessionEndReconnects)
}

func testLongPollSessionEndReconnects(t *testing.T, vsn string) {
	for _, tc := range []struct {
		name string
		end  func(s *lpServer, c *phxtest.Conn) error
		code int
	}{
		{"disconnect", func(s *lpServer, _ *phxtest.Conn) error {
			if s.Disconnect("user_socket:lp") != 1 {
				return errors.New("no socket disconnected")
			}
			return nil
		}, 3410},
		{"drop", func(_ *lpServer, c *phxtest.Conn) error { c.Drop(); return nil }, 3410},
		{"restart", func(s *lpServer, _ *phxtest.Conn) error { return s.Restart() }, 3410},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := lpCtx(t)
			var s *lpServer
			if tc.name == "restart" {
				// Restart needs phxtest's own listener.
				srv := phxtest.NewServer(t, lpTiming(phxtest.DemoConfig()))
				s = &lpServer{Server: srv, url: srv.URL(), gets: make(chan struct{}, 64)}
			} else {
				s = newLPServer(t, phxtest.DemoConfig(), wsServe)
			}
			sock := lpDial(t, s, &phx.Config{Vsn: vsn, Params: url.Values{"user": {"lp"}}})
			ch := sock.Channel("room:again", nil)
			msgs := mustSub(t, ch, phx.Events("new_msg"))
			defer msgs.Close()
			if _, err := ch.Join(ctx); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:again" })
			c, err := s.WaitJoined(ctx, "room:again")
			if err != nil {
				t.Fatal(err)
			}
			ended := time.Now()
			if err := tc.end(s, c); err != nil {
				t.Fatal(err)
			}
			d := waitStatus[phx.Disconnected](t, ctx, sock, nil)
			noticed := time.Since(ended)
			// A restart may also surface as a failed request (1006).
			if !d.Reconnect || (d.Code != tc.code && !(tc.name == "restart" && d.Code == 1006)) {
				t.Fatalf("%+v", d)
			}
			// As with Phoenix, the server does not tell the client: it
			// learns of the loss from its next request, which the server
			// answers after the resume timeout, at most a poll window
			// later.
			window, resume := 100*time.Millisecond, 100*time.Millisecond
			if lpPhoenixTiming {
				window, resume = 10*time.Second, 2*time.Second
			}
			if tc.name != "restart" && (noticed < resume-20*time.Millisecond || noticed > window+resume+2*time.Second) {
				t.Fatalf("the loss was noticed after %v, want %v to %v", noticed, resume, window+resume)
			}
			t.Logf("the loss was noticed after %v", noticed)
			waitStatus[phx.Connected](t, ctx, sock, nil)
			waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:again" })
			if _, err := ch.Push(ctx, "new_msg", map[string]int{"after": 1}); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-msgs.C():
				if string(m.Payload) != `{"after":1}` {
					t.Fatal(m)
				}
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			if c2, _ := s.WaitJoined(ctx, "room:again"); c2 == c || c2.Transport() != "longpoll" {
				t.Fatal("rejoined on the old session")
			}
		})
	}
}

func TestLongPollRefused(t *testing.T) {
	t.Parallel()
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	for _, tc := range []struct {
		name  string
		setup func()
		cfg   phx.Config
	}{
		{"connect hook", func() {}, phx.Config{Params: url.Values{"token": {"bad"}}}},
		{"refuse next", func() { s.RefuseNext(1) }, phx.Config{}},
	} {
		tc.setup()
		tc.cfg.Transport = &phx.LongPoll{}
		_, err := phx.Connect(context.Background(), s.url, &tc.cfg)
		var de *phx.DialError
		if !errors.As(err, &de) || de.Status != 403 || !de.Unauthorized() {
			t.Fatalf("%s: Connect = %v", tc.name, err)
		}
	}
	// A server without a long-poll route: the HTTP status.
	hts := httptest.NewServer(http.NotFoundHandler())
	defer hts.Close()
	_, err := phx.Connect(context.Background(), "ws://"+hts.Listener.Addr().String()+"/socket", &phx.Config{Transport: &phx.LongPoll{}})
	var de *phx.DialError
	if !errors.As(err, &de) || de.Status != 404 {
		t.Fatalf("no route: Connect = %v", err)
	}
}

// The session token replaces a connect parameter called token after the
// session opened, and an auth token goes in X-Phoenix-AuthToken.
func TestLongPollTokens(t *testing.T) {
	t.Parallel()
	vsns(t, testLongPollTokens)
}

func testLongPollTokens(t *testing.T, vsn string) {
	ctx := testCtx(t)
	cfg := phxtest.DemoConfig()
	var mu sync.Mutex
	var infos []phxtest.ConnectInfo
	cfg.Connect = func(info phxtest.ConnectInfo) (phxtest.Socket, error) {
		mu.Lock()
		infos = append(infos, info)
		mu.Unlock()
		return phxtest.DemoConnect(info)
	}
	s := newLPServer(t, cfg, wsServe)
	sock := lpDial(t, s, &phx.Config{Vsn: vsn, AuthToken: "s3cr3t?", Params: url.Values{"token": {"mine"}}})
	if _, err := sock.Channel("room:tok", nil).Join(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(infos) != 1 || infos[0].AuthToken != "s3cr3t?" || infos[0].Params.Get("token") != "mine" || infos[0].Transport != "longpoll" {
		t.Fatalf("connect infos %+v", infos)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.authTokens) < 2 {
		t.Fatalf("%d polls", len(s.authTokens))
	}
	for _, tok := range s.authTokens {
		if tok != "s3cr3t?" {
			t.Fatalf("X-Phoenix-AuthToken %q", s.authTokens)
		}
	}
}

// Close aborts the poll in flight (the server would hold it for its whole
// window) and returns once the connection's goroutines have stopped.
func TestLongPollCloseAbortsPoll(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cfg := phxtest.DemoConfig()
	cfg.LongPollWindow = time.Minute
	s := newLPServer(t, cfg, wsServe)
	c, err := (&phx.LongPoll{}).Dial(ctx, s.url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(wire.Text, []byte(`[null,"1","phoenix","heartbeat",{}]`), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	op, b, err := c.ReadMessage()
	if err != nil || op != wire.Text || !bytes.Contains(b, []byte(`"phx_reply"`)) {
		t.Fatalf("read %d %s %v", op, b, err)
	}
	for range 3 { // the opening GET, the poll that got the reply, the next one
		<-s.gets
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("read after Close")
	}
	if err := c.WriteMessage(wire.Text, []byte(`[]`), time.Now().Add(time.Second)); err == nil {
		t.Fatal("write after Close")
	}
	_ = c.Close() // idempotent
}

// A dial bounded by a context that ends afterwards leaves the connection
// running: the connection has its own life.
func TestLongPollOutlivesDialContext(t *testing.T) {
	t.Parallel()
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	dctx, cancel := context.WithCancel(context.Background())
	c, err := (&phx.LongPoll{}).Dial(dctx, s.url+"/websocket?vsn=2.0.0", nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(wire.Text, []byte(`[null,"7","phoenix","heartbeat",{}]`), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.ReadMessage(); err != nil || !bytes.Contains(b, []byte(`"7"`)) {
		t.Fatalf("read %s %v", b, err)
	}
}

// The session's end is read after the messages polled before it, as a
// *CloseError.
func TestLongPollSessionGoneError(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	c, err := (&phx.LongPoll{}).Dial(ctx, s.url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := s.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendRaw(wire.Text, []byte(`[null,null,"t","last",{}]`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.ReadMessage(); err != nil || !bytes.Contains(b, []byte(`"last"`)) {
		t.Fatalf("read %s %v", b, err)
	}
	sc.Drop()
	_, _, err = c.ReadMessage()
	var ce *phx.CloseError
	if !errors.As(err, &ce) || ce.Code != 3410 || ce.Reason != "session_gone" {
		t.Fatalf("read after the session ended: %v", err)
	}
	if err := c.WriteMessage(wire.Text, []byte(`[]`), time.Now().Add(time.Second)); phx.CloseCode(err) != 3410 {
		t.Fatalf("write after the session ended: %v", err)
	}
}

func TestFallback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mode wsMode
		want string
	}{
		{"websocket works", wsServe, "websocket"},
		{"websocket 404", wsNotFound, "longpoll"},
		{"websocket hangs", wsHang, "longpoll"},
		{"websocket passes no frames", wsBlackhole, "longpoll"},
	} {
		for _, viaConfig := range []bool{false, true} {
			name := tc.name
			if viaConfig {
				name += " (Config.LongPollFallback)"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testFallback(t, tc.mode, tc.want, viaConfig)
			})
		}
	}
}

func testFallback(t *testing.T, mode wsMode, want string, viaConfig bool) {
	ctx := lpCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), mode)
	cfg := &phx.Config{Params: url.Values{"user": {"fb"}}}
	if viaConfig {
		cfg.LongPollFallback = 200 * time.Millisecond
	} else {
		cfg.Transport = phx.Fallback(nil, &phx.LongPoll{Timeout: lpRequestTimeout()}, 200*time.Millisecond)
	}
	sock := lpDial(t, s, cfg)
	onlyTransport(t, ctx, s, want)
	ch := sock.Channel("room:fb", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := ch.Push(ctx, "echo", map[string]int{"x": 1}); err != nil || string(r.Response) != `{"x":1}` {
		t.Fatalf("echo = %+v, %v", r, err)
	}
	if want == "websocket" {
		if s.lp.Load() != 0 {
			t.Fatal("fell back from a working WebSocket")
		}
		// The check's heartbeat reply stays inside the transport.
		if st := sock.Stats(); st.Unrouted != 0 {
			t.Fatalf("%+v", st)
		}
		return
	}
	// A reconnect stays on long-poll: no new WebSocket attempt.
	wsBefore := s.ws.Load()
	if s.Disconnect("user_socket:fb") != 1 {
		t.Fatal("no socket disconnected")
	}
	waitStatus[phx.Disconnected](t, ctx, sock, nil)
	waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:fb" })
	if _, err := ch.Push(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	if s.ws.Load() != wsBefore {
		t.Fatal("a reconnect tried the WebSocket again")
	}
	for _, c := range s.Conns() {
		if c.Transport() != "longpoll" {
			t.Fatal(c.Transport())
		}
	}
}

// A refused upgrade is the server's answer, not a broken network: no
// fallback.
func TestFallbackNotFromRefusal(t *testing.T) {
	t.Parallel()
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	s.RefuseNext(1)
	tr := phx.Fallback(nil, nil, time.Second)
	_, err := phx.Connect(context.Background(), s.url, &phx.Config{Transport: tr})
	var de *phx.DialError
	if !errors.As(err, &de) || de.Status != 403 {
		t.Fatalf("Connect = %v", err)
	}
	if s.lp.Load() != 0 {
		t.Fatal("fell back from a 403")
	}
	// The long-poll's own refusal is a 403 too.
	s2 := newLPServer(t, phxtest.DemoConfig(), wsNotFound)
	_, err = phx.Connect(context.Background(), s2.url, &phx.Config{Transport: phx.Fallback(nil, nil, time.Second), Params: url.Values{"token": {"bad"}}})
	if !errors.As(err, &de) || de.Status != 403 || s2.lp.Load() != 1 {
		t.Fatalf("Connect = %v after %d long-poll requests", err, s2.lp.Load())
	}
}

// The dial's context bounds the fallback too.
func TestFallbackContext(t *testing.T) {
	t.Parallel()
	s := newLPServer(t, phxtest.DemoConfig(), wsHang)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := phx.Fallback(nil, nil, time.Minute).Dial(ctx, s.url+"/websocket?vsn=2.0.0", nil)
		done <- err
	}()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("dial succeeded")
	}
	if s.lp.Load() != 0 {
		t.Fatal("fell back after ctx ended")
	}
}

// Phoenix fails a poll with HTTP 500 when a binary reply is not UTF-8: the
// session ends with 1011, the socket reconnects and rejoins.
func TestLongPollServerError(t *testing.T) {
	t.Parallel()
	ctx := lpCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	sock := lpDial(t, s, nil)
	ch := sock.Channel("room:bad", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "echo", phx.Binary{0xff, 0xfe}); !errors.Is(err, phx.ErrDisconnected) {
		t.Fatalf("push = %v", err)
	}
	d := waitStatus[phx.Disconnected](t, ctx, sock, nil)
	if d.Code != 1011 || !d.Reconnect {
		t.Fatalf("%+v", d)
	}
	waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:bad" })
	if _, err := ch.Push(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
}

// A poll that outlasts Timeout ends the session with 1005, as phoenix.js's
// request timeout does.
func TestLongPollTimeout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cfg := phxtest.DemoConfig()
	cfg.LongPollWindow = time.Minute
	s := newLPServer(t, cfg, wsServe)
	c, err := (&phx.LongPoll{Timeout: 50 * time.Millisecond}).Dial(ctx, s.url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.ReadMessage()
	if phx.CloseCode(err) != 1005 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read = %v", err)
	}
}

// The write queue is bounded: with a POST held by the server and the queue
// full, a write gives up at its deadline; once the POST completes, what
// was queued goes out.
func TestLongPollWriteQueueBounded(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	gate := make(chan struct{})
	s.postGate.Store(&gate)
	c, err := (&phx.LongPoll{WriteBuffer: 1}).Dial(ctx, s.url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hb := func(i int) []byte { return fmt.Appendf(nil, `[null,"%d","phoenix","heartbeat",{}]`, i) }
	// The first writes go into the held POST, one more into the queue;
	// then a write finds no room.
	written := 0
	for ; written < 10; written++ {
		err = c.WriteMessage(wire.Text, hb(written), time.Now().Add(100*time.Millisecond))
		if err != nil {
			break
		}
	}
	if written == 0 || written == 10 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write %d into a full queue = %v", written, err)
	}
	close(gate)
	for i := 0; i < written; i++ {
		_, b, err := c.ReadMessage()
		if err != nil || !bytes.Contains(b, fmt.Appendf(nil, `"%d","phoenix","phx_reply"`, i)) {
			t.Fatalf("reply %d: %s %v", i, b, err)
		}
	}
}

// The requests have the shapes phoenix.js gives them (longpoll.jsonl): the
// opening GET carries no session token, later requests carry it in place of
// a connect parameter of that name, POSTs are ndjson, and what is written
// while a POST is in flight goes out in one POST.
func TestLongPollWireShape(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	gate := make(chan struct{})
	s.postGate.Store(&gate)
	h := http.Header{"X-Custom": {"v"}}
	c, err := (&phx.LongPoll{}).Dial(ctx, s.url+"/websocket?token=mine&user=u&vsn=2.0.0", h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write := func(ref string, op wire.Opcode, data []byte) {
		t.Helper()
		if err := c.WriteMessage(op, data, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	write("1", wire.Text, []byte(`[null,"1","phoenix","heartbeat",{}]`))
	// Wait for that POST to be held, then queue two more behind it.
	select {
	case <-s.posts:
	case <-ctx.Done():
		t.Fatal("no POST")
	}
	write("2", wire.Text, []byte(`[null,"2","phoenix","heartbeat",{}]`))
	bin, _, err := wire.V2.EncodeClient(nil, &wire.Message{JoinRef: wire.NewRef("9"), Ref: wire.NewRef("3"), Topic: "t", Event: "e", Payload: []byte{0xff}, Binary: true})
	if err != nil {
		t.Fatal(err)
	}
	write("3", wire.Binary, bin)
	close(gate)
	for range 2 { // the heartbeat replies; the binary push is to no channel
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var posts []lpRequest
	for i, r := range s.reqs {
		if r.header.Get("X-Custom") != "v" {
			t.Fatalf("request %d lost the header: %v", i, r.header)
		}
		switch {
		case i == 0:
			if r.method != http.MethodGet || r.query.Get("token") != "mine" || r.query.Get("user") != "u" || r.header.Get("Accept") != "application/json" {
				t.Fatalf("opening request %+v", r)
			}
		case len(r.query["token"]) != 1 || r.query.Get("token") == "mine" || r.query.Get("user") != "u" || r.query.Get("vsn") != "2.0.0":
			t.Fatalf("request %d query %v", i, r.query)
		case r.method == http.MethodPost:
			if r.header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("POST %v", r.header)
			}
			posts = append(posts, r)
		}
	}
	want := []string{
		`[null,"1","phoenix","heartbeat",{}]`,
		`[null,"2","phoenix","heartbeat",{}]` + "\n" + base64.StdEncoding.EncodeToString(bin),
	}
	if len(posts) != 2 || posts[0].body != want[0] || posts[1].body != want[1] {
		t.Fatalf("POST bodies %q, want %q", posts, want)
	}
}

// Push round trips over each transport, one at a time and 64 in flight,
// against the same in-process server.
func BenchmarkTransportRoundTrip(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.DemoConfig())
	for _, tr := range []struct {
		name string
		t    phx.Transport
	}{{"websocket", nil}, {"longpoll", &phx.LongPoll{}}} {
		for _, par := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/inflight=%d", tr.name, par), func(b *testing.B) {
				ctx := context.Background()
				sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{Transport: tr.t})
				if err != nil {
					b.Fatal(err)
				}
				defer sock.Close()
				ch := sock.Channel("room:bench", nil)
				if _, err := ch.Join(ctx); err != nil {
					b.Fatal(err)
				}
				payload := map[string]int{"n": 1}
				b.ReportAllocs()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range par {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if _, err := ch.Push(ctx, "echo", payload); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

// Answers the client cannot take end the session with the code a WebSocket
// would close with: 1009 for one over ReadLimit, 1011 for one that is not
// Phoenix's JSON.
func TestLongPollBadAnswers(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newLPServer(t, phxtest.DemoConfig(), wsServe)
	c, err := (&phx.LongPoll{ReadLimit: 512}).Dial(ctx, s.url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := s.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendRaw(wire.Text, []byte(`[null,null,"t","big","`+strings.Repeat("x", 1024)+`"]`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); phx.CloseCode(err) != 1009 {
		t.Fatalf("read = %v", err)
	}

	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") == "" {
			fmt.Fprint(w, `{"messages":[],"status":410,"token":"T"}`)
			return
		}
		fmt.Fprint(w, `<html>`)
	}))
	defer garbage.Close()
	c2, err := (&phx.LongPoll{}).Dial(ctx, "ws://"+garbage.Listener.Addr().String()+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, _, err := c2.ReadMessage(); phx.CloseCode(err) != 1011 {
		t.Fatalf("read = %v", err)
	}
}

// A zero LongPoll leaves nothing behind once its connection is closed: its
// HTTP client's idle keep-alive connections (two goroutines each) close
// with it, so a goroutine leak check in the user's tests passes.
func TestLongPollCloseLeavesNoIdleConnections(t *testing.T) {
	// Not parallel: it counts the process's HTTP client connections.
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, lpTiming(phxtest.DemoConfig()))
	before := clientConns()
	c, err := (&phx.LongPoll{}).Dial(ctx, srv.URL()+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.WriteMessage(wire.Text, fmt.Appendf(nil, `[null,"%d","phoenix","heartbeat",{}]`, i), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	if n := clientConns(); n <= before {
		t.Fatalf("%d client connections while polling, %d before", n, before)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The server is still up: it is the client that closes them.
	for n := clientConns(); n > before; n = clientConns() {
		select {
		case <-ctx.Done():
			t.Fatalf("%d client connections left after Close, %d before", n, before)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// clientConns counts the HTTP client connections of the process, by their
// reading goroutines.
func clientConns() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("net/http.(*persistConn).readLoop("))
		}
		buf = make([]byte, 2*len(buf))
	}
}
