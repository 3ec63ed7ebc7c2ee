//go:build go1.25

package phx

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
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
	h := &connHandle{a: &sockActor{s: &Socket{}}, ctx: context.Background(), out: make(chan outFrame, 4), tok: make(chan struct{}, 1), wc: c}
	h.tok <- struct{}{}
	h.writing.Store(true) // a writer runs: the test plays its part
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
	if st := h.a.s.Stats(); st.Sent != 2 {
		t.Fatalf("Stats.Sent %d after two direct writes", st.Sent)
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

// TestReplyRoutedByReader: once the connection has answered and the
// channel has had a reply besides its join's, a push's reply goes from the
// reader straight into its channel's inbox: it resolves the push while the
// socket actor is held busy. A reply read behind a frame the actor has not
// routed yet waits for the actor, so it never overtakes its channel's
// broadcasts.
func TestReplyRoutedByReader(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1") // the join's reply proves the connection
		sub := mustSub(t, ch)
		published := func() bool {
			c := make(chan bool, 1)
			if err := h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(a *sockActor) {
				_, ok := a.direct.Load("room:1")
				c <- ok
			}}); err != nil {
				t.Fatal(err)
			}
			return <-c
		}
		if published() {
			t.Fatal("a channel that only joined is in the reader's table")
		}
		res := h.push(ch, "first", nil)
		h.srv.reply(t, h.srv.expect(t, "room:1", "first"), "ok", `{}`)
		if r := mustReady(t, res); r.err != nil {
			t.Fatal(r.err)
		}
		if !published() {
			t.Fatal("not published after a push's reply")
		}
		held, release := make(chan struct{}), make(chan struct{})
		hold := func() {
			if err := h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(*sockActor) { close(held); <-release }}); err != nil {
				t.Fatal(err)
			}
			<-held
		}
		hold()
		res = h.push(ch, "a", nil)
		pm := h.srv.expect(t, "room:1", "a")
		h.srv.reply(t, pm, "ok", `{"n":1}`)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `{"n":1}` {
			t.Fatalf("push with the socket actor busy: %+v", r)
		}
		// A broadcast now waits in the actor's queue; the reply after it
		// must wait too.
		res = h.push(ch, "b", nil)
		pm = h.srv.expect(t, "room:1", "b")
		h.srv.push(t, jm.JoinRef.String(), "room:1", "ev", `1`)
		h.srv.reply(t, pm, "ok", `{"n":2}`)
		notReady(t, res)
		if len(sub.C()) != 0 {
			t.Fatal("broadcast delivered while the actor was held")
		}
		close(release)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `{"n":2}` {
			t.Fatalf("push after release: %+v", r)
		}
		if m := mustReady(t, sub.C()); m.Event != "ev" {
			t.Fatalf("broadcast %+v", m)
		}
		if st := h.sock.Stats(); st.Unrouted != 0 || st.Stale != 0 || st.Malformed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestReplyNotRoutedByReaderWithTap: a socket-wide subscription sees every
// frame, replies included, so they all go through the socket actor.
func TestReplyNotRoutedByReaderWithTap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, _ := h.joined("room:1")
		tap, err := h.sock.Subscribe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tap.Close()
		res := h.push(ch, "a", nil)
		pm := h.srv.expect(t, "room:1", "a")
		h.srv.reply(t, pm, "ok", `{}`)
		if r := mustReady(t, res); r.err != nil {
			t.Fatal(r.err)
		}
		if m := mustReady(t, tap.C()); m.Event != wire.EventReply || m.Ref != pm.Ref.String() {
			t.Fatalf("tap got %+v", m)
		}
	})
}

// TestWriterOnDemand: frames queued while the connection is busy are
// written in order by a writer goroutine started for them, which ends
// once the queue is empty; an idle connection keeps none.
func TestWriterOnDemand(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, _ := h.joined("room:1")
		ch2 := make(chan *connHandle, 1)
		if err := h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(a *sockActor) { ch2 <- a.conn }}); err != nil {
			t.Fatal(err)
		}
		conn := <-ch2
		synctest.Wait()
		if conn.writing.Load() {
			t.Fatal("a writer runs on an idle connection")
		}
		<-conn.tok // a write in progress
		const n = 5
		var sends []<-chan error
		for i := range n {
			sends = append(sends, async(func() error { return ch.Send(context.Background(), "ev", i) }))
			synctest.Wait() // in order
		}
		if !conn.writing.Load() || conn.queued.Load() != n {
			t.Fatalf("writing %v, queued %d", conn.writing.Load(), conn.queued.Load())
		}
		conn.tok <- struct{}{} // the write in progress is done
		for i := range n {
			m := h.srv.expect(t, "room:1", "ev")
			if string(m.Payload) != strconv.Itoa(i) {
				t.Fatalf("frame %d: %s", i, m.Payload)
			}
			if err := mustReady(t, sends[i]); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if conn.writing.Load() || conn.queued.Load() != 0 {
			t.Fatalf("after the burst: writing %v, queued %d", conn.writing.Load(), conn.queued.Load())
		}
	})
}

// TestReplyGivenByReader: the reader gives a waiting push its reply
// itself, so the caller wakes while the channel's goroutine is held busy;
// the channel then forgets the push without giving a second outcome. A
// reply of another join session is not given.
func TestReplyGivenByReader(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, _ := h.joined("room:1")
		res := h.push(ch, "first", nil) // the topic enters the reader's table
		h.srv.reply(t, h.srv.expect(t, "room:1", "first"), "ok", `{}`)
		if r := mustReady(t, res); r.err != nil {
			t.Fatal(r.err)
		}
		res = h.push(ch, "a", nil)
		pm := h.srv.expect(t, "room:1", "a")
		held, release := make(chan struct{}), make(chan struct{})
		if err := ch.a.Load().mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { close(held); <-release }}); err != nil {
			t.Fatal(err)
		}
		<-held
		h.srv.send(t, wire.Message{JoinRef: wire.NewRef("999"), Ref: pm.Ref, Topic: "room:1", Event: wire.EventReply,
			Payload: []byte(`{"status":"ok","response":{"wrong":1}}`)})
		notReady(t, res)
		h.srv.reply(t, pm, "error", `{"n":1}`)
		r := mustReady(t, res)
		var re *ReplyError
		if !errors.As(r.err, &re) || re.Status != "error" || string(r.r.Response) != `{"n":1}` {
			t.Fatalf("push with the channel held: %+v", r)
		}
		close(release)
		synctest.Wait()
		if d := h.debug(); d.pending != 0 || d.deadlines != 0 {
			t.Fatalf("channel still holds the push: %+v", d)
		}
		n := 0
		ch.a.Load().waiting.Load().Range(func(any, any) bool { n++; return true })
		if n != 0 {
			t.Fatalf("%d pushes still listed for the reader", n)
		}
		if st := h.sock.Stats(); st.Stale != 1 || st.Unrouted != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}
