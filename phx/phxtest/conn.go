package phxtest

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phxgo/phxgo/wire"
)

// Faults are switches that make a connection misbehave on purpose. The
// zero value is a well-behaved server. Server.SetFaults and Conn.SetFaults
// combine: a switch is on when either sets it, and the longer delay wins.
type Faults struct {
	// IgnoreHeartbeats leaves every Phoenix heartbeat unanswered.
	IgnoreHeartbeats bool
	// DropReplies withholds every reply to a push (not joins, leaves or
	// heartbeats); the handler still runs.
	DropReplies bool
	// DropJoinReplies withholds join replies; the join still happens.
	DropJoinReplies bool
	// ReplyDelay holds every channel reply (joins included) this long
	// before sending it. The channel (for joins, the whole connection, as
	// a Phoenix socket waits for a join) is busy meanwhile.
	ReplyDelay time.Duration
	// CloseOnOpen ends every connection as soon as it opens: a WebSocket is
	// dropped right after the upgrade, a long-poll session ends right after
	// the GET that opened it (its polls then end as Phoenix's do, see
	// Config.LongPollWindow). A client sees a connection that opens and
	// fails at once.
	CloseOnOpen bool
	// FailFrames fails the client's frames: a WebSocket closes with 1011 at
	// the first one, a long-poll POST gets HTTP 500 as Phoenix answers one
	// it cannot read (the session lives on).
	FailFrames bool
}

func (f Faults) or(g *Faults) Faults {
	if g == nil {
		return f
	}
	f.IgnoreHeartbeats = f.IgnoreHeartbeats || g.IgnoreHeartbeats
	f.DropReplies = f.DropReplies || g.DropReplies
	f.DropJoinReplies = f.DropJoinReplies || g.DropJoinReplies
	f.ReplyDelay = max(f.ReplyDelay, g.ReplyDelay)
	f.CloseOnOpen = f.CloseOnOpen || g.CloseOnOpen
	f.FailFrames = f.FailFrames || g.FailFrames
	return f
}

// Conn is one client connection (a WebSocket, or a long-poll session) as
// the server sees it. All methods are safe for concurrent use; after the
// connection ends, methods that send return ErrConnClosed.
type Conn struct {
	srv       *Server
	id        int64
	transport string
	vsn       string
	sock      Socket
	params    url.Values

	ctx    context.Context
	cancel context.CancelFunc
	out    chan *outFrame
	inbox  chan sessionMsg
	done   chan struct{} // closed when every goroutine of the connection stopped

	ws        *websocket.Conn // nil for long-poll
	closeSent atomic.Bool
	closeOnce sync.Once
	closeCode atomic.Int64
	// clientCloseCode: the code of the close frame the client sent.
	clientCloseCode atomic.Int64
	paused          atomic.Pointer[chan struct{}] // non-nil while reading is paused
	parked          atomic.Bool                   // the reader waits for ResumeReading
	faults          atomic.Pointer[Faults]
	lpActive        chan struct{} // long-poll requests reset the session timer

	tasks sync.WaitGroup // Channel.Go goroutines

	interleaved atomic.Int64 // orders chosen (see Interleave)
	swapped     atomic.Int64 // of which swapped

	mu       sync.Mutex
	received []wire.Message
	sent     []sentFrame
	sentSeq  int64
	joined   map[string]json.RawMessage // topic → current join ref
}

func newConn(s *Server, transport, vsn string, sock Socket, params url.Values) *Conn {
	c := &Conn{srv: s, id: s.nextID.Add(1), transport: transport, vsn: vsn, sock: sock, params: params,
		out: make(chan *outFrame, s.cfg.Outbox), inbox: make(chan sessionMsg, 64),
		done: make(chan struct{}), joined: map[string]json.RawMessage{}}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

// ID numbers connections in the order they were accepted, from 1.
func (c *Conn) ID() int64 { return c.id }

// Transport is "websocket" or "longpoll".
func (c *Conn) Transport() string { return c.transport }

// Vsn is the serializer version in use: "2.0.0" or "1.0.0".
func (c *Conn) Vsn() string { return c.vsn }

// SocketID is the id the Connect hook gave.
func (c *Conn) SocketID() string { return c.sock.ID }

// Params are the connection's query parameters.
func (c *Conn) Params() url.Values { return c.params }

// Done is closed when the connection has ended and all its goroutines
// have stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseCode is the close code the server sent (0 while open, or after an
// abrupt drop; 1000 when it answered a client's close).
func (c *Conn) CloseCode() int { return int(c.closeCode.Load()) }

// ClientCloseCode is the close code of the close frame the client sent
// (0 until one came, and on long-poll, which has none).
func (c *Conn) ClientCloseCode() int { return int(c.clientCloseCode.Load()) }

// Received returns the frames received from the client so far, decoded,
// heartbeats included, oldest first (at most Config.RecordLimit). A numeric
// ref keeps its literal text; the payload of a binary push is raw bytes.
func (c *Conn) Received() []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wire.Message(nil), c.received...)
}

