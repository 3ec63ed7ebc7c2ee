package phxtest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/wire"
)

// tclient is a raw WebSocket client for the tests: frames in, frames out.
type tclient struct {
	t  *testing.T
	ws *websocket.Conn
	in chan got
}

func dial(t *testing.T, url string, protocols ...string) *tclient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	c := &tclient{t: t, ws: ws, in: make(chan got, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.in)
		for {
			op, data, err := ws.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.in <- got{opcode: "close", code: ce.Code}
				} else {
					c.in <- got{opcode: "error"}
				}
				return
			}
			kind := "text"
			if op == websocket.BinaryMessage {
				kind = "binary"
			}
			c.in <- got{opcode: kind, data: data}
		}
	}()
	t.Cleanup(func() { ws.Close(); <-done })
	return c
}

func (c *tclient) send(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame as "text <data>", "binary <hex>", "close
// <code>" or "error" (connection ended without a close frame).
func (c *tclient) next() string {
	c.t.Helper()
	tm := time.NewTimer(5 * time.Second)
	defer tm.Stop()
	select {
	case g, ok := <-c.in:
		if !ok {
			return "eof"
		}
		if g.opcode == "error" {
			return "error"
		}
		return describe(g)
	case <-tm.C:
		c.t.Fatal("no frame within 5 s")
		return ""
	}
}

func (c *tclient) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		if g := c.next(); g != w {
			c.t.Fatalf("got  %s\nwant %s", g, w)
		}
	}
}

