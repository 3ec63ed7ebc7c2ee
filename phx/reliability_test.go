//go:build go1.25

package phx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/wire"
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
// ending when the socket ends by itself meanwhile (here: a malformed
// payload further in the batch it was waiting with, and a reconnect
// backoff that gives up).
func TestSocketEndingByItselfDoesNotHang(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{
			HeartbeatInterval: -1,
			Reconnect:         func() backoff.BackOff { return &backoff.StopBackOff{} },
		})
		ch, jm := h.joined("room:1")
		jr := jm.JoinRef.String()
		sub := mustSub(t, ch, WithBuffer(1), WithOverflow(Block))
		ca := ch.a.Load()
		// The channel waits for the consumer and its inbox fills.
		for i := 0; ca.in.Len() < chanInbox; i++ {
			if i > 4*chanInbox {
				t.Fatal("the inbox never filled")
			}
			h.srv.push(t, jr, "room:1", "n", strconv.Itoa(i))
			synctest.Wait()
		}
		// One batch for the socket: a frame that finds the inbox full, then
		// a malformed payload.
		held, release := make(chan struct{}), make(chan struct{})
		if err := h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(*sockActor) { close(held); <-release }}); err != nil {
			t.Fatal(err)
		}
		<-held
		h.srv.push(t, jr, "room:1", "n", `"waits"`)
		h.srv.sendRaw(wire.Text, []byte(`[null,null,"room:1","n",{"a":}]`))
		synctest.Wait()
		close(release)
		// The socket waits for room in the inbox; the reader fills the
		// event queue, then its last error waits for room too.
		for i := 0; h.evqLen() < 256; i++ {
			if i > 1024 {
				t.Fatal("the event queue never filled")
			}
			h.srv.push(t, jr, "room:1", "n", `"more"`)
			synctest.Wait()
		}
		h.srv.closeWith(1011)
		synctest.Wait()
		sub.Close() // the socket goes on, meets the bad payload and ends
		sleep(time.Second)
		if h.sock.State() != StateClosed {
			t.Fatalf("state %v %+v inbox %d evq %d", h.sock.State(), h.sock.Stats(), ca.in.Len(), h.evqLen())
		}
		select {
		case <-h.sock.Done():
		default:
			t.Fatal("the socket ended but Done is not closed")
		}
		if err := h.sock.Err(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("Err = %v", err)
		}
	})
}

// TestInboxBoundHoldsAgainstControlFrames: replies the channel did not ask
// for, phx_error and phx_close do not pass a full inbox's bound; the reply
// to a push the channel waits for still does, even behind them.
func TestInboxBoundHoldsAgainstControlFrames(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:stuck")
		res := h.push(ch, "req", nil)
		pm := h.srv.expect(t, "room:stuck", "req")
		held, release := make(chan struct{}), make(chan struct{})
		ca := ch.a.Load()
		if err := ca.mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { close(held); <-release }}); err != nil {
			t.Fatal(err)
		}
		<-held
		jr := jm.JoinRef.String()
		for i := range chanInbox {
			h.srv.push(t, jr, "room:stuck", "n", strconv.Itoa(i))
		}
		const bogus = 20000
		for i := range bogus {
			h.srv.send(t, wire.Message{JoinRef: ref(jr), Ref: ref(strconv.Itoa(1_000_000 + i)), Topic: "room:stuck",
				Event: wire.EventReply, Payload: []byte(`{"status":"ok","response":{}}`)})
			if i%1000 == 0 {
				synctest.Wait()
			}
		}
		for range 100 {
			h.srv.push(t, "998", "room:stuck", wire.EventError, "{}")
			h.srv.push(t, "999", "room:stuck", wire.EventClose, "{}")
		}
		h.srv.reply(t, pm, "ok", `"r"`)
		synctest.Wait()
		if n := ca.in.Len(); n > chanInbox+3 {
			t.Fatalf("inbox holds %d frames, bound %d", n, chanInbox)
		}
		if st := h.sock.Stats(); st.Overflowed < bogus {
			t.Fatalf("overflowed %d, want ≥ %d", st.Overflowed, bogus)
		}
		close(release)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `"r"` {
			t.Fatalf("reply behind the bogus ones: %+v", r)
		}
	})
}