func (c *Conn) record(f *inFrame) {
	lim := c.srv.cfg.RecordLimit
	if lim < 0 {
		return
	}
	m := wire.Message{JoinRef: toRef(f.joinRef), Ref: toRef(f.ref), Payload: f.payload, Binary: f.binary}
	m.Topic, _ = f.topicString()
	if ev, ok := f.eventString(); ok {
		m.Event = ev
	} else {
		m.Event = string(f.event)
	}
	c.mu.Lock()
	if len(c.received) >= lim {
		c.received = append(c.received[:0], c.received[1:]...)
	}
	c.received = append(c.received, m)
	c.mu.Unlock()
	c.srv.notify()
}

type sentFrame struct {
	seq int64
	f   *outFrame
}

// SentFrame is a frame the server wrote to a connection. Seq numbers the
// connection's frames from 1 in the order they were written, so a client
// that reports how many frames it has read proves which ones it got. A
// frame is recorded just before it is written (a write that then fails
// leaves it recorded).
type SentFrame struct {
	Seq     int64
	Opcode  wire.Opcode
	Message wire.Message // zero for raw frames (SendRaw)
	Data    []byte       // the frame as written
}

// Sent returns the frames written so far, oldest first (at most
// Config.RecordLimit; Seq keeps counting past dropped ones).
func (c *Conn) Sent() []SentFrame {
	c.mu.Lock()
	fs := append([]sentFrame(nil), c.sent...)
	c.mu.Unlock()
	out := make([]SentFrame, 0, len(fs))
	for _, s := range fs {
		op, data := encode(c.vsn, s.f)
		sf := SentFrame{Seq: s.seq, Opcode: wire.Opcode(op), Data: data}
		if !s.f.raw {
			sf.Message = wire.Message{JoinRef: toRef(s.f.joinRef), Ref: toRef(s.f.ref), Event: s.f.event,
				Payload: s.f.payload, Binary: s.f.binary, Status: s.f.status}
			sf.Message.Topic, _ = rawString(s.f.topic)
		}
		out = append(out, sf)
	}
	return out
}

// SentCount is the number of frames written so far.
func (c *Conn) SentCount() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sentSeq
}

func (c *Conn) recordSent(f *outFrame) {
	lim := c.srv.cfg.RecordLimit
	c.mu.Lock()
	c.sentSeq++
	if lim >= 0 {
		if len(c.sent) >= lim {
			c.sent = append(c.sent[:0], c.sent[1:]...)
		}
		c.sent = append(c.sent, sentFrame{seq: c.sentSeq, f: f})
	}
	c.mu.Unlock()
}

func toRef(raw json.RawMessage) wire.Ref {
	if len(raw) == 0 || string(raw) == "null" {
		return wire.Ref{}
	}
	return wire.NewRef(refText(raw))
}