// join joins topic with join ref jr and consumes reply, diff and state.
func (c *tclient) join(topic, jr string) {
	c.t.Helper()
	c.send(`["` + jr + `","` + jr + `","` + topic + `","phx_join",{}]`)
	for i := 0; i < 3; i++ {
		if g := c.next(); !strings.HasPrefix(g, "text ") {
			c.t.Fatalf("join %s: %s", topic, g)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func demo(t *testing.T, mod func(*phxtest.Config)) *phxtest.Server {
	cfg := phxtest.DemoConfig()
	if mod != nil {
		mod(&cfg)
	}
	return phxtest.NewServer(t, cfg)
}

func TestHeartbeatFaults(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	c.join("room:a", "1")
	srv.SetFaults(phxtest.Faults{IgnoreHeartbeats: true})
	c.send(`[null,"2","phoenix","heartbeat",{}]`)
	c.send(`["1","3","room:a","echo",{"x":1}]`)
	c.expect(`text ["1","3","room:a","phx_reply",{"response":{"x":1},"status":"ok"}]`)
	srv.SetFaults(phxtest.Faults{})
	c.send(`[null,"4","phoenix","heartbeat",{}]`)
	c.expect(`text [null,"4","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestReplyFaults(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	c.join("room:a", "1")
	conn, err := srv.WaitJoined(ctxT(t), "room:a")
	if err != nil {
		t.Fatal(err)
	}
	conn.SetFaults(phxtest.Faults{DropReplies: true})
	c.send(`["1","2","room:a","echo",{}]`)
	// blast's reply is dropped, its push is not: once it arrives, the
	// channel has handled (and dropped the reply to) the echo before it.
	c.send(`["1","3","room:a","blast",{"n":1,"size":1}]`)
	c.expect(`text ["1",null,"room:a","blast",{"data":"x","i":1}]`)
	conn.SetFaults(phxtest.Faults{ReplyDelay: 50 * time.Millisecond})
	start := time.Now()
	c.send(`["1","4","room:a","echo",{}]`)
	c.expect(`text ["1","4","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("reply after %v, want ≥ 50ms", d)
	}
}

func TestDropAndCloseWith(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	a := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	b := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=b")
	byID := map[string]*phxtest.Conn{}
	for _, c := range waitConns(t, srv, 2) {
		byID[c.SocketID()] = c
	}
	byID["user_socket:a"].Drop()
	a.expect("close 1006") // gorilla reports a TCP close without a close frame as 1006
	byID["user_socket:b"].CloseWith(4001)
	b.expect("close 4001")
	if err := srv.WaitActive(ctxT(t), 0); err != nil {
		t.Fatal(err)
	}
}

// TestEndingConnNotListed: a connection is no longer open as soon as it
// is dropped, though its goroutines are still stopping; WaitJoined finds
// the newest open connection with the topic joined, the one a client that
// reconnected uses.
func TestEndingConnNotListed(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	a := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	a.join("room:x", "1")
	b := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=b")
	b.join("room:x", "2")
	both := func() bool {
		n := 0
		for _, c := range srv.Conns() {
			if c.IsJoined("room:x") {
				n++
			}
		}
		return n == 2
	}
	if err := srv.Wait(ctxT(t), both); err != nil {
		t.Fatal(err)
	}
	newest, err := srv.WaitJoined(ctxT(t), "room:x")
	if err != nil {
		t.Fatal(err)
	}
	if id := newest.SocketID(); id != "user_socket:b" {
		t.Fatalf("WaitJoined found %s, want b's connection", id)
	}
	newest.Drop()
	for _, c := range srv.Conns() {
		if c == newest {
			t.Fatal("a dropped connection is still listed")
		}
	}
	c, err := srv.WaitJoined(ctxT(t), "room:x")
	if err != nil {
		t.Fatal(err)
	}
	if id := c.SocketID(); id != "user_socket:a" {
		t.Fatalf("WaitJoined after the drop found %s, want a's connection", id)
	}
	b.expect("close 1006")
}

func waitConns(t *testing.T, srv *phxtest.Server, n int) []*phxtest.Conn {
	t.Helper()
	if _, err := srv.WaitConn(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	return srv.Conns()
}

func TestSendRawAndSend(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	c.join("room:a", "1")
	conn := waitConns(t, srv, 1)[0]
	if err := conn.SendRaw(wire.Text, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if err := conn.SendRaw(wire.Binary, []byte{9, 9}); err != nil {
		t.Fatal(err)
	}
	if err := conn.SendRaw(wire.Opcode(websocket.PingMessage), []byte("p")); err != nil {
		t.Fatal(err)
	}
	stale := wire.Message{JoinRef: wire.NewRef("0"), Topic: "room:a", Event: "phx_close"}
	if err := conn.Send(stale); err != nil {
		t.Fatal(err)
	}
	if err := conn.Push("room:a", "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Push("room:zzz", "news", nil); !errors.Is(err, phxtest.ErrNotJoined) {
		t.Fatalf("push to a topic not joined: %v", err)
	}
	c.expect("text not json", "binary 0909",
		`text ["0",null,"room:a","phx_close",{}]`,
		`text ["1",null,"room:a","news",{"n":1}]`)
	sent := conn.Sent()
	if len(sent) != 8 || conn.SentCount() != 8 {
		t.Fatalf("sent %d frames, count %d", len(sent), conn.SentCount())
	}
	last := sent[7]
	if last.Seq != 8 || last.Message.Event != "news" || last.Message.Topic != "room:a" || last.Message.JoinRef.String() != "1" ||
		string(last.Data) != `["1",null,"room:a","news",{"n":1}]` || sent[3].Message.Event != "" || string(sent[3].Data) != "not json" {
		t.Fatalf("sent frames %+v", sent[3:])
	}
}

func TestRefuseNextAndStats(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	srv.RefuseNext(2)
	for i := 0; i < 2; i++ {
		_, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("attempt %d: err %v resp %v", i, err, resp)
		}
		resp.Body.Close()
	}
	dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	if _, err := srv.WaitConn(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if s := srv.Stats(); s.Accepted != 1 || s.Refused != 2 || s.Active != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRestartSameAddress(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	addr := srv.Addr()
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	waitConns(t, srv, 1)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c.expect("close 1001")
	if srv.Addr() != addr {
		t.Fatalf("address changed: %s → %s", addr, srv.Addr())
	}
	c2 := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	c2.send(`[null,"1","phoenix","heartbeat",{}]`)
	c2.expect(`text [null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func TestPauseReading(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	conn := waitConns(t, srv, 1)[0]
	conn.PauseReading()
	// The reader may already wait for the next frame when the pause
	// begins, so the first frame can still get through; the next cannot.
	c.send(`[null,"1","phoenix","heartbeat",{}]`)
	c.send(`[null,"2","phoenix","heartbeat",{}]`)
	if err := srv.Wait(ctxT(t), conn.ReadingPaused); err != nil {
		t.Fatal(err)
	}
	if n := len(conn.Received()); n > 1 {
		t.Fatalf("read %d frames while paused", n)
	}
	conn.ResumeReading()
	c.expect(`text [null,"1","phoenix","phx_reply",{"response":{},"status":"ok"}]`,
		`text [null,"2","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	if conn.ReadingPaused() {
		t.Fatal("still paused")
	}
}

func TestCrashChannelAndPhoenix18(t *testing.T) {
	t.Parallel()
	for _, v18 := range []bool{false, true} {
		srv := demo(t, func(c *phxtest.Config) { c.Phoenix18 = v18 })
		c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=u")
		c.join("room:a", "1")
		conn, err := srv.WaitJoined(ctxT(t), "room:a")
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.CrashChannel(ctxT(t), "room:a"); err != nil {
			t.Fatal(err)
		}
		payload, code := `{}`, "close 1000"
		if v18 {
			payload, code = `{"reason":"channel_crash"}`, "close 1001"
		}
		c.expect(`text ["1","1","room:a","phx_error",` + payload + `]`)
		if n := srv.Disconnect("user_socket:u"); n != 1 {
			t.Fatalf("Disconnect closed %d", n)
		}
		c.expect(code)
	}
}

func TestConnectHookAuthToken(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen phxtest.ConnectInfo
	srv := phxtest.NewServer(t, phxtest.Config{Connect: func(ci phxtest.ConnectInfo) (phxtest.Socket, error) {
		mu.Lock()
		seen = ci
		mu.Unlock()
		if ci.AuthToken != "s3cr3t?" {
			return phxtest.Socket{}, errors.New("no")
		}
		return phxtest.Socket{ID: "u:1"}, nil
	}})
	tok := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("s3cr3t?")), "=")
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&x=1", "phoenix", "base64url.bearer.phx."+tok)
	if c.ws.Subprotocol() != "phoenix" {
		t.Fatalf("subprotocol %q", c.ws.Subprotocol())
	}
	mu.Lock()
	if seen.Params.Get("x") != "1" || seen.Transport != "websocket" {
		t.Fatalf("connect info %+v", seen)
	}
	mu.Unlock()
	_, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL(), nil)
	if err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no token: %v", err)
	}
	resp.Body.Close()
}

// The 101st channel on one socket is refused by the socket itself, as
// Phoenix 1.7.24 does (max_channels_per_transport, default 100): an error
// reply with the join's refs and {"reason":"too many channels joined"},
// and no channel started. A duplicate join at the limit replaces its
// channel, and a leave frees a place.
func TestMaxChannels(t *testing.T) {
	t.Parallel()
	var joins sync.Map // topics whose Join ran
	h := phxtest.HandlerFuncs{JoinFunc: func(_ context.Context, ch *phxtest.Channel, _ json.RawMessage) (any, error) {
		joins.Store(ch.Topic(), true)
		return nil, nil
	}}
	srv := phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"t:*": h}})
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	for i := 1; i <= 100; i++ {
		c.send(fmt.Sprintf(`["%d","%d","t:%d","phx_join",{}]`, i, i, i))
		c.expect(fmt.Sprintf(`text ["%d","%d","t:%d","phx_reply",{"response":{},"status":"ok"}]`, i, i, i))
	}
	c.send(`["101","101","t:101","phx_join",{}]`)
	c.expect(`text ["101","101","t:101","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`)
	if _, ok := joins.Load("t:101"); ok {
		t.Error("the refused join started a channel")
	}
	conn, err := srv.WaitJoined(ctxT(t), "t:100")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(conn.Joined()); n != 100 || conn.IsJoined("t:101") {
		t.Errorf("%d topics joined, t:101 joined: %v", n, conn.IsJoined("t:101"))
	}
	// A push to the refused topic finds no channel.
	c.send(`["101","102","t:101","x",{}]`)
	c.expect(`text [null,"102","t:101","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]`)
	c.send(`["103","103","t:1","phx_join",{}]`)
	c.expect(`text ["103","103","t:1","phx_reply",{"response":{},"status":"ok"}]`,
		`text ["1","1","t:1","phx_close",{}]`)
	c.send(`["2","104","t:2","phx_leave",{}]`)
	c.expect(`text ["2","104","t:2","phx_reply",{"response":{},"status":"ok"}]`,
		`text ["2","2","t:2","phx_close",{}]`)
	c.send(`["105","105","t:101","phx_join",{}]`)
	c.expect(`text ["105","105","t:101","phx_reply",{"response":{},"status":"ok"}]`)

	small := phxtest.NewServer(t, phxtest.Config{MaxChannels: 1, Channels: map[string]phxtest.Handler{"t:*": phxtest.Echo{}}})
	c = dial(t, small.WebSocketURL()+"?vsn=2.0.0")
	c.send(`["1","1","t:1","phx_join",{}]`)
	c.send(`[null,"2","t:2","phx_join",{}]`)
	c.expect(`text ["1","1","t:1","phx_reply",{"response":{},"status":"ok"}]`,
		`text [null,"2","t:2","phx_reply",{"response":{"reason":"too many channels joined"},"status":"error"}]`)
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := demo(t, func(c *phxtest.Config) { c.IdleTimeout = 50 * time.Millisecond })
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	c.expect("close 1002")
}

func TestAsyncReplyOrder(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	c.join("room:a", "1")
	c.send(`["1","2","room:a","slow",{"ms":30}]`)
	c.send(`["1","3","room:a","echo",{}]`)
	c.expect(`text ["1","3","room:a","phx_reply",{"response":{},"status":"ok"}]`,
		`text ["1","2","room:a","phx_reply",{"response":{"slept_ms":30},"status":"ok"}]`)
}

func TestMountedHandler(t *testing.T) {
	t.Parallel()
	srv := phxtest.New(phxtest.Config{Channels: map[string]phxtest.Handler{"echo": phxtest.Echo{}}})
	mux := http.NewServeMux()
	mux.Handle("/live/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	c := dial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/live/websocket?vsn=2.0.0")
	c.send(`["1","1","echo","phx_join",{}]`)
	c.send(`["1","2","echo","anything",{"a":"<&>"}]`)
	c.expect(`text ["1","1","echo","phx_reply",{"response":{},"status":"ok"}]`,
		`text ["1","2","echo","phx_reply",{"response":{"a":"<&>"},"status":"ok"}]`)
}

func TestReceivedAndWaitJoined(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := srv.WaitJoined(ctx, "room:x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitJoined before any join: %v", err)
	}
	c.join("room:x", "7")
	conn, err := srv.WaitJoined(ctxT(t), "room:x")
	if err != nil {
		t.Fatal(err)
	}
	if jr, _ := conn.JoinRef("room:x"); jr != "7" || conn.SocketID() != "user_socket:a" || conn.Vsn() != "2.0.0" {
		t.Fatalf("join ref %q socket %q vsn %q", jr, conn.SocketID(), conn.Vsn())
	}
	rec := conn.Received()
	if len(rec) != 1 || rec[0].Event != "phx_join" || rec[0].Topic != "room:x" || rec[0].JoinRef.String() != "7" {
		t.Fatalf("received %+v", rec)
	}
	list := srv.Presence("room:x")
	if _, ok := list["a"]; !ok {
		t.Fatalf("presence %v", list)
	}
	b, _ := json.Marshal(list)
	if !strings.Contains(string(b), `"phx_ref"`) {
		t.Fatalf("presence list %s", b)
	}
}

