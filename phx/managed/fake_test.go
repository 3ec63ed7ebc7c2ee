package managed_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/wire"
)

// fakeTransport is an in-memory Phoenix server for tests in a synctest
// bubble (phxtest runs over real sockets, which a bubble cannot wait on).
// It answers joins, leaves and heartbeats with ok, echoes pushes, and
// leaves the event "noreply" unanswered.
type fakeTransport struct {
	mu   sync.Mutex
	sent []wire.Message // pushes received, in order
	// silent topics get no reply to their joins; mute ones none to their leaves
	silent, mute map[string]bool
}

type fakeFrame struct {
	op   wire.Opcode
	data []byte
}

type fakeConn struct {
	toClient chan fakeFrame
	toServer chan []byte
	once     sync.Once
	closed   chan struct{}
}

func (tr *fakeTransport) Dial(ctx context.Context, _ string, _ http.Header) (phx.Conn, error) {
	c := &fakeConn{toClient: make(chan fakeFrame, 1024), toServer: make(chan []byte, 1024), closed: make(chan struct{})}
	go tr.serve(c)
	return c, nil
}

func (tr *fakeTransport) pushes() []wire.Message {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]wire.Message(nil), tr.sent...)
}

func (tr *fakeTransport) serve(c *fakeConn) {
	for {
		select {
		case data := <-c.toServer:
			m, err := wire.V2.DecodeClient(wire.Text, data)
			if err != nil {
				continue
			}
			tr.mu.Lock()
			silent, mute := tr.silent[m.Topic], tr.mute[m.Topic]
			tr.mu.Unlock()
			switch m.Event {
			case wire.EventJoin, wire.EventLeave:
				if m.Event == wire.EventJoin && silent || m.Event == wire.EventLeave && mute {
					continue
				}
			case "heartbeat":
			case "noreply":
				tr.mu.Lock()
				tr.sent = append(tr.sent, m)
				tr.mu.Unlock()
				continue
			default:
				tr.mu.Lock()
				tr.sent = append(tr.sent, m)
				tr.mu.Unlock()
			}
			rep := wire.Message{JoinRef: m.JoinRef, Ref: m.Ref, Topic: m.Topic, Event: wire.EventReply}
			rep.Payload, _ = json.Marshal(map[string]any{"status": "ok", "response": json.RawMessage(orEmpty(m.Payload))})
			out, _, err := wire.V2.EncodeServer(nil, &rep)
			if err != nil {
				continue
			}
			select {
			case c.toClient <- fakeFrame{wire.Text, out}:
			case <-c.closed:
				return
			}
		case <-c.closed:
			return
		}
	}
}

func orEmpty(p []byte) []byte {
	if len(p) == 0 {
		return []byte("{}")
	}
	return p
}

func (c *fakeConn) ReadMessage() (wire.Opcode, []byte, error) {
	select {
	case f := <-c.toClient:
		return f.op, f.data, nil
	case <-c.closed:
		return 0, nil, &phx.CloseError{Code: 1006}
	}
}

func (c *fakeConn) WriteMessage(_ wire.Opcode, data []byte, _ time.Time) error {
	select {
	case c.toServer <- append([]byte(nil), data...):
		return nil
	case <-c.closed:
		return errors.New("closed")
	}
}

func (c *fakeConn) WriteClose(int, string, time.Time) error { return c.Close() }

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
