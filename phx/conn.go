package phx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// Connection events from a connection's goroutines to the actor, in order.
type connEvKind uint8

const (
	evOpen connEvKind = iota
	evFrame
	evClosed // the connection ended or the dial failed
)

type connEvent struct {
	h    *connHandle
	kind connEvKind
	msg  wire.Message
	lent *frameBuf // evFrame: the reusable buffer msg aliases (see readLent)
	c    Conn      // evOpen
	err  error
}

// connHandle is one connection attempt. The actor owns every field except
// done, which the reader closes when the connection's goroutines have
// returned, and the write side (out, queued, tok, wc, writing, wdone),
// which the channel actors also use.
type connHandle struct {
	a      *sockActor
	ctx    context.Context
	cancel context.CancelCauseFunc
	c      Conn
	out    chan outFrame
	done   chan struct{}
	wdone  chan struct{} // closed once the connection takes no more writes
	hard   deadline
	st     *connState // published when it opened; immutable afterwards

	// Write ownership: whoever holds tok's one token may write to wc. A
	// channel actor that finds the token free and nothing queued writes
	// its frame itself. Otherwise the frame waits in out for a writer
	// goroutine, started when frames are queued and none runs (writing),
	// which takes the token, writes until out is empty and ends: an idle
	// connection keeps no writer. queued counts the frames handed to out
	// and not yet written, so that a frame written directly never
	// overtakes one queued before it. The connection's closer takes the
	// token for good.
	tok     chan struct{}
	queued  atomic.Int64
	writing atomic.Bool
	wc      Conn // set before the token is first given

	// inflight counts the frames the reader handed to the socket actor
	// and the actor has not finished routing; proven is set once the
	// actor has seen a reply on this connection (proveHealthy). See
	// routeDirect.
	inflight atomic.Int64
	proven   atomic.Bool
}

// enqueue hands f to the writer's queue without waiting; false when full.
func (h *connHandle) enqueue(f outFrame) bool {
	h.queued.Add(1)
	select {
	case h.out <- f:
		h.kick()
		return true
	default:
		h.queued.Add(-1)
		return false
	}
}

// kick starts a writer for the frames queued unless one runs. A writer
// that ends looks at the queue again after clearing writing, so a frame
// queued as it ends is never left without one.
func (h *connHandle) kick() {
	if h.writing.CompareAndSwap(false, true) {
		h.a.g.Spawn(h.ctx, actor.Func(func(ctx context.Context) error {
			h.a.writeLoop(ctx, h, h.wc)
			return nil
		}))
	}
}

// tryWrite writes f at once when the connection is idle: the token free
// and nothing queued. ok is false when it must be queued instead; err is
// the write's error, after which the connection is dropped.
func (h *connHandle) tryWrite(f outFrame, timeout time.Duration) (ok bool, err error) {
	select {
	case <-h.tok:
	default:
		return false, nil
	}
	if h.queued.Load() != 0 {
		h.tok <- struct{}{}
		return false, nil
	}
	h.a.s.onFrame(h.ctx, Sent, f.op, f.data) // before the write, as the writer does
	if err := h.wc.WriteMessage(f.op, f.data, time.Now().Add(timeout)); err != nil {
		// The token is kept: the connection is done for, and the writer
		// ends with it (the reader's error cancels its context).
		_ = h.wc.Close()
		return true, err
	}
	h.tok <- struct{}{}
	return true, nil
}

// connState is a connection state the socket publishes to its channels:
// the open connection (nil when none) and a generation that grows with
// every change, so that a channel can order it against the frames it
// holds. Immutable.
type connState struct {
	gen uint64
	h   *connHandle
}

// writeQueue bounds the frames waiting for the writer goroutine. A frame
// of a channel is written directly when the connection is idle, so the
// queue fills only while a write is in progress; each slot costs 32 bytes
// for the life of the connection.
const writeQueue = 16

type outFrame struct {
	op   wire.Opcode
	data []byte
}

// closeReq, as a connection context's cancel cause, tells the writer which
// close frame to send (none when code is 0).
type closeReq struct {
	code   int
	reason string
}

func (c *closeReq) Error() string { return "phx: closing connection" }

func (a *sockActor) connectURL() (string, map[string][]string) {
	cfg := &a.s.cfg
	u, _ := url.Parse(a.s.endpoint) // normalised at Connect
	q := u.Query()
	for k, v := range cfg.Params {
		q[k] = append(q[k], v...)
	}
	if cfg.ParamsFunc != nil {
		for k, v := range cfg.ParamsFunc() {
			q[k] = append(q[k], v...)
		}
	}
	q.Set("vsn", a.s.ser.Vsn())
	u.RawQuery = q.Encode()
	h := cfg.Header.Clone()
	if h == nil {
		h = make(map[string][]string)
	}
	tok := cfg.AuthToken
	if cfg.AuthTokenFunc != nil {
		tok = cfg.AuthTokenFunc()
	}
	if tok != "" {
		h.Set("Sec-WebSocket-Protocol", authProtocol(tok))
	}
	return u.String(), h
}