func TestCloseIsBoundedWithStuckClient(t *testing.T) {
	t.Parallel()
	srv := phxtest.New(phxtest.DemoConfig())
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	c.join("room:a", "1")
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	c.expect("close 1001")
	srv.Close() // idempotent
}

func TestClientCloseCodeAnsweredWith1000(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	for _, code := range []int{1000, 1001, 4000} {
		c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		c.expect("close 1000")
	}
}

func TestLongPollDropAndDisconnect(t *testing.T) {
	t.Parallel()
	srv := demo(t, func(c *phxtest.Config) {
		c.LongPollWindow, c.LongPollResumeTimeout = 50*time.Millisecond, 50*time.Millisecond
	})
	get := func(u string) (status int, token string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Status int
			Token  string
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Status, body.Token
	}
	st, tok := get(srv.LongPollURL() + "?vsn=2.0.0&user=lp")
	if st != 410 || tok == "" {
		t.Fatalf("open: %d %q", st, tok)
	}
	if st, _ := get(srv.LongPollURL() + "?vsn=2.0.0&user=lp&token=" + tok); st != 204 {
		t.Fatalf("empty poll: %d", st)
	}
	conn := waitConns(t, srv, 1)[0]
	if conn.Transport() != "longpoll" {
		t.Fatalf("transport %q", conn.Transport())
	}
	if n := srv.Disconnect("user_socket:lp"); n != 1 {
		t.Fatalf("Disconnect: %d", n)
	}
	<-conn.Done()
	st, tok2 := get(srv.LongPollURL() + "?vsn=2.0.0&user=lp&token=" + tok)
	if st != 410 || tok2 == tok {
		t.Fatalf("poll after disconnect: %d (same token %v)", st, tok2 == tok)
	}
	srv.RefuseNext(1)
	if st, _ := get(srv.LongPollURL() + "?vsn=2.0.0"); st != 403 {
		t.Fatalf("refused: %d", st)
	}
}