// Joined returns the topics with a joined channel, sorted.
func (c *Conn) Joined() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.joined))
	for t := range c.joined {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// IsJoined reports whether topic has a joined channel on this connection.
func (c *Conn) IsJoined(topic string) bool {
	_, ok := c.JoinRef(topic)
	return ok
}

// JoinRef returns the join ref of topic's current channel.
func (c *Conn) JoinRef(topic string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	jr, ok := c.joined[topic]
	return refText(jr), ok
}

func (c *Conn) setJoined(topic string, jr json.RawMessage) {
	c.mu.Lock()
	if jr == nil {
		delete(c.joined, topic)
	} else {
		c.joined[topic] = jr
	}
	c.mu.Unlock()
	c.srv.notify()
}

// SetFaults sets this connection's fault switches (see Faults).
func (c *Conn) SetFaults(f Faults) { c.faults.Store(&f) }

func (c *Conn) effectiveFaults() Faults {
	var f Faults
	if p := c.faults.Load(); p != nil {
		f = *p
	}
	return f.or(c.srv.faults.Load())
}

// Drop ends the connection abruptly: the TCP connection is closed with no
// close frame (a long-poll session just disappears).
func (c *Conn) Drop() { c.terminate(0, true) }

// CloseWith sends a close frame with code and ends the connection.
func (c *Conn) CloseWith(code int) { c.terminate(code, false) }

// PauseReading stops reading client frames (they queue in the kernel and
// the client's writes eventually block) until ResumeReading. A frame the
// reader is already waiting for is still read; ReadingPaused tells when
// the reader has stopped. It affects WebSocket connections only.
func (c *Conn) PauseReading() {
	ch := make(chan struct{})
	c.paused.CompareAndSwap(nil, &ch)
}

// ReadingPaused reports whether the reader has stopped after
// PauseReading. Server.Wait can wait for it.
func (c *Conn) ReadingPaused() bool { return c.parked.Load() }

// ResumeReading undoes PauseReading.
func (c *Conn) ResumeReading() {
	if p := c.paused.Swap(nil); p != nil {
		close(*p)
	}
}

// SendRaw writes data as one frame with opcode, bypassing the serializer:
// malformed frames, frames with stale join refs, anything. On a long-poll
// session text is queued as one message and binary as its raw bytes.
func (c *Conn) SendRaw(op wire.Opcode, data []byte) error {
	return c.enqueue(c.srv.ctx, &outFrame{raw: true, rawOp: int(op), rawData: data})
}

// Send serialises m with the connection's serializer and sends it; a null
// Ref is sent as null. m.Payload must be JSON unless m.Binary. Set m.Status
// to send a binary reply.
func (c *Conn) Send(m wire.Message) error {
	f := &outFrame{joinRef: fromRef(m.JoinRef), ref: fromRef(m.Ref), topic: quote(m.Topic),
		event: m.Event, payload: m.Payload, binary: m.Binary, status: m.Status}
	if !m.Binary && len(f.payload) == 0 {
		f.payload = json.RawMessage("{}")
	}
	return c.enqueue(c.srv.ctx, f)
}

func fromRef(r wire.Ref) json.RawMessage {
	s, ok := r.Get()
	if !ok {
		return jsonNull
	}
	return quote(s)
}

// Push sends a server push on topic's current channel, as push/3 from the
// channel would: [join_ref, null, topic, event, payload].
func (c *Conn) Push(topic, event string, payload any) error {
	body, err := marshal(payload)
	if err != nil {
		return err
	}
	jr, ok := c.joinRefRaw(topic)
	if !ok {
		return ErrNotJoined
	}
	return c.enqueue(c.srv.ctx, &outFrame{joinRef: jr, ref: jsonNull, topic: quote(topic), event: event, payload: body})
}

func (c *Conn) joinRefRaw(topic string) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	jr, ok := c.joined[topic]
	return jr, ok
}

// CrashChannel crashes topic's channel as if its handler raised: the client
// gets phx_error and may rejoin.
func (c *Conn) CrashChannel(ctx context.Context, topic string) error {
	done := make(chan error, 1)
	if err := c.toSession(ctx, msgCrash{topic: topic, done: done}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrConnClosed
	}
}

func (c *Conn) toSession(ctx context.Context, m sessionMsg) error {
	select {
	case c.inbox <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrConnClosed
	}
}

// enqueue queues a frame for the writer. It blocks while the outbox is full
// (the client is slow), until ctx or the connection ends.
func (c *Conn) enqueue(ctx context.Context, f *outFrame) error {
	if c.ctx.Err() != nil {
		return ErrConnClosed
	}
	select {
	case c.out <- f:
		return nil
	case <-c.ctx.Done():
		return ErrConnClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// terminate ends the connection once: with a close frame carrying code, or
// abruptly. It does not wait; Done tells when everything has stopped.
func (c *Conn) terminate(code int, abrupt bool) {
	c.closeOnce.Do(func() {
		c.cancel()
		c.srv.notify() // no longer open: see Conns
		if c.ws != nil {
			if abrupt {
				c.ws.UnderlyingConn().Close()
			} else {
				c.sendClose(code)
				// Give the client a moment to echo the close, then the
				// reader's deadline ends the connection either way.
				_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now().Add(time.Second))
			}
		}
	})
}

func (c *Conn) sendClose(code int) {
	if c.closeSent.CompareAndSwap(false, true) {
		c.closeCode.Store(int64(code))
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	}
}
