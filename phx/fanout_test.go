//go:build go1.25

package phx

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// TestIdleSubscriptionMemory: an idle subscription costs at most 512 bytes
// whatever its buffer (the default, 256 messages, here): the buffer past C
// is made only when messages wait.
func TestIdleSubscriptionMemory(t *testing.T) {
	sock, _ := newFeedSocket(t)
	defer sock.Close()
	ch := sock.Channel("room:mem", nil)
	mustSub(t, ch) // the channel's actor runs
	const n = 10_000
	subs := make([]*Subscription, 0, n)
	before := memNow()
	for range n {
		subs = append(subs, mustSub(t, ch))
	}
	after := memNow()
	per := float64(int64(after.live-before.live)) / n
	t.Logf("idle subscription: %.0f B (live heap over %d, buffer %d)", per, n, sock.cfg.SubscriptionBuffer)
	if per > 512 {
		t.Fatalf("an idle subscription costs %.0f B, want ≤ 512", per)
	}
	runtime.KeepAlive(subs)
}

// TestRequestsOvertakeStalledConsumer: while a channel waits for its
// stalled consumer (Backpressure), a Push, a Subscribe, another
// subscription's Close and a Leave are served at once, not after
// SlowConsumerTimeout; then the consumer, reading again, gets every
// message read before the leave in order, nothing dropped, and its end
// (ErrLeft).
func TestRequestsOvertakeStalledConsumer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, SlowConsumerTimeout: 5 * time.Second})
		ch, jm := h.joined("room:1")
		jr := jm.JoinRef.String()
		sub := mustSub(t, ch, WithBuffer(4))
		other := mustSub(t, ch, WithBuffer(4))
		sent := 0
		burst := func(k int) {
			for range k {
				h.srv.push(t, jr, "room:1", "n", strconv.Itoa(sent))
				sent++
			}
			synctest.Wait()
		}
		burst(20) // past both buffers: the channel waits
		other.Close()
		start := time.Now()
		res := h.push(ch, "req", nil)
		pm := h.srv.expect(t, "room:1", "req")
		burst(5) // behind the reply, still held back
		h.srv.reply(t, pm, "ok", `"r"`)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `"r"` {
			t.Fatalf("push = %+v", r)
		}
		late := mustSub(t, ch, WithBuffer(1), WithOverflow(DropNewest))
		late.Close()
		for range other.C() {
		}
		if err := other.Err(); err != nil {
			t.Fatalf("closed subscription: %v", err)
		}
		left := async(func() error { return ch.Leave(context.Background()) })
		lm := h.srv.expect(t, "room:1", "phx_leave")
		want := sent
		burst(3) // after the leave: of no session (Stats.Stale)
		h.srv.reply(t, lm, "ok", "{}")
		if err := mustReady(t, left); err != nil {
			t.Fatalf("leave: %v", err)
		}
		if d := time.Since(start); d >= time.Second {
			t.Fatalf("requests took %v behind the stalled consumer", d)
		}
		got := 0
		for m := range sub.C() {
			if string(m.Payload) != strconv.Itoa(got) {
				t.Fatalf("message %d: %s", got, m.Payload)
			}
			got++
		}
		if got != want || sub.Dropped() != 0 || !errors.Is(sub.Err(), ErrLeft) {
			t.Fatalf("got %d of %d, dropped %d, err %v", got, want, sub.Dropped(), sub.Err())
		}
		if st := h.sock.Stats(); st.Dropped != 0 || st.Overflowed != 0 || st.Stale != 3 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestStalledConsumersWakeTheChannel: with several subscriptions backlogged
// at once, whichever consumer reads first moves the channel on, and a
// consumer that reads slowly but steadily never loses a message.
func TestStalledConsumersWakeTheChannel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, SlowConsumerTimeout: time.Second})
		ch, jm := h.joined("room:1")
		const n = 200
		subs := []*Subscription{mustSub(t, ch, WithBuffer(3)), mustSub(t, ch, WithBuffer(8)), mustSub(t, ch, WithBuffer(1))}
		tap := mustSub(t, h.sock, WithBuffer(5), Events("n"))
		for i := range n {
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", strconv.Itoa(i))
		}
		done := make(chan int, len(subs)+1)
		for k, sub := range append(subs, tap) {
			go func() {
				i := 0
				for m := range sub.C() {
					if string(m.Payload) != strconv.Itoa(i) {
						t.Errorf("consumer %d, message %d: %s", k, i, m.Payload)
					}
					i++
					if i == n {
						break
					}
					time.Sleep(time.Duration(k+1) * 100 * time.Millisecond) // under the stuck bound
				}
				done <- i
			}()
		}
		for range len(subs) + 1 {
			if got := <-done; got != n {
				t.Fatalf("got %d of %d", got, n)
			}
		}
		for _, sub := range append(subs, tap) {
			if sub.Dropped() != 0 {
				t.Fatalf("dropped %d", sub.Dropped())
			}
		}
	})
}
