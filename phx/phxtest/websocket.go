package phxtest

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

const writeTimeout = 5 * time.Second

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		// Bandit answers a plain GET with 400 and this text.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("'connection' header must contain 'upgrade', got [" +
			strings.ToLower(strings.Join(r.Header.Values("Connection"), ", ")) + "]"))
		return
	}
	sock, vsn, ok := s.connect(r, "websocket")
	if !ok {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	ws, err := s.upgrade.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := newConn(s, "websocket", vsn, sock, r.URL.Query())
	c.ws = ws
	if !s.add(c) {
		ws.Close()
		close(c.done)
		return
	}
	ws.SetReadLimit(s.cfg.MaxFrameSize)
	ws.SetCloseHandler(func(code int, text string) error {
		// Bandit answers every valid client close code with 1000.
		c.sendClose(websocket.CloseNormalClosure)
		return nil
	})
	ws.SetPingHandler(func(data string) error {
		c.extendIdle()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})

	var wg sync.WaitGroup
	startSession(c, &wg)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	if c.effectiveFaults().CloseOnOpen {
		c.terminate(0, true)
	}
	c.readLoop()
	c.cancel()
	ws.UnderlyingConn().Close()
	wg.Wait()
	ws.Close()
	s.remove(c)
	close(c.done)
}

func (c *Conn) extendIdle() {
	if d := c.srv.cfg.IdleTimeout; d > 0 {
		_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now().Add(d))
	}
}

// readLoop is the connection's only reader; it returns when the
// connection ends, having chosen the close code Phoenix would send.
func (c *Conn) readLoop() {
	for {
		if p := c.paused.Load(); p != nil {
			c.parked.Store(true)
			c.srv.notify()
			select {
			case <-*p:
				c.parked.Store(false)
			case <-c.ctx.Done():
				return
			}
		}
		if c.ctx.Err() == nil {
			c.extendIdle()
		}
		op, data, err := c.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case c.ctx.Err() != nil:
			case errors.As(err, &ne) && ne.Timeout():
				c.terminate(websocket.CloseProtocolError, false) // Bandit's idle close: 1002
			case errors.Is(err, websocket.ErrReadLimit):
				// gorilla has sent the 1009. Keep swallowing the rest of the
				// message for a moment, as Bandit does, so that the client
				// can finish writing and read the close frame before the
				// TCP connection goes.
				c.closeCode.Store(websocket.CloseMessageTooBig)
				c.closeSent.Store(true)
				c.cancel() // the session ends now: channels stop, presences leave
				drain(c.ws.UnderlyingConn(), 100*time.Millisecond, time.Second)
				c.terminate(0, true)
			default:
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.clientCloseCode.Store(int64(ce.Code))
				}
				c.terminate(0, true)
			}
			return
		}
		if c.ctx.Err() != nil {
			continue // closing: wait for the client's close frame
		}
		var f inFrame
		if op == websocket.TextMessage {
			if !utf8.Valid(data) {
				// Keep reading until the client answers the close, so
				// that closing the TCP connection cannot reset it before
				// the client has read the close frame.
				c.terminate(websocket.CloseInvalidFramePayloadData, false)
				continue
			}
			f, err = decodeText(c.vsn, data)
		} else {
			f, err = decodeBinary(c.vsn, data)
		}
		if err != nil || c.effectiveFaults().FailFrames {
			c.terminate(websocket.CloseInternalServerErr, false)
			continue
		}
		if c.deliver(c.ctx, f) != nil {
			return
		}
	}
}

// writeLoop is the connection's only writer of data frames.
func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.out:
			op, data := encode(c.vsn, f)
			if op != websocket.TextMessage && op != websocket.BinaryMessage {
				// close, ping and pong sent raw; control frames carry at
				// most 125 bytes, and gorilla refuses more.
				c.recordSent(f)
				_ = c.ws.WriteControl(op, data, time.Now().Add(time.Second))
				continue
			}
			// Recorded before the write, so that a client that has read a
			// frame always finds it in Sent.
			c.recordSent(f)
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteMessage(op, data); err != nil {
				c.terminate(0, true)
				return
			}
		}
	}
}

// drain discards what the peer sends until it pauses for quiet or limit
// has passed.
func drain(nc net.Conn, quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	buf := make([]byte, 64<<10)
	for {
		dl := time.Now().Add(quiet)
		if dl.After(end) {
			dl = end
		}
		_ = nc.SetReadDeadline(dl)
		if _, err := nc.Read(buf); err != nil {
			return
		}
	}
}