func (a *sockActor) dial() {
	a.setState(StateConnecting)
	u, header := a.connectURL()
	// Not derived from the actor's context: the actor cancels every
	// connection itself, with the close frame it wants sent.
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(a.ctx))
	h := &connHandle{
		a:      a,
		ctx:    cctx,
		cancel: cancel,
		out:    make(chan outFrame, writeQueue),
		tok:    make(chan struct{}, 1),
		done:   make(chan struct{}),
		wdone:  make(chan struct{}),
	}
	h.hard.h, h.hard.idx = h, -1
	a.conn = h
	a.g.Spawn(cctx, actor.Func(func(ctx context.Context) error {
		a.dialConn(ctx, h, u, header)
		return nil
	}))
}

// send hands an event to the actor; false when the connection is being
// torn down (or the socket stopped) and nobody will read it.
func (a *sockActor) sendEv(ctx context.Context, ev connEvent) bool {
	return a.evq.Put(ctx, ev) == nil
}

// dialConn dials in a goroutine of its own, which ends once the connection
// is open: the reader and the writer then start on fresh goroutines of the
// socket's group. The handshake's deep call chains grow a goroutine's
// stack to several KiB, and a reader parked in its read for the life of
// an idle socket would keep that stack.
func (a *sockActor) dialConn(ctx context.Context, h *connHandle, u string, header map[string][]string) {
	c, err := a.dialOnce(ctx, u, header)
	if err != nil {
		close(h.wdone)
		a.sendEv(ctx, connEvent{h: h, kind: evClosed, err: err})
		close(h.done)
		return
	}
	h.wc = c
	h.tok <- struct{}{}
	// The closer: once the connection's context ends, the close frame and
	// the drop, on a goroutine of the group (the reader, a member, waits
	// for wdone, so the group is not being waited on empty meanwhile).
	context.AfterFunc(ctx, func() {
		a.g.Spawn(context.WithoutCancel(ctx), actor.Func(func(context.Context) error {
			defer close(h.wdone)
			a.closeConn(ctx, h, c)
			return nil
		}))
	})
	a.g.Spawn(ctx, actor.Func(func(ctx context.Context) error {
		defer close(h.done)
		defer func() { <-h.wdone }()
		if !a.sendEv(ctx, connEvent{h: h, kind: evOpen, c: c}) {
			_ = c.Close()
			return nil
		}
		a.readLoop(ctx, h, c)
		return nil
	}))
}

// readLoop reads until the connection ends.
func (a *sockActor) readLoop(ctx context.Context, h *connHandle, c Conn) {
	ser := a.s.ser
	// The reader checks only a V2 frame's envelope and the socket actor
	// checks the payload: on two cores the check, the costliest step for
	// large payloads, then runs beside the next read instead of before it.
	deferCheck := ser == wire.V2
	wc, canLend := c.(*wsConn)
	canLend = canLend && deferCheck
	for {
		var (
			op   wire.Opcode
			b    []byte
			err  error
			lent *frameBuf
		)
		if canLend && a.s.nLend.Load() > 0 && !a.tapsOn.Load() {
			var r io.Reader
			if op, r, err = wc.nextFrame(); err == nil {
				// Taken once the frame has begun: a socket waiting for
				// its next frame holds no buffer.
				lent = getFrameBuf()
				lent.b, err = readFrame(r, lent.b)
				b = lent.b
			}
		} else {
			op, b, err = c.ReadMessage()
		}
		if err != nil {
			if ctx.Err() == nil { // not torn down by the actor: tell it
				h.cancel(&closeReq{})
				a.sendEv(a.ctx, connEvent{h: h, kind: evClosed, err: err})
			}
			return
		}
		if lent != nil && (len(b) < minLent || a.s.frameTaps.Load() != nil || a.s.debugOn(ctx)) {
			// A small frame costs less to copy than to lend; a tap or a
			// log line may keep the frame.
			b = bytes.Clone(b)
			lent.release()
			lent = nil
		}
		if lent != nil {
			a.s.countFrame(Received, b) // no tap, no log: see above
		} else {
			a.s.onFrame(ctx, Received, op, b)
		}
		var m wire.Message
		if deferCheck {
			m, err = wire.DecodeEnvelope(op, b)
		} else {
			m, err = ser.DecodeServer(op, b)
		}
		if err != nil {
			a.s.nMalformed.Add(1)
			// The close frame is chosen before the actor hears of it, so
			// that its own teardown cannot pick another.
			h.cancel(&closeReq{code: 1002, reason: "protocol error"})
			a.sendEv(a.ctx, connEvent{h: h, kind: evClosed, err: fmt.Errorf("%w: %w", ErrProtocol, err)})
			return
		}
		a.s.nReceived.Add(1)
		if lent != nil && !lendable(&m) {
			m.Payload = bytes.Clone(m.Payload)
			lent.release()
			lent = nil
		}
		if deferCheck && m.Event == wire.EventReply && a.routeDirect(h, &m) {
			continue
		}
		h.inflight.Add(1)
		if !a.sendEv(ctx, connEvent{h: h, kind: evFrame, msg: m, lent: lent}) {
			return
		}
	}
}

