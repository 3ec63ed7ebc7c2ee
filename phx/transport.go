package phx

import (
	"context"
	"errors"
	"io"
	"net/http"
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

func (w *wsConn) ReadMessage() (wire.Opcode, []byte, error) {
	op, b, err := w.c.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return 0, nil, &CloseError{Code: ce.Code, Reason: ce.Text}
		}
		return 0, nil, err
	}
	return wire.Opcode(op), b, nil
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
