//go:build go1.25

package phx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	neturl "net/url"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/phxgo/phxgo/wire"
)

// An in-memory Transport for unit tests in a synctest bubble: every Dial
// creates a connection pair and hands the server side to the test.

type memFrame struct {
	op   wire.Opcode
	data []byte
}

type memTransport struct {
	accept chan *memServer // server ends of dialled connections
	mu     sync.Mutex
	fail   []error // errors for the next dials, in order
	dials  []memDial
}

type memDial struct {
	url    string
	header http.Header
}

func newMemTransport() *memTransport {
	return &memTransport{accept: make(chan *memServer, 16)}
}

func (t *memTransport) failNext(errs ...error) {
	t.mu.Lock()
	t.fail = append(t.fail, errs...)
	t.mu.Unlock()
}

func (t *memTransport) Dial(ctx context.Context, url string, header http.Header) (Conn, error) {
	t.mu.Lock()
	t.dials = append(t.dials, memDial{url, header})
	var err error
	if len(t.fail) > 0 {
		err, t.fail = t.fail[0], t.fail[1:]
	}
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := &memConn{
		toClient: make(chan memFrame, 4096),
		toServer: make(chan memFrame, 4096),
		closed:   make(chan struct{}),
		peerGone: make(chan struct{}),
	}
	srv := &memServer{c: c, ser: wire.V2}
	if u, err := neturl.Parse(url); err == nil && u.Query().Get("vsn") == "1.0.0" {
		srv.ser = wire.V1
	}
	select {
	case t.accept <- srv:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c, nil
}

func (t *memTransport) dialCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.dials)
}

type memConn struct {
	toClient, toServer chan memFrame
	closeOnce          sync.Once
	closed             chan struct{} // client dropped the connection
	peerOnce           sync.Once
	peerGone           chan struct{} // server closed
	mu                 sync.Mutex
	peerCode           int
	clientCode         int
	clientReason       string
	blackhole          bool
}

func (c *memConn) ReadMessage() (wire.Opcode, []byte, error) {
	select {
	case f := <-c.toClient:
		return f.op, f.data, nil
	case <-c.closed:
		return 0, nil, errors.New("use of closed connection")
	case <-c.peerGone:
		c.mu.Lock()
		code := c.peerCode
		c.mu.Unlock()
		return 0, nil, &CloseError{Code: code}
	}
}

func (c *memConn) WriteMessage(op wire.Opcode, data []byte, deadline time.Time) error {
	c.mu.Lock()
	bh := c.blackhole
	c.mu.Unlock()
	if bh {
		// A blackholed peer never takes the bytes: block until the deadline
		// or until the connection is dropped.
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-t.C:
			return errors.New("write timeout")
		case <-c.closed:
			return errors.New("use of closed connection")
		}
	}
	select {
	case c.toServer <- memFrame{op, append([]byte(nil), data...)}:
		return nil
	case <-c.closed:
		return errors.New("use of closed connection")
	}
}

func (c *memConn) WriteClose(code int, reason string, deadline time.Time) error {
	c.mu.Lock()
	c.clientCode, c.clientReason = code, reason
	bh := c.blackhole
	c.mu.Unlock()
	if bh {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-t.C:
			return errors.New("write timeout")
		case <-c.closed:
			return errors.New("use of closed connection")
		}
	}
	return nil
}