// TestSocketWideBlockDoesNotFreezeSocket: a socket-wide subscription whose
// consumer is stuck (Block policy) waits alone: Ping, another topic's Join
// and the heartbeat go on, and what it cannot take is dropped and counted.
func TestSocketWideBlockDoesNotFreezeSocket(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: 100 * time.Millisecond})
		_, jm := h.joined("room:1")
		tap := mustSub(t, h.sock, WithBuffer(1), WithOverflow(Block), Events("n"))
		const n = 3 * tapQueue
		for i := range n {
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", strconv.Itoa(i))
		}
		synctest.Wait()
		ping := async(func() error { _, err := h.sock.Ping(context.Background()); return err })
		pm := h.srv.expect(t, "phoenix", "heartbeat")
		h.srv.reply(t, pm, "ok", "{}")
		if err := mustReady(t, ping); err != nil {
			t.Fatalf("ping: %v", err)
		}
		h.joined("room:2")
		sleep(100 * time.Millisecond)
		hb := h.srv.expect(t, "phoenix", "heartbeat")
		h.srv.reply(t, hb, "ok", "{}")
		sleep(100 * time.Millisecond)
		h.srv.expect(t, "phoenix", "heartbeat") // the previous one was answered in time
		// The tapper holds one message in the buffer, waits with one, holds
		// at most a queue's worth taken in a batch and queues as many
		// again: the rest were dropped and counted.
		if got, least := tap.Dropped(), uint64(n-2*tapQueue-2); got < least {
			t.Fatalf("dropped %d, want at least %d", got, least)
		}
		if st := h.sock.Stats(); st.Dropped != tap.Dropped() {
			t.Fatalf("stats %+v", st)
		}
		for i := range 5 {
			if m := <-tap.C(); string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("message %d: %s", i, m.Payload)
			}
		}
		tap.Close()
		for range tap.C() { // closed: ends after what was buffered
		}
		if tap.Err() != nil {
			t.Fatal(tap.Err())
		}
	})
}

// TestStatusStreams: each WatchStatus reader sees every event, whatever
// the others take; a full stream drops its oldest events and counts them;
// a stream ends with its reader's ctx, and every stream after Closed.
func TestStatusStreams(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, StatusBuffer: 4})
		h.statuses()
		a := h.sock.WatchStatus(context.Background())
		b := h.sock.WatchStatus(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		gone := h.sock.WatchStatus(ctx)
		cancel()
		synctest.Wait()
		for range gone {
		}
		var topics []string
		for i := range 10 {
			topic := "room:" + strconv.Itoa(i)
			h.joined(topic)
			topics = append(topics, topic)
		}
		synctest.Wait()
		// Status and a and b each hold the newest 4 Joined events; the
		// other 3×6 were dropped and counted.
		for name, c := range map[string]<-chan Status{"Status": h.sock.Status(), "a": a, "b": b} {
			for i := range 4 {
				st := <-c
				if j, ok := st.(Joined); !ok || j.Topic != topics[6+i] {
					t.Fatalf("%s event %d: %#v", name, i, st)
				}
			}
		}
		if st := h.sock.Stats(); st.StatusDropped != 3*6 {
			t.Fatalf("status dropped %d, want 18", st.StatusDropped)
		}
		if err := h.sock.Close(); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]<-chan Status{"a": a, "b": b} {
			var last Status
			for st := range c {
				last = st
			}
			if _, ok := last.(Closed); !ok {
				t.Fatalf("%s ended with %#v", name, last)
			}
		}
		if _, ok := <-h.sock.WatchStatus(context.Background()); ok {
			t.Fatal("a stream of a closed socket is open")
		}
	})
}

// TestStuckConsumerIsBounded: with default settings, a consumer that never
// reads holds its channel (and the socket) back for SlowConsumerTimeout,
// with bounded buffers and without a heartbeat timeout; then it is dropped
// from, counted and reported once, and the other topic flows again with
// nothing lost.
func TestStuckConsumerIsBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: 300 * time.Millisecond, SlowConsumerTimeout: time.Second})
		stuckCh, j1 := h.joined("room:stuck")
		okCh, j2 := h.joined("room:ok")
		stuck := mustSub(t, stuckCh, WithBuffer(4))
		good := mustSub(t, okCh)
		got := make(chan int, 1)
		go func() {
			n := 0
			for m := range good.C() {
				if string(m.Payload) != strconv.Itoa(n) {
					t.Errorf("room:ok message %d: %s", n, m.Payload)
				}
				n++
			}
			got <- n
		}()
		const n, okN = 3 * chanInbox, 96
		for i := range n {
			h.srv.push(t, j1.JoinRef.String(), "room:stuck", "n", strconv.Itoa(i))
			if i%(n/okN) == 0 {
				h.srv.push(t, j2.JoinRef.String(), "room:ok", "n", strconv.Itoa(i/(n/okN)))
			}
		}
		synctest.Wait()
		ca := stuckCh.a.Load()
		if l := ca.in.Len(); l > chanInbox {
			t.Fatalf("inbox %d", l)
		}
		if l := h.evqLen(); l > 256 {
			t.Fatalf("event queue %d", l)
		}
		if stuck.Dropped() != 0 {
			t.Fatalf("dropped %d before the stuck bound", stuck.Dropped())
		}
		// The heartbeat's reply waits behind the frames held back.
		sleep(300 * time.Millisecond)
		hb := h.srv.expect(t, "phoenix", "heartbeat")
		h.srv.reply(t, hb, "ok", "{}")
		sleep(700 * time.Millisecond) // the stuck bound
		synctest.Wait()
		if got, want := stuck.Dropped(), uint64(n-4); got != want {
			t.Fatalf("dropped %d, want %d", got, want)
		}
		if buffered(t, stuck) != 4 {
			t.Fatalf("buffered %d", buffered(t, stuck))
		}
		st := h.sock.Stats()
		if st.Dropped != n-4 || st.Overflowed != 0 || st.Reconnects != 0 {
			t.Fatalf("stats %+v", st)
		}
		reports := 0
		for _, s := range h.statuses() {
			switch s := s.(type) {
			case SlowConsumer:
				if s.Topic == "room:stuck" {
					reports++
				}
			case Disconnected:
				t.Fatalf("disconnected: %v", s.Err)
			}
		}
		if reports != 1 {
			t.Fatalf("SlowConsumer reports %d", reports)
		}
		good.Close()
		if k := <-got; k != okN {
			t.Fatalf("room:ok got %d of %d", k, okN)
		}
	})
}

