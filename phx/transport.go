package phx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/phxgo/phxgo/wire"
)

// Transport opens connections. The default is a gorilla/websocket dialer;
// tests and benchmarks may plug in an in-memory one.
type Transport interface {
	// Dial opens a connection to url (already normalised, with query
	// parameters) sending header. A refused upgrade is a *DialError with
	// its HTTP status. Dial must return promptly when ctx is done. ctx
	// bounds the dial alone (Config.DialTimeout, the socket's stop) and
	// ends once Dial returns: the connection must not depend on it.
	Dial(ctx context.Context, url string, header http.Header) (Conn, error)
}

// Conn is one connection. The socket calls ReadMessage from one goroutine,
// WriteMessage and WriteClose from another, and Close from any goroutine.
type Conn interface {
	// ReadMessage returns the next data frame. When the peer closed the
	// connection the error is a *CloseError (code 1006 when no close frame
	// arrived).
	ReadMessage() (wire.Opcode, []byte, error)
	// WriteMessage writes one data frame, giving up at deadline.
	WriteMessage(op wire.Opcode, data []byte, deadline time.Time) error
	// WriteClose writes a close frame, giving up at deadline.
	WriteClose(code int, reason string, deadline time.Time) error
	// Close drops the connection at once; ReadMessage and WriteMessage
	// then return errors. It is safe to call concurrently and more than once.
	Close() error
}

type wsTransport struct {
	dialer    *websocket.Dialer
	readLimit int64
}

func (t *wsTransport) Dial(ctx context.Context, u string, header http.Header) (Conn, error) {
	// gorilla bounds the upgrade by ctx's deadline (set on the connection)
	// but does not watch ctx while it waits for the server's answer: when
	// ctx ends, w.abort makes the connection's pending reads fail at once.
	var w dialWatch
	d := *t.dialer
	d.NetDialContext = w.wrap(t.dialer.NetDialContext, t.dialer.NetDial)
	if t.dialer.NetDialTLSContext != nil {
		d.NetDialTLSContext = w.wrap(t.dialer.NetDialTLSContext, nil)
	}
	stop := context.AfterFunc(ctx, w.abort)
	c, resp, err := d.DialContext(ctx, u, header)
	stop()
	if err == nil && ctx.Err() != nil {
		// Upgraded as ctx ended: the deadline w.abort may have set would
		// break the connection, and the caller has gone anyway.
		_ = c.Close()
		return nil, newDialError(u, ctx.Err())
	}
	if err != nil {
		de := newDialError(u, err)
		if resp != nil {
			de.Status = resp.StatusCode
			if resp.Body != nil {
				de.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
			}
		}
		return nil, de
	}
	c.SetReadLimit(t.readLimit)
	return &wsConn{c: c}, nil
}

// dialWatch holds the connections a dial opened (a proxy's and the
// server's), so that abort can end the dial while it waits on them.
type dialWatch struct {
	mu      sync.Mutex
	conns   []net.Conn
	aborted bool
}

type netDialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// wrap returns a dial function that opens connections with f (or the
// context-less g, or a plain net.Dialer) and records them.
func (w *dialWatch) wrap(f netDialFunc, g func(network, addr string) (net.Conn, error)) netDialFunc {
	if f == nil {
		if g != nil {
			f = func(_ context.Context, network, addr string) (net.Conn, error) { return g(network, addr) }
		} else {
			var nd net.Dialer
			f = nd.DialContext
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := f(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.conns = append(w.conns, c)
		if w.aborted {
			_ = c.SetDeadline(time.Now())
		}
		return c, nil
	}
}

// abort makes every read and write of the dial's connections fail now.
func (w *dialWatch) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aborted = true
	for _, c := range w.conns {
		_ = c.SetDeadline(time.Now())
	}
}

type wsConn struct{ c *websocket.Conn }

// readBufs holds scratch buffers for reading frames, shared by all sockets
// so that an idle socket keeps none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// ReadMessage reads a frame through a pooled scratch buffer and returns an
// exact-size copy: one allocation per message, and a delivered payload
// (which aliases the frame) pins no more memory than its frame. The
// scratch buffer is taken once a frame has begun: a socket waiting for
// its next frame holds none.
func (w *wsConn) ReadMessage() (wire.Opcode, []byte, error) {
	op, r, err := w.nextFrame()
	if err != nil {
		return 0, nil, err
	}
	bp := readBufs.Get().(*[]byte)
	buf, err := readFrame(r, (*bp)[:0])
	var out []byte
	if err == nil {
		out = make([]byte, len(buf))
		copy(out, buf)
	}
	if cap(buf) <= 1<<20 { // do not keep huge buffers around
		*bp = buf[:0]
		readBufs.Put(bp)
	}
	return op, out, err
}

// nextFrame waits for the next data frame.
func (w *wsConn) nextFrame() (wire.Opcode, io.Reader, error) {
	op, r, err := w.c.NextReader()
	if err != nil {
		return 0, nil, wsReadErr(err)
	}
	return wire.Opcode(op), r, nil
}

// readFrame reads the rest of frame r into buf, grown as needed, and
// returns buf with its length the frame's. gorilla's buffered reader reads
// a frame part at least as large as its buffer straight into buf, so a
// large frame is not copied on its way.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, wsReadErr(err)
		}
	}
}

func wsReadErr(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Reason: ce.Text}
	}
	return err
}

func (w *wsConn) WriteMessage(op wire.Opcode, data []byte, deadline time.Time) error {
	if err := w.c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return w.c.WriteMessage(int(op), data)
}

func (w *wsConn) WriteClose(code int, reason string, deadline time.Time) error {
	return w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
}

func (w *wsConn) Close() error { return w.c.Close() }
