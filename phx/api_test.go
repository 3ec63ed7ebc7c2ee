//go:build go1.25

package phx

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/phxgo/phxgo/wire"
)

// Send returns once its frame is written; a reply the server sends anyway
// is counted as unrouted, and refs of Send and Push never collide.
func TestSendReturnsOnceWritten(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		// Nobody answers: Send returns anyway, well before any timeout.
		start := time.Now()
		if err := ch.Send(context.Background(), "noreply", map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Send took %v of fake time", d)
		}
		sm := h.srv.expect(t, "room:1", "noreply")
		if string(sm.Payload) != `{"n":1}` || sm.JoinRef != jm.JoinRef || sm.Ref.IsNull() {
			t.Fatalf("send frame %+v", sm)
		}
		res := h.push(ch, "echo", nil)
		pm := h.srv.expect(t, "room:1", "echo")
		if pm.Ref == sm.Ref {
			t.Fatalf("push reused the send's ref %v", pm.Ref)
		}
		// A reply to the Send is no protocol error and resolves nothing.
		before := h.sock.Stats()
		h.srv.reply(t, sm, "ok", `{"late":1}`)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("the send's reply resolved the push: %+v", r)
		default:
		}
		st := h.sock.Stats()
		if st.Unrouted != before.Unrouted+1 || st.Malformed != before.Malformed {
			t.Fatalf("stats %+v, before %+v", st, before)
		}
		h.srv.reply(t, pm, "ok", `{"echo":1}`)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `{"echo":1}` {
			t.Fatalf("push = %+v", r)
		}
		if d := h.debug(); d.pending != 0 || d.deadlines != 0 {
			t.Fatalf("left behind: %+v", d)
		}
	})
}

// While joining, a Send waits in the push buffer, in order with pushes,
// and its timeout bounds that wait; before Join it is refused.
func TestSendBufferedWhileJoining(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch := h.sock.Channel("room:1", nil)
		if err := ch.Send(context.Background(), "e", nil); !errors.Is(err, ErrNotJoined) {
			t.Fatalf("send before join = %v", err)
		}
		res := h.join(ch)
		jm := h.srv.expect(t, "room:1", wire.EventJoin)
		sent := async(func() error { return ch.Send(context.Background(), "first", nil) })
		synctest.Wait() // buffered before the push below
		pushed := h.push(ch, "second", nil)
		late := async(func() error {
			return ch.Send(context.Background(), "dropped", nil, WithTimeout(time.Second))
		})
		synctest.Wait()
		select {
		case err := <-sent:
			t.Fatalf("send returned before the join: %v", err)
		default:
		}
		sleep(time.Second)
		if err := <-late; !errors.Is(err, ErrTimeout) {
			t.Fatalf("buffered send = %v, want ErrTimeout", err)
		}
		h.srv.reply(t, jm, "ok", "{}")
		mustReady(t, res)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		h.srv.expect(t, "room:1", "first")
		pm := h.srv.expect(t, "room:1", "second")
		h.srv.expectNone(t) // the timed-out send was never written
		h.srv.reply(t, pm, "ok", "{}")
		if r := mustReady(t, pushed); r.err != nil {
			t.Fatal(r.err)
		}
	})
}

// Binary is a binary frame; a plain []byte is JSON, as encoding/json makes
// it (a base64 string).
func TestBinaryIsExplicit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, _ := h.joined("room:1")
		h.push(ch, "json", []byte{1, 2, 3})
		if m := h.srv.expect(t, "room:1", "json"); m.Binary || string(m.Payload) != `"AQID"` {
			t.Fatalf("[]byte push = %+v", m)
		}
		h.push(ch, "bin", Binary{1, 2, 3})
		if m := h.srv.expect(t, "room:1", "bin"); !m.Binary || string(m.Payload) != "\x01\x02\x03" {
			t.Fatalf("Binary push = %+v", m)
		}
		// A bare func is not per-join params: it is refused at Join.
		bad := h.sock.Channel("room:2", func() any { return nil })
		if _, err := bad.Join(context.Background()); err == nil {
			t.Fatal("join with a func() any params succeeded")
		}
		bin := h.sock.Channel("room:3", Binary{1})
		if _, err := bin.Join(context.Background()); err == nil {
			t.Fatal("join with Binary params succeeded")
		}
	})
}