func (c *memConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// memServer is the test's end of one connection. It speaks the vsn the
// client asked for, as Phoenix does: on 1.0.0 no frame carries a join_ref,
// and phx_close and phx_error carry the join ref as their ref.
type memServer struct {
	c   *memConn
	ser wire.Serializer
}

// recv returns the next frame the client sent, decoded; ok is false when
// there is none right now (call synctest.Wait first).
func (s *memServer) recv(t *testing.T) (wire.Message, bool) {
	t.Helper()
	select {
	case f := <-s.c.toServer:
		m, err := s.ser.DecodeClient(f.op, f.data)
		if err != nil {
			t.Fatalf("client sent a bad frame %q: %v", f.data, err)
		}
		return m, true
	default:
		return wire.Message{}, false
	}
}

// expect returns the next frame and checks its event.
func (s *memServer) expect(t *testing.T, topic, event string) wire.Message {
	t.Helper()
	synctest.Wait()
	m, ok := s.recv(t)
	if !ok {
		t.Fatalf("want %s %s from the client, got nothing", topic, event)
	}
	if m.Topic != topic || m.Event != event {
		t.Fatalf("want %s %s from the client, got %s %s %s", topic, event, m.Topic, m.Event, m.Payload)
	}
	return m
}

// expectNone checks the client sent nothing.
func (s *memServer) expectNone(t *testing.T) {
	t.Helper()
	synctest.Wait()
	if m, ok := s.recv(t); ok {
		t.Fatalf("want nothing from the client, got %s %s %s", m.Topic, m.Event, m.Payload)
	}
}

func (s *memServer) send(t *testing.T, m wire.Message) {
	t.Helper()
	if s.ser == wire.V1 && (m.Event == wire.EventClose || m.Event == wire.EventError) {
		m.Ref = m.JoinRef
	}
	data, op, err := s.ser.EncodeServer(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	s.sendRaw(op, data)
}

func (s *memServer) sendRaw(op wire.Opcode, data []byte) {
	select {
	case s.c.toClient <- memFrame{op, data}:
	case <-s.c.closed:
	}
}

func ref(s string) wire.Ref {
	if s == "" {
		return wire.Ref{}
	}
	return wire.NewRef(s)
}

// reply answers the client's message m.
func (s *memServer) reply(t *testing.T, m wire.Message, status string, response string) {
	t.Helper()
	s.send(t, wire.Message{JoinRef: m.JoinRef, Ref: m.Ref, Topic: m.Topic, Event: wire.EventReply,
		Payload: wire.AppendReplyPayload(nil, status, json.RawMessage(response))})
}

// push sends a server push/broadcast.
func (s *memServer) push(t *testing.T, joinRef, topic, event, payload string) {
	t.Helper()
	s.send(t, wire.Message{JoinRef: ref(joinRef), Topic: topic, Event: event, Payload: []byte(payload)})
}

// closeWith closes the connection from the server side with code.
func (s *memServer) closeWith(code int) {
	s.c.peerOnce.Do(func() {
		s.c.mu.Lock()
		s.c.peerCode = code
		s.c.mu.Unlock()
		close(s.c.peerGone)
	})
}

func (s *memServer) setBlackhole() {
	s.c.mu.Lock()
	s.c.blackhole = true
	s.c.mu.Unlock()
}

// dropped reports whether the client dropped the connection.
func (s *memServer) dropped() bool {
	select {
	case <-s.c.closed:
		return true
	default:
		return false
	}
}

func (s *memServer) clientClose() (int, string) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.clientCode, s.c.clientReason
}

// accept returns the server end of the next connection.
func (t *memTransport) next(tt *testing.T) *memServer {
	tt.Helper()
	synctest.Wait()
	select {
	case s := <-t.accept:
		return s
	default:
		tt.Fatal("no connection was dialled")
		return nil
	}
}

func (t *memTransport) noDial(tt *testing.T) {
	tt.Helper()
	synctest.Wait()
	select {
	case <-t.accept:
		tt.Fatal("unexpected connection")
	default:
	}
}

// harness: a socket connected over the in-memory transport.
type harness struct {
	t    *testing.T
	tr   *memTransport
	sock *Socket
	srv  *memServer
}

func connect(t *testing.T, cfg *Config) *harness {
	t.Helper()
	tr := newMemTransport()
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.Transport = tr
	sock, err := Connect(t.Context(), "ws://example.test/socket", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	h := &harness{t: t, tr: tr, sock: sock}
	h.srv = tr.next(t)
	return h
}

// async runs f in a goroutine of the bubble and returns a channel with its
// result.
func async[T any](f func() T) <-chan T {
	c := make(chan T, 1)
	go func() { c <- f() }()
	return c
}

type pushOut struct {
	r   Reply
	err error
}

func (h *harness) push(ch *Channel, event string, payload any, opts ...PushOption) <-chan pushOut {
	return async(func() pushOut {
		r, err := ch.Push(context.Background(), event, payload, opts...)
		return pushOut{r, err}
	})
}

type joinOut struct {
	resp json.RawMessage
	err  error
}

func (h *harness) join(ch *Channel, opts ...JoinOption) <-chan joinOut {
	return async(func() joinOut {
		r, err := ch.Join(context.Background(), opts...)
		return joinOut{r, err}
	})
}

// joined joins topic and answers ok; it returns the channel and the join
// message.
func (h *harness) joined(topic string) (*Channel, wire.Message) {
	h.t.Helper()
	ch := h.sock.Channel(topic, nil)
	res := h.join(ch)
	jm := h.srv.expect(h.t, topic, wire.EventJoin)
	h.srv.reply(h.t, jm, "ok", "{}")
	synctest.Wait()
	if r := <-res; r.err != nil {
		h.t.Fatalf("join %s: %v", topic, r.err)
	}
	return ch, jm
}

func (h *harness) debug() debugInfo {
	h.t.Helper()
	r := make(chan debugInfo, 1)
	if err := h.sock.mb.Tell(context.Background(), debugMsg{reply: r}); err != nil {
		h.t.Fatal(err)
	}
	d := <-r
	// The channels' own bookkeeping, from each channel actor.
	for _, ca := range d.actors {
		cr := make(chan debugInfo, 1)
		if ca.mb.Tell(context.Background(), chanDebugReq{reply: cr}) != nil {
			continue // stopped meanwhile
		}
		select {
		case c := <-cr:
			d.pending += c.pending
			d.deadlines += c.deadlines
			d.buffered += c.buffered
		case <-ca.done:
		}
	}
	return d
}

// ready returns the value on c if there is one now.
func ready[T any](t *testing.T, c <-chan T) (T, bool) {
	t.Helper()
	synctest.Wait()
	select {
	case v := <-c:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

func mustReady[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	v, ok := ready(t, c)
	if !ok {
		t.Fatal("not ready")
	}
	return v
}

func notReady[T any](t *testing.T, c <-chan T) {
	t.Helper()
	if v, ok := ready(t, c); ok {
		t.Fatalf("unexpectedly ready: %+v", v)
	}
}

// statuses drains the status stream.
func (h *harness) statuses() []Status {
	synctest.Wait()
	var out []Status
	for {
		select {
		case st, ok := <-h.sock.Status():
			if !ok {
				return out
			}
			out = append(out, st)
		default:
			return out
		}
	}
}

// forVsns runs f as a parallel subtest for each serializer, with vsn the
// Config.Vsn to connect with.
func forVsns(t *testing.T, f func(t *testing.T, vsn string)) {
	t.Parallel()
	for _, vsn := range []string{"2.0.0", "1.0.0"} {
		t.Run("vsn="+vsn, func(t *testing.T) {
			t.Parallel()
			f(t, vsn)
		})
	}
}

// sleep advances the bubble's clock by d.
func sleep(d time.Duration) { time.Sleep(d) }

// subscriber is a Channel or a Socket.
type subscriber interface {
	Subscribe(context.Context, ...SubscribeOption) (*Subscription, error)
}

// mustSub subscribes to x or fails the test.
func mustSub(t testing.TB, x subscriber, opts ...SubscribeOption) *Subscription {
	t.Helper()
	sub, err := x.Subscribe(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}
