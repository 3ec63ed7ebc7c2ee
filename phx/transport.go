package phx

import (
	"context"
	"errors"
	"io"
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
	// its HTTP status. Dial must return promptly when ctx is done.
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
	c, resp, err := t.dialer.DialContext(ctx, u, header)
	if err != nil {
		de := &DialError{URL: u, Err: err}
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

type wsConn struct{ c *websocket.Conn }

// readBufs holds scratch buffers for reading frames, shared by all sockets
// so that an idle socket keeps none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// ReadMessage reads a frame through a pooled scratch buffer and returns an
// exact-size copy: one allocation per message, and a delivered payload
// (which aliases the frame) pins no more memory than its frame.
func (w *wsConn) ReadMessage() (wire.Opcode, []byte, error) {
	op, r, err := w.c.NextReader()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return 0, nil, &CloseError{Code: ce.Code, Reason: ce.Text}
		}
		return 0, nil, err
	}
	bp := readBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if cap(buf) <= 1<<20 {
				*bp = buf
				readBufs.Put(bp)
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return 0, nil, &CloseError{Code: ce.Code, Reason: ce.Text}
			}
			return 0, nil, err
		}
	}
	out := make([]byte, len(buf))
	copy(out, buf)
	if cap(buf) <= 1<<20 { // do not keep huge buffers around
		*bp = buf
		readBufs.Put(bp)
	}
	return wire.Opcode(op), out, nil
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