// Each call has its own option type: WithTimeout serves Join, Push and
// Leave; the subscription options serve Subscribe only.
func TestOptionTypes(t *testing.T) {
	t.Parallel()
	var timeout any = WithTimeout(time.Second)
	for name, ok := range map[string]bool{
		"join": is[JoinOption](timeout), "push": is[PushOption](timeout), "leave": is[LeaveOption](timeout),
	} {
		if !ok {
			t.Errorf("WithTimeout is no %s option", name)
		}
	}
	if is[SubscribeOption](timeout) {
		t.Error("WithTimeout is a subscribe option")
	}
	for _, o := range []any{WithBuffer(1), WithOverflow(Block), Events("e")} {
		if is[PushOption](o) || is[JoinOption](o) || is[LeaveOption](o) || !is[SubscribeOption](o) {
			t.Errorf("%T serves other calls than Subscribe", o)
		}
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// Subscribe takes a ctx and reports why it cannot subscribe; Events
// filters and options add up.
func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		sub := mustSub(t, ch, Events("a"), Events("b"), WithBuffer(3))
		if n := cap(sub.c) + int(sub.bound); n != 3 {
			t.Fatalf("buffer %d", n)
		}
		for _, ev := range []string{"a", "c", "b"} {
			h.srv.push(t, jm.JoinRef.String(), "room:1", ev, "{}")
		}
		synctest.Wait()
		if a, b := <-sub.C(), <-sub.C(); a.Event != "a" || b.Event != "b" || buffered(t, sub) != 0 {
			t.Fatalf("got %s %s and %d more", a.Event, b.Event, buffered(t, sub))
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := ch.Subscribe(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe(cancelled) = %v", err)
		}
		if _, err := h.sock.Subscribe(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Socket.Subscribe(cancelled) = %v", err)
		}
		lv := async(func() error { return ch.Leave(context.Background()) })
		h.srv.reply(t, h.srv.expect(t, "room:1", wire.EventLeave), "ok", "{}")
		if err := <-lv; err != nil {
			t.Fatal(err)
		}
		if _, err := ch.Subscribe(context.Background()); !errors.Is(err, ErrLeft) {
			t.Fatalf("Subscribe(left) = %v", err)
		}
		h.sock.Close()
		if _, err := h.sock.Subscribe(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Socket.Subscribe(closed) = %v", err)
		}
		if _, err := h.sock.Channel("room:2", nil).Subscribe(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe(closed socket) = %v", err)
		}
	})
}

// Close does not wait for the subscription's owner: it returns while the
// channel's actor is busy, and C closes once the actor gets to it.
func TestSubscriptionCloseDoesNotWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, _ := h.joined("room:1")
		sub := mustSub(t, ch)
		ca := ch.a.Load()
		hold, held := make(chan struct{}), make(chan struct{})
		if err := ca.mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { close(held); <-hold }}); err != nil {
			t.Fatal(err)
		}
		<-held
		closed := async(func() bool { sub.Close(); return true })
		synctest.Wait()
		select {
		case <-closed:
		default:
			t.Fatal("Close waited for the busy actor")
		}
		select {
		case _, ok := <-sub.C():
			t.Fatalf("C closed (%v) before the actor ran", ok)
		default:
		}
		close(hold)
		synctest.Wait()
		if _, ok := <-sub.C(); ok || sub.Err() != nil {
			t.Fatalf("after Close: open %v, err %v", ok, sub.Err())
		}
		sub.Close() // idempotent

		// A socket-wide subscription: the socket actor ends it.
		all := mustSub(t, h.sock)
		all.Close()
		synctest.Wait()
		if _, ok := <-all.C(); ok {
			t.Fatal("socket-wide C still open")
		}
	})
}

// A socket-wide subscription closed while the socket's mailbox is full is
// ended at the next frame the socket routes.
func TestSocketSubscriptionCloseWithFullMailbox(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		all := mustSub(t, h.sock)
		hold, held := make(chan struct{}), make(chan struct{})
		if err := h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(*sockActor) { close(held); <-hold }}); err != nil {
			t.Fatal(err)
		}
		<-held
		for h.sock.mb.TryTell(testFuncMsg{f: func(*sockActor) {}}) {
		}
		all.Close() // finds the mailbox full; must not wait
		close(hold)
		synctest.Wait()
		select {
		case _, ok := <-all.C():
			t.Fatalf("C closed (%v) before any frame", ok)
		default:
		}
		h.srv.push(t, "", "room:x", "ev", "{}")
		synctest.Wait()
		if _, ok := <-all.C(); ok {
			t.Fatal("the closed subscription received a frame")
		}
	})
}