// minLent is the smallest frame lent (see Lend). Below it, a copy into a
// fresh allocation costs less than the buffer's round trip through the
// pool between the consumer's goroutine and the reader's.
const minLent = 1024

// lendable: m may stay in a reusable buffer, as only a channel's
// subscriptions see it. Replies, phx_error and phx_close are kept by the
// channel or handed to callers, and the phoenix topic is the socket's.
func lendable(m *wire.Message) bool {
	switch m.Event {
	case wire.EventReply, wire.EventError, wire.EventClose:
		return false
	}
	return m.Topic != wire.TopicPhoenix
}

// dialOnce runs the transport's Dial bounded by DialTimeout: without a
// bound, a server that accepts TCP but never answers the upgrade would hold
// the attempt for as long as the transport allows (45 s in gorilla's
// default dialer).
func (a *sockActor) dialOnce(ctx context.Context, u string, header map[string][]string) (Conn, error) {
	d := a.s.cfg.DialTimeout
	dctx, cancel := context.WithTimeoutCause(ctx, d, errDialTimeout)
	defer cancel()
	c, err := a.s.cfg.Transport.Dial(dctx, u, header)
	if err == nil {
		return c, nil
	}
	err = sanitizeDialErr(err)
	// The transport may fail on the deadline (set on its connection, as
	// gorilla does) a moment before dctx's own timer fires.
	dl, _ := dctx.Deadline()
	if ctx.Err() == nil && (errors.Is(context.Cause(dctx), errDialTimeout) || !time.Now().Before(dl)) {
		var de *DialError
		if errors.As(err, &de) {
			cp := *de
			cp.Err = fmt.Errorf("%w: no connection within %v: %w", ErrTimeout, d, de.Err)
			return nil, &cp
		}
		return nil, newDialError(u, fmt.Errorf("%w: no connection within %v: %w", ErrTimeout, d, err))
	}
	return nil, err
}

var errDialTimeout = errors.New("phx: dial timeout")

// writeLoop writes the frames queued for c while there are any, holding
// the write token (see connHandle), then ends. When the connection's
// context ends first it leaves the frames to the teardown: the closer
// sends the close frame and drops the connection.
func (a *sockActor) writeLoop(ctx context.Context, h *connHandle, c Conn) {
	cfg := &a.s.cfg
	for {
		select {
		case <-h.tok:
		case <-ctx.Done():
			return // writing stays set: no writer is needed any more
		}
		for drained := false; !drained; {
			select {
			case f := <-h.out:
				// Before the write, so that a frame is seen before its answer.
				a.s.onFrame(ctx, Sent, f.op, f.data)
				err := c.WriteMessage(f.op, f.data, time.Now().Add(cfg.WriteTimeout))
				h.queued.Add(-1)
				if err != nil {
					// The token is kept: the connection is done for.
					_ = c.Close()
					return
				}
			default:
				drained = true
			}
		}
		h.tok <- struct{}{}
		h.writing.Store(false)
		if len(h.out) == 0 || !h.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// closeConn ends connection c once its context is done: with the close
// frame asked for when the write token comes within CloseTimeout (a
// direct write holds it at most WriteTimeout), then drops it.
func (a *sockActor) closeConn(ctx context.Context, h *connHandle, c Conn) {
	cfg := &a.s.cfg
	var cr *closeReq
	if errors.As(context.Cause(ctx), &cr) && cr.code != 0 {
		t := time.NewTimer(cfg.CloseTimeout)
		select {
		case <-h.tok:
			_ = c.WriteClose(cr.code, cr.reason, time.Now().Add(cfg.CloseTimeout))
		case <-t.C:
		}
		t.Stop()
	}
	_ = c.Close()
}

// write queues a frame for the current connection. The socket actor never
// waits for the writer: the channel actors share its queue, and a socket
// blocked there while the server is itself blocked writing to this client
// would stop the reader too. A frame that finds the queue full waits in
// outq (heartbeats and pings only, so a handful) and the run loop hands it
// over when there is room.
func (a *sockActor) write(m *wire.Message) error {
	if !a.open {
		return ErrDisconnected
	}
	data, op, err := a.s.ser.EncodeClient(nil, m)
	if err != nil {
		return err
	}
	f := outFrame{op: op, data: data}
	if len(a.outq) == 0 && a.conn.enqueue(f) {
		return nil
	}
	a.outq = append(a.outq, f)
	return nil
}

// teardown ends connection h: its writer sends the close frame req asks
// for, and if that hangs, the hard-close deadline drops the connection.
func (a *sockActor) teardown(h *connHandle, req *closeReq) {
	if h == nil {
		return
	}
	h.cancel(req)
	a.closing[h] = struct{}{}
	a.dls.schedule(&h.hard, time.Now().Add(a.s.cfg.CloseTimeout))
	if a.conn == h {
		a.conn, a.open = nil, false
		clear(a.outq)
		a.outq = a.outq[:0]
	}
}
