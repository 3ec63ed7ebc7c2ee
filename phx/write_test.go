package phx

import (
	"errors"
	"testing"
	"time"

	"github.com/phxgo/phxgo/wire"
)

// recConn records the frames written to it.
type recConn struct {
	Conn
	got  []string
	fail error
}

func (c *recConn) WriteMessage(_ wire.Opcode, data []byte, _ time.Time) error {
	if c.fail != nil {
		return c.fail
	}
	c.got = append(c.got, string(data))
	return nil
}

func (c *recConn) Close() error { return nil }

func newTestHandle(c Conn) *connHandle {
	h := &connHandle{out: make(chan outFrame, 4), tok: make(chan struct{}, 1), wc: c}
	h.tok <- struct{}{}
	return h
}

// TestDirectWriteKeepsOrder: a frame is written directly only when the
// connection is idle; one queued before it (even one the writer has taken
// but not yet written) makes it queue too, so frames never overtake.
func TestDirectWriteKeepsOrder(t *testing.T) {
	t.Parallel()
	c := &recConn{}
	h := newTestHandle(c)
	if ok, err := h.tryWrite(outFrame{data: []byte("a")}, time.Second); !ok || err != nil {
		t.Fatalf("idle connection: ok %v err %v", ok, err)
	}
	if len(h.tok) != 1 {
		t.Fatal("token not given back after a direct write")
	}
	if !h.enqueue(outFrame{data: []byte("b")}) {
		t.Fatal("enqueue")
	}
	if ok, _ := h.tryWrite(outFrame{data: []byte("c")}, time.Second); ok {
		t.Fatal("direct write overtook a queued frame")
	}
	// The writer has taken b off the queue but not written it yet.
	<-h.out
	if ok, _ := h.tryWrite(outFrame{data: []byte("c")}, time.Second); ok {
		t.Fatal("direct write overtook a frame the writer holds")
	}
	h.queued.Add(-1) // b written
	if ok, _ := h.tryWrite(outFrame{data: []byte("c")}, time.Second); !ok {
		t.Fatal("idle again, yet not written directly")
	}
	if got := c.got; len(got) != 2 || got[0] != "a" || got[1] != "c" {
		t.Fatalf("written %q", got)
	}
	// Someone else holds the token: queue.
	<-h.tok
	if ok, _ := h.tryWrite(outFrame{data: []byte("d")}, time.Second); ok {
		t.Fatal("wrote without the token")
	}
}

// TestDirectWriteErrorKeepsToken: a failed direct write leaves the
// connection to its teardown; nobody writes to it again.
func TestDirectWriteErrorKeepsToken(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	h := newTestHandle(&recConn{fail: boom})
	if ok, err := h.tryWrite(outFrame{data: []byte("a")}, time.Second); !ok || !errors.Is(err, boom) {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if len(h.tok) != 0 {
		t.Fatal("token given back after a failed write")
	}
}
