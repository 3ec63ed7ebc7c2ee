package phx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/phxgo/phxgo/wire"
)

// Fallback returns a Transport that dials primary and falls back to
// fallback when primary does not work, as phoenix.js does with
// longPollFallbackMs:
//
//   - primary's Dial fails, except with a refused upgrade (a *DialError
//     with status 401 or 403: the server was reached and said no, which
//     another transport will not change) or because ctx ended;
//   - or primary has not opened within after;
//   - or, once open, it does not carry a heartbeat and its reply within
//     another period of after (a proxy that accepts the upgrade but passes
//     no frames). phoenix.js checks this with a ping; here Dial sends the
//     heartbeat itself (ref "phxgo-probe", in the serializer of the URL's
//     vsn) and returns once a frame has come back, so a connection that
//     Dial returns has carried frames both ways. The probe's reply is not
//     passed on (unless another frame came first: then the socket counts
//     it as unrouted). A server that leaves heartbeats unanswered fails the
//     check.
//
// Once a fallback connection has opened, every later Dial of this value
// goes straight to fallback: a socket that reconnects stays on it, as
// phoenix.js remembers its fallback. Give each socket its own value to keep
// that memory per socket, or share one among sockets to share it, as
// phoenix.js shares it through sessionStorage across a page. The returned
// Transport is safe for concurrent use.
//
// A nil primary is the WebSocket transport with websocket.DefaultDialer's
// settings and a 16 MiB read limit (Config.Dialer and Config.ReadLimit do
// not reach it); a nil fallback is &LongPoll{}; after <= 0 is 2.5 s, the
// default of phoenix.js's connectWithFallback.
func Fallback(primary, fallback Transport, after time.Duration) Transport {
	if primary == nil {
		d := *websocket.DefaultDialer
		d.WriteBufferPool = &writeBufferPool
		primary = &wsTransport{dialer: &d, readLimit: 16 << 20}
	}
	if fallback == nil {
		fallback = &LongPoll{}
	}
	if after <= 0 {
		after = 2500 * time.Millisecond
	}
	return &fallbackTransport{primary: primary, fallback: fallback, after: after}
}

type fallbackTransport struct {
	primary, fallback Transport
	after             time.Duration
	fellBack          atomic.Bool
}

// probeRef is the ref of the heartbeat that checks a primary connection;
// the socket's refs are numbers, so it cannot collide with them.
const probeRef = "phxgo-probe"

var errFallbackTimeout = errors.New("phx: primary transport did not open in time")

func (f *fallbackTransport) Dial(ctx context.Context, u string, header http.Header) (Conn, error) {
	if f.fellBack.Load() {
		return f.fallback.Dial(ctx, u, header)
	}
	c, err := f.dialPrimary(ctx, u, header)
	if err == nil {
		return c, nil
	}
	var de *DialError
	if ctx.Err() != nil || (errors.As(err, &de) && de.Unauthorized()) {
		return nil, err
	}
	c, err = f.fallback.Dial(ctx, u, header)
	if err != nil {
		return nil, err
	}
	f.fellBack.Store(true)
	return c, nil
}

func (f *fallbackTransport) dialPrimary(ctx context.Context, u string, header http.Header) (Conn, error) {
	dctx, cancel := context.WithTimeoutCause(ctx, f.after, errFallbackTimeout)
	c, err := f.primary.Dial(dctx, u, header)
	cancel()
	if err != nil {
		if errors.Is(context.Cause(dctx), errFallbackTimeout) && ctx.Err() == nil {
			return nil, newDialError(u, errFallbackTimeout)
		}
		return nil, err
	}
	return probe(ctx, c, u, f.after)
}

// probe sends a heartbeat over c and reads until a frame arrives within
// after. The probe's reply is swallowed; any other frame (the connection
// works too) is handed back first by the returned Conn.
func probe(ctx context.Context, c Conn, u string, after time.Duration) (Conn, error) {
	fail := func(err error) (Conn, error) {
		_ = c.Close()
		return nil, newDialError(u, fmt.Errorf("phx: primary transport failed its heartbeat check: %w", err))
	}
	var vsn string
	if pu, err := url.Parse(u); err == nil {
		vsn = pu.Query().Get("vsn")
	}
	ser, err := wire.SerializerFor(vsn)
	if err != nil {
		ser = wire.V2
	}
	hb := wire.Message{Ref: wire.NewRef(probeRef), Topic: wire.TopicPhoenix, Event: wire.EventHeartbeat, Payload: []byte("{}")}
	data, op, err := ser.EncodeClient(nil, &hb)
	if err != nil {
		return fail(err)
	}
	pctx, cancel := context.WithTimeoutCause(ctx, after, errFallbackTimeout)
	defer cancel()
	// ReadMessage takes no deadline: closing the connection unblocks it.
	stop := context.AfterFunc(pctx, func() { _ = c.Close() })
	if err := c.WriteMessage(op, data, time.Now().Add(after)); err != nil {
		stop()
		return fail(err)
	}
	rop, frame, err := c.ReadMessage()
	if !stop() {
		return fail(context.Cause(pctx))
	}
	if err != nil {
		return fail(err)
	}
	pc := &probedConn{Conn: c}
	if m, err := ser.DecodeServer(rop, frame); err != nil || m.Topic != wire.TopicPhoenix || m.Ref.String() != probeRef {
		pc.op, pc.frame, pc.held = rop, frame, true
	}
	return pc, nil
}

// probedConn hands back the frame read while probing before reading on.
type probedConn struct {
	Conn
	op    wire.Opcode
	frame []byte
	held  bool // read by the reader goroutine only
}

func (p *probedConn) ReadMessage() (wire.Opcode, []byte, error) {
	if p.held {
		p.held = false
		op, b := p.op, p.frame
		p.frame = nil
		return op, b, nil
	}
	return p.Conn.ReadMessage()
}
