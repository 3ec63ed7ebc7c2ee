package phx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	c    Conn // evOpen
	err  error
}

// connHandle is one connection attempt. The actor owns every field except
// done, which the connection goroutine closes when it and its writer have
// returned, and out and wdone, which the channel actors also use to write.
type connHandle struct {
	cancel context.CancelCauseFunc
	c      Conn
	out    chan outFrame
	done   chan struct{}
	wdone  chan struct{} // closed when the writer returned
	hard   deadline
	st     *connState // published when it opened; immutable afterwards
}

// connState is a connection state the socket publishes to its channels:
// the open connection (nil when none) and a generation that grows with
// every change, so that a channel can order it against the frames it
// holds. Immutable.
type connState struct {
	gen uint64
	h   *connHandle
}

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
		cancel: cancel,
		out:    make(chan outFrame, 64),
		done:   make(chan struct{}),
		wdone:  make(chan struct{}),
	}
	h.hard.h, h.hard.idx = h, -1
	a.conn = h
	a.g.Go(cctx, actor.Func(func(ctx context.Context) error {
		defer close(h.done)
		a.connLoop(ctx, h, u, header)
		return nil
	}))
}

// send hands an event to the actor; false when the connection is being
// torn down (or the socket stopped) and nobody will read it.
func (a *sockActor) sendEv(ctx context.Context, ev connEvent) bool {
	return a.evq.Put(ctx, ev) == nil
}

// connLoop dials, then reads until the connection ends. It runs in the
// connection's goroutine and owns the writer goroutine.
func (a *sockActor) connLoop(ctx context.Context, h *connHandle, u string, header map[string][]string) {
	c, err := a.dialOnce(ctx, u, header)
	if err != nil {
		close(h.wdone)
		a.sendEv(ctx, connEvent{h: h, kind: evClosed, err: err})
		return
	}
	var wg actor.Group
	defer wg.Wait()
	wg.Go(ctx, actor.Func(func(ctx context.Context) error {
		defer close(h.wdone)
		a.writeLoop(ctx, h, c)
		return nil
	}))
	if !a.sendEv(ctx, connEvent{h: h, kind: evOpen, c: c}) {
		_ = c.Close()
		return
	}
	ser := a.s.ser
	// The reader checks only a V2 frame's envelope and the socket actor
	// checks the payload: on two cores the check, the costliest step for
	// large payloads, then runs beside the next read instead of before it.
	deferCheck := ser == wire.V2
	for {
		op, b, err := c.ReadMessage()
		if err != nil {
			if ctx.Err() == nil { // not torn down by the actor: tell it
				h.cancel(&closeReq{})
				a.sendEv(a.ctx, connEvent{h: h, kind: evClosed, err: err})
			}
			return
		}
		a.s.onFrame(ctx, Received, op, b)
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
		if !a.sendEv(ctx, connEvent{h: h, kind: evFrame, msg: m}) {
			return
		}
	}
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

// writeLoop is the only goroutine writing to c. When the connection's
// context ends it sends the requested close frame (bounded by CloseTimeout)
// and drops the connection, which also ends the reader.
func (a *sockActor) writeLoop(ctx context.Context, h *connHandle, c Conn) {
	cfg := &a.s.cfg
	for {
		select {
		case f := <-h.out:
			// Before the write, so that a frame is seen before its answer.
			a.s.onFrame(ctx, Sent, f.op, f.data)
			if err := c.WriteMessage(f.op, f.data, time.Now().Add(cfg.WriteTimeout)); err != nil {
				_ = c.Close()
				return
			}
		case <-ctx.Done():
			var cr *closeReq
			if errors.As(context.Cause(ctx), &cr) && cr.code != 0 {
				_ = c.WriteClose(cr.code, cr.reason, time.Now().Add(cfg.CloseTimeout))
			}
			_ = c.Close()
			return
		}
	}
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
	if len(a.outq) == 0 {
		select {
		case a.conn.out <- f:
			return nil
		default:
		}
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