// A broadcast made as soon as the client has the join reply must reach it:
// the channel is subscribed before its reply is queued, as in Phoenix.
func TestBroadcastRightAfterJoinReply(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	for i := range 50 {
		topic := fmt.Sprintf("echo:%d", i)
		jr := fmt.Sprint(i + 1)
		c.send(`["` + jr + `","` + jr + `","` + topic + `","phx_join",{}]`)
		c.expect(`text ["` + jr + `","` + jr + `","` + topic + `","phx_reply",{"response":{},"status":"ok"}]`)
		if err := srv.Broadcast(topic, "ping", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
		c.expect(fmt.Sprintf(`text [null,null,"%s","ping",{"i":%d}]`, topic, i))
	}
}

// A frame for a channel that has just crashed, handled before the server
// has handled the exit, is dropped as Phoenix drops a message to a dead
// process: phx_error comes first, and only later frames meet "unmatched
// topic". The session is held in a slow join so that the frame is queued
// behind it while the channel dies.
func TestPushToJustCrashedChannel(t *testing.T) {
	t.Parallel()
	dying, release, dead := make(chan struct{}), make(chan struct{}), make(chan struct{})
	joining, admit := make(chan struct{}), make(chan struct{})
	srv := phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{
		"crashy:*": phxtest.HandlerFuncs{
			InFunc: func(ctx context.Context, ch *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
				if in.Event == "die" {
					close(dying)
					<-release
					return phxtest.Crash()
				}
				return phxtest.Reply("ok", nil)
			},
			TerminateFunc: func(*phxtest.Channel, phxtest.Reason) { close(dead) },
		},
		"slow:*": phxtest.HandlerFuncs{
			JoinFunc: func(ctx context.Context, ch *phxtest.Channel, _ json.RawMessage) (any, error) {
				close(joining)
				<-admit
				return nil, nil
			},
		},
	}})
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	c.send(`["1","1","crashy:a","phx_join",{}]`)
	c.expect(`text ["1","1","crashy:a","phx_reply",{"response":{},"status":"ok"}]`)
	conn, err := srv.WaitJoined(ctxT(t), "crashy:a")
	if err != nil {
		t.Fatal(err)
	}
	c.send(`["1","2","crashy:a","die",{}]`)
	<-dying
	c.send(`["3","3","slow:b","phx_join",{}]`)
	<-joining
	c.send(`["1","4","crashy:a","ping",{}]`)
	if err := srv.Wait(ctxT(t), func() bool { return receivedRef(conn, "4") }); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-dead
	close(admit)
	c.expect(`text ["3","3","slow:b","phx_reply",{"response":{},"status":"ok"}]`,
		`text ["1","1","crashy:a","phx_error",{}]`)
	c.send(`[null,"5","phoenix","heartbeat",{}]`)
	g := c.next()
	if strings.Contains(g, `"4"`) {
		// The frame reached the session after the exit: unmatched, as for
		// any topic not joined.
		if !strings.Contains(g, "unmatched topic") {
			t.Fatalf("ping after the crash answered %s", g)
		}
		g = c.next()
	}
	c.expectFrame(g, `text [null,"5","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

func receivedRef(conn *phxtest.Conn, ref string) bool {
	for _, m := range conn.Received() {
		if m.Ref.String() == ref {
			return true
		}
	}
	return false
}

func (c *tclient) expectFrame(got, want string) {
	c.t.Helper()
	if got != want {
		c.t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// Phoenix answers "heartbeat" on "phoenix" whatever its payload: a binary
// heartbeat gets the same JSON reply.
func TestBinaryHeartbeat(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0")
	frame := append([]byte{0, 0, 1, 7, 9}, "7phoenixheartbeat\x00\x01"...)
	if err := c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		t.Fatal(err)
	}
	c.expect(`text [null,"7","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
}

// A phx_leave whose join_ref is not the channel's is dropped by Phoenix's
// socket (a client that raced a close): no reply, no phx_close, and the
// channel stays. A channel joined with a null join_ref takes any leave,
// and its phx_close, which the socket sends, has null refs.
func TestLeaveStaleJoinRef(t *testing.T) {
	t.Parallel()
	srv := demo(t, nil)
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=a")
	c.join("room:a", "2")
	c.send(`["1","3","room:a","phx_leave",{}]`)
	c.send(`[null,"4","room:a","phx_leave",{}]`)
	c.send(`[null,"5","phoenix","heartbeat",{}]`)
	c.expect(`text [null,"5","phoenix","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["1","6","room:a","echo",{}]`)
	c.expect(`text ["2","6","room:a","phx_reply",{"response":{},"status":"ok"}]`)
	c.send(`["2","7","room:a","phx_leave",{}]`)
	c.expect(`text ["2","7","room:a","phx_reply",{"response":{},"status":"ok"}]`,
		`text ["2","2","room:a","phx_close",{}]`)

	c.send(`[null,"8","room:b","phx_join",{}]`)
	c.expect(`text [null,"8","room:b","phx_reply",{"response":{"joined":"room:b","params":{}},"status":"ok"}]`)
	c.next() // own presence_diff
	c.next() // presence_state
	c.send(`["x","9","room:b","phx_leave",{}]`)
	c.expect(`text ["8","9","room:b","phx_reply",{"response":{},"status":"ok"}]`,
		`text [null,null,"room:b","phx_close",{}]`)
}