// TestStuckConsumerPropertyAnyPolicy: whatever the overflow policy of a
// consumer that never reads, every public call returns within its bound
// and Close ends every goroutine (synctest fails the test on one left).
func TestStuckConsumerPropertyAnyPolicy(t *testing.T) {
	t.Parallel()
	for _, pol := range []Overflow{Backpressure, DropNewest, DropOldest, CloseWithError, Block} {
		for _, n := range []int{10, 3 * chanInbox} {
			t.Run(fmt.Sprintf("policy%d/n%d", pol, n), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) { stuckConsumerCalls(t, pol, n) })
			})
		}
	}
}

func stuckConsumerCalls(t *testing.T, pol Overflow, n int) {
	h := connect(t, &Config{HeartbeatInterval: 200 * time.Millisecond, SlowConsumerTimeout: 500 * time.Millisecond,
		Timeout: time.Second, CloseTimeout: 200 * time.Millisecond})
	ch, jm := h.joined("room:stuck")
	sub := mustSub(t, ch, WithBuffer(2), WithOverflow(pol))
	tap := mustSub(t, h.sock, WithBuffer(2), WithOverflow(pol))
	for i := range n {
		h.srv.push(t, jm.JoinRef.String(), "room:stuck", "n", strconv.Itoa(i))
	}
	synctest.Wait()
	// within runs call and checks it returns within bound.
	within := func(name string, bound time.Duration, call func(ctx context.Context)) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		start := time.Now()
		done := async(func() struct{} { call(ctx); return struct{}{} })
		sleep(bound)
		if _, ok := ready(t, done); !ok {
			t.Fatalf("%s did not return within %v", name, bound)
		}
		if d := time.Since(start); d > bound {
			t.Fatalf("%s took %v", name, d)
		}
	}
	bound := 2 * time.Second
	within("Ping", bound, func(ctx context.Context) { _, _ = h.sock.Ping(ctx) })
	within("Join", bound, func(ctx context.Context) { _, _ = h.sock.Channel("room:other", nil).Join(ctx) })
	within("Push", bound, func(ctx context.Context) { _, _ = ch.Push(ctx, "x", nil) })
	within("Stats", bound, func(context.Context) { _ = h.sock.Stats() })
	if pol != Block {
		// Subscribe takes no ctx and waits for the channel's actor, which
		// Block holds for as long as its consumer is stuck.
		within("Subscribe", bound, func(context.Context) { mustSub(t, ch).Close() })
	}
	within("Close subscription", bound, func(context.Context) { sub.Close() })
	within("Close tap", bound, func(context.Context) { tap.Close() })
	within("Leave", bound, func(ctx context.Context) { _ = ch.Leave(ctx) })
	within("Close", bound, func(context.Context) { _ = h.sock.Close() })
}

// TestReplyOvertakesWaitingDelivery: a push's reply queued behind
// broadcasts that wait for their consumer resolves the push at once, since
// the consumer may be the push's caller, who reads only once it returns.
func TestReplyOvertakesWaitingDelivery(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		sub := mustSub(t, ch, WithBuffer(1))
		res := h.push(ch, "req", nil)
		pm := h.srv.expect(t, "room:1", "req")
		held, release := make(chan struct{}), make(chan struct{})
		if err := ch.a.Load().mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { close(held); <-release }}); err != nil {
			t.Fatal(err)
		}
		<-held
		for i := range 5 {
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", strconv.Itoa(i))
		}
		h.srv.reply(t, pm, "ok", `"r"`)
		synctest.Wait()
		close(release)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `"r"` {
			t.Fatalf("push = %+v", r)
		}
		for i := range 5 {
			if m := <-sub.C(); string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("message %d: %s", i, m.Payload)
			}
		}
		if sub.Dropped() != 0 {
			t.Fatal(sub.Dropped())
		}
	})
}
