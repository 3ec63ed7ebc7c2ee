//go:build go1.25

package phx

import (
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// evqLen is the number of connection events the socket actor has not taken.
func (h *harness) evqLen() int {
	r := make(chan int, 1)
	if err := h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(a *sockActor) { r <- a.evq.Len() }}); err != nil {
		h.t.Fatal(err)
	}
	return <-r
}

// TestSocketEndingByItselfDoesNotHang: the reader, holding its last error
// while the socket's event queue is full, must not keep the socket from
// ending when the reconnect backoff gives up after a heartbeat timeout.
func TestSocketEndingByItselfDoesNotHang(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{
			HeartbeatInterval: 100 * time.Millisecond,
			Reconnect:         func() backoff.BackOff { return &backoff.StopBackOff{} },
		})
		ch, jm := h.joined("room:1")
		sub := ch.SubscribeWith([]Option{WithBuffer(1), WithOverflow(Block)})
		defer sub.Close()
		// Fill the subscription, the channel's inbox and the socket's
		// event queue: the reader then waits to hand over what it reads.
		for i := 0; h.evqLen() < 256; i++ {
			if i > 4*chanInbox {
				t.Fatal("the event queue never filled")
			}
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", strconv.Itoa(i))
			synctest.Wait()
		}
		h.srv.closeWith(1011) // the reader's last error waits for room
		sleep(time.Second)    // heartbeat timeout, backoff gives up
		if h.sock.State() != StateClosed {
			t.Fatalf("state %v", h.sock.State())
		}
		select {
		case <-h.sock.Done():
		default:
			t.Fatal("the socket ended but Done is not closed")
		}
		if err := h.sock.Err(); err == nil {
			t.Fatal("Err is nil")
		}
	})
}
