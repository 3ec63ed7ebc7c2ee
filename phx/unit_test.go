//go:build go1.25

package phx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/wire"
)

// Behaviours of phoenix.js's own tests (channel_test.js, socket_test.js),
// ported one by one, on the in-memory transport inside a synctest bubble.

func TestJoinStates(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn})
			ch := h.sock.Channel("room:1", map[string]string{"a": "b"})
			if ch.State() != ChannelClosed {
				t.Fatalf("state %v", ch.State())
			}
			res := h.join(ch)
			jm := h.srv.expect(t, "room:1", wire.EventJoin)
			if ch.State() != ChannelJoining {
				t.Fatalf("state %v, want joining", ch.State())
			}
			if string(jm.Payload) != `{"a":"b"}` || jm.JoinRef != jm.Ref {
				t.Fatalf("join frame %+v", jm)
			}
			h.srv.reply(t, jm, "ok", `{"hello":1}`)
			r := mustReady(t, res)
			if r.err != nil || string(r.resp) != `{"hello":1}` {
				t.Fatalf("join = %s, %v", r.resp, r.err)
			}
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v, want joined", ch.State())
			}
			// Join twice is an error.
			if _, err := ch.Join(context.Background()); !errors.Is(err, ErrAlreadyJoined) {
				t.Fatalf("second join = %v", err)
			}
		})
	})
}

func TestJoinTimeoutLeavesAndRejoins(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			res := h.join(ch, WithTimeout(time.Second))
			j1 := h.srv.expect(t, "room:1", wire.EventJoin)
			sleep(time.Second)
			r := mustReady(t, res)
			var je *JoinError
			if !errors.As(r.err, &je) || !errors.Is(r.err, ErrTimeout) {
				t.Fatalf("join = %v, want JoinError wrapping ErrTimeout", r.err)
			}
			lv := h.srv.expect(t, "room:1", wire.EventLeave)
			if lv.JoinRef != j1.JoinRef {
				t.Fatalf("leave join_ref %v, want %v", lv.JoinRef, j1.JoinRef)
			}
			if ch.State() != ChannelErrored {
				t.Fatalf("state %v", ch.State())
			}
			// Rejoin after 1 s...
			sleep(999 * time.Millisecond)
			h.srv.expectNone(t)
			sleep(time.Millisecond)
			j2 := h.srv.expect(t, "room:1", wire.EventJoin)
			if j2.JoinRef == j1.JoinRef {
				t.Fatal("rejoin reused the join_ref")
			}
			// ...which times out too, then after 2 s.
			sleep(time.Second)
			h.srv.expect(t, "room:1", wire.EventLeave)
			sleep(1999 * time.Millisecond)
			h.srv.expectNone(t)
			sleep(time.Millisecond)
			j3 := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j3, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v", ch.State())
			}
			// A late reply to an old join changes nothing.
			h.srv.reply(t, j1, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v", ch.State())
			}
		})
	})
}

func TestJoinRefusedClosesChannel(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn})
			ch := h.sock.Channel("room:secret", nil)
			sub := mustSub(t, ch)
			res := h.join(ch)
			jm := h.srv.expect(t, "room:secret", wire.EventJoin)
			h.srv.reply(t, jm, "error", `{"reason":"unauthorized"}`)
			r := mustReady(t, res)
			re, ok := AsReplyError(r.err)
			var je *JoinError
			if !ok || !errors.As(r.err, &je) || string(re.Response) != `{"reason":"unauthorized"}` {
				t.Fatalf("join = %v", r.err)
			}
			if ch.State() != ChannelClosed {
				t.Fatalf("state %v", ch.State())
			}
			// No retry loop (§6.1).
			sleep(time.Minute)
			h.srv.expect(t, "phoenix", "heartbeat") // only heartbeats
			if _, ok := <-sub.C(); ok {
				t.Fatal("subscription still open")
			}
			if !errors.As(sub.Err(), &je) {
				t.Fatalf("sub.Err = %v", sub.Err())
			}
			if _, err := ch.Push(context.Background(), "x", nil); !errors.As(err, &je) {
				t.Fatalf("push on refused channel = %v", err)
			}
		})
	})
}

func TestRejoinRefusedIsRetried(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, jm := h.joined("room:1")
			h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventError, "{}")
			sleep(time.Second)
			j2 := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j2, "error", `{"reason":"expired"}`)
			synctest.Wait()
			if ch.State() != ChannelErrored {
				t.Fatalf("state %v", ch.State())
			}
			sleep(2 * time.Second)
			j3 := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j3, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v", ch.State())
			}
			var sawRefused bool
			for _, st := range h.statuses() {
				if rj, ok := st.(Rejoining); ok {
					if _, ok := AsReplyError(rj.Err); ok && rj.Delay == 2*time.Second {
						sawRefused = true
					}
				}
			}
			if !sawRefused {
				t.Fatal("no Rejoining event for the refused rejoin")
			}
		})
	})
}

func TestPushBufferedWhileJoining(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			res := h.join(ch)
			jm := h.srv.expect(t, "room:1", wire.EventJoin)
			p1 := h.push(ch, "a", map[string]int{"n": 1})
			synctest.Wait()
			p2 := h.push(ch, "b", nil, WithTimeout(100*time.Millisecond))
			synctest.Wait()
			p3 := h.push(ch, "c", map[string]int{"n": 3})
			h.srv.expectNone(t)
			if d := h.debug(); d.buffered != 3 {
				t.Fatalf("buffered %d", d.buffered)
			}
			// p2 times out while buffered and is never sent.
			sleep(100 * time.Millisecond)
			if r := mustReady(t, p2); !errors.Is(r.err, ErrTimeout) {
				t.Fatalf("p2 = %v", r.err)
			}
			h.srv.reply(t, jm, "ok", "{}")
			mustReady(t, res)
			a := h.srv.expect(t, "room:1", "a")
			c := h.srv.expect(t, "room:1", "c")
			h.srv.expectNone(t)
			if a.JoinRef != jm.JoinRef || c.JoinRef != jm.JoinRef {
				t.Fatal("flushed pushes carry another join_ref")
			}
			h.srv.reply(t, a, "ok", `{"a":1}`)
			h.srv.reply(t, c, "error", `{"c":1}`)
			if r := mustReady(t, p1); r.err != nil || string(r.r.Response) != `{"a":1}` {
				t.Fatalf("p1 = %+v", r)
			}
			r3 := mustReady(t, p3)
			if re, ok := AsReplyError(r3.err); !ok || re.Status != "error" || string(re.Response) != `{"c":1}` {
				t.Fatalf("p3 = %+v", r3)
			}
			// No bookkeeping left behind.
			if d := h.debug(); d.pending != 0 || d.buffered != 0 || d.deadlines != 0 {
				t.Fatalf("leftovers %+v", d)
			}
		})
	})
}

func TestPushBufferFull(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, PushBuffer: 2, HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			h.join(ch)
			h.srv.expect(t, "room:1", wire.EventJoin)
			h.push(ch, "a", nil)
			h.push(ch, "b", nil)
			synctest.Wait()
			if _, err := ch.Push(context.Background(), "c", nil); !errors.Is(err, ErrPushBufferFull) {
				t.Fatalf("third push = %v", err)
			}
		})
	})
}

func TestPushTimeouts(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, Timeout: 5 * time.Second, HeartbeatInterval: -1})
			ch, _ := h.joined("room:1")
			def := h.push(ch, "slow", nil)
			synctest.Wait()
			short := h.push(ch, "slow", nil, WithTimeout(time.Second))
			synctest.Wait()
			fast := h.push(ch, "fast", nil)
			h.srv.expect(t, "room:1", "slow")
			h.srv.expect(t, "room:1", "slow")
			fm := h.srv.expect(t, "room:1", "fast")
			h.srv.reply(t, fm, "ok", "{}")
			if r := mustReady(t, fast); r.err != nil {
				t.Fatal(r.err)
			}
			sleep(time.Second)
			if r := mustReady(t, short); !errors.Is(r.err, ErrTimeout) {
				t.Fatalf("short = %v", r.err)
			}
			sleep(3999 * time.Millisecond)
			notReady(t, def)
			sleep(time.Millisecond)
			if r := mustReady(t, def); !errors.Is(r.err, ErrTimeout) {
				t.Fatalf("default = %v", r.err)
			}
			// No timeout after ok: nothing else resolves later.
			if d := h.debug(); d.pending != 0 || d.deadlines != 0 {
				t.Fatalf("leftovers %+v", d)
			}
		})
	})
}

func TestPushContextCancel(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			h.join(ch)
			jm := h.srv.expect(t, "room:1", wire.EventJoin)
			ctx, cancel := context.WithCancel(context.Background())
			res := async(func() error { _, err := ch.Push(ctx, "a", nil); return err })
			synctest.Wait()
			cancel()
			if err := mustReady(t, res); !errors.Is(err, context.Canceled) {
				t.Fatalf("push = %v", err)
			}
			h.srv.reply(t, jm, "ok", "{}")
			h.srv.expectNone(t) // the cancelled buffered push is never sent
			if d := h.debug(); d.pending != 0 || d.buffered != 0 || d.deadlines != 0 {
				t.Fatalf("leftovers %+v", d)
			}
		})
	})
}

// vsn 2.0.0 only, as the next test: on 1.0.0 no server frame carries a
// join_ref to tell sessions apart.
func TestReplyRoutedByRefAndJoinRef(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		res := h.push(ch, "a", nil)
		pm := h.srv.expect(t, "room:1", "a")
		// Same ref, another join_ref: dropped.
		h.srv.send(t, wire.Message{JoinRef: wire.NewRef("999"), Ref: pm.Ref, Topic: "room:1", Event: wire.EventReply,
			Payload: []byte(`{"status":"ok","response":{"wrong":1}}`)})
		// Same ref, another topic: dropped.
		h.srv.send(t, wire.Message{JoinRef: jm.JoinRef, Ref: pm.Ref, Topic: "room:2", Event: wire.EventReply,
			Payload: []byte(`{"status":"ok","response":{"wrong":2}}`)})
		notReady(t, res)
		h.srv.reply(t, pm, "ok", `{"right":1}`)
		if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `{"right":1}` {
			t.Fatalf("push = %+v", r)
		}
		st := h.sock.Stats()
		if st.Stale != 1 || st.Unrouted != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestOutdatedJoinRefDropped(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, j1 := h.joined("room:1")
		sub := mustSub(t, ch)
		h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventError, "{}")
		sleep(time.Second)
		j2 := h.srv.expect(t, "room:1", wire.EventJoin)
		h.srv.reply(t, j2, "ok", "{}")
		synctest.Wait()
		// Frames of the old session: a push, a close, an error.
		h.srv.push(t, j1.JoinRef.String(), "room:1", "old", "{}")
		h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventClose, "{}")
		h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventError, "{}")
		h.srv.push(t, j2.JoinRef.String(), "room:1", "new", "{}")
		h.srv.push(t, "", "room:1", "bcast", "{}")
		synctest.Wait()
		if ch.State() != ChannelJoined {
			t.Fatalf("state %v", ch.State())
		}
		m1, m2 := <-sub.C(), <-sub.C()
		if m1.Event != "new" || m2.Event != "bcast" || m1.JoinRef != j2.JoinRef.String() || m2.JoinRef != j2.JoinRef.String() {
			t.Fatalf("got %+v %+v", m1, m2)
		}
		if st := h.sock.Stats(); st.Stale != 3 {
			t.Fatalf("stale %d", st.Stale)
		}
	})
}

func TestServerErrorRejoinsAndCloseRemoves(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, j1 := h.joined("room:1")
			sub := mustSub(t, ch)
			inflight := h.push(ch, "crash", nil)
			h.srv.expect(t, "room:1", "crash")
			h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventError, `{"reason":"channel_crash"}`)
			synctest.Wait()
			if ch.State() != ChannelErrored {
				t.Fatalf("state %v", ch.State())
			}
			if r := mustReady(t, inflight); !errors.Is(r.err, ErrDisconnected) {
				t.Fatalf("in-flight push = %v", r.err)
			}
			sleep(time.Second)
			j2 := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j2, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v", ch.State())
			}
			// The subscription survived the rejoin.
			h.srv.push(t, "", "room:1", "ev", "{}")
			synctest.Wait()
			if m := <-sub.C(); m.Event != "ev" {
				t.Fatal(m)
			}
			// phx_close: closed and removed.
			h.srv.push(t, j2.JoinRef.String(), "room:1", wire.EventClose, "{}")
			synctest.Wait()
			if ch.State() != ChannelClosed {
				t.Fatalf("state %v", ch.State())
			}
			if _, ok := <-sub.C(); ok || !errors.Is(sub.Err(), ErrClosed) {
				t.Fatalf("sub err %v", sub.Err())
			}
			if d := h.debug(); d.chans != 0 || d.topics != 0 {
				t.Fatalf("leftovers %+v", d)
			}
			sleep(time.Minute)
			h.srv.expectNone(t)
		})
	})
}

func TestLeave(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, jm := h.joined("room:1")
			sub := mustSub(t, ch)
			res := async(func() error { return ch.Leave(context.Background()) })
			lm := h.srv.expect(t, "room:1", wire.EventLeave)
			if ch.State() != ChannelLeaving || lm.JoinRef != jm.JoinRef {
				t.Fatalf("state %v, leave %+v", ch.State(), lm)
			}
			// A phx_error while leaving does not rejoin.
			h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventError, "{}")
			h.srv.reply(t, lm, "ok", "{}")
			if err := mustReady(t, res); err != nil {
				t.Fatal(err)
			}
			if ch.State() != ChannelClosed {
				t.Fatalf("state %v", ch.State())
			}
			if _, ok := <-sub.C(); ok || !errors.Is(sub.Err(), ErrLeft) {
				t.Fatalf("sub err %v", sub.Err())
			}
			h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventClose, "{}")
			sleep(time.Minute)
			h.srv.expectNone(t)
			if _, err := ch.Push(context.Background(), "x", nil); !errors.Is(err, ErrLeft) {
				t.Fatalf("push after leave = %v", err)
			}
		})
	})
}

func TestLeaveTimeoutCloses(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, _ := h.joined("room:1")
			res := async(func() error { return ch.Leave(context.Background(), WithTimeout(time.Second)) })
			h.srv.expect(t, "room:1", wire.EventLeave)
			sleep(time.Second)
			if err := mustReady(t, res); err != nil {
				t.Fatal(err)
			}
			if ch.State() != ChannelClosed {
				t.Fatalf("state %v", ch.State())
			}
		})
	})
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: 100 * time.Millisecond})
		sleep(99 * time.Millisecond)
		h.srv.expectNone(t)
		sleep(time.Millisecond)
		hb := h.srv.expect(t, "phoenix", "heartbeat")
		// The next heartbeat is scheduled from the reply, not the send.
		sleep(50 * time.Millisecond)
		h.srv.reply(t, hb, "ok", "{}")
		synctest.Wait()
		sleep(99 * time.Millisecond)
		h.srv.expectNone(t)
		sleep(time.Millisecond)
		hb2 := h.srv.expect(t, "phoenix", "heartbeat")
		if hb2.Ref == hb.Ref {
			t.Fatal("heartbeat ref reused")
		}
		// Unanswered for one interval: close with 1000 and reconnect.
		sleep(100 * time.Millisecond)
		synctest.Wait()
		if !h.srv.dropped() {
			t.Fatal("connection not dropped after a heartbeat timeout")
		}
		if code, reason := h.srv.clientClose(); code != 1000 || reason != "heartbeat timeout" {
			t.Fatalf("close %d %q", code, reason)
		}
		sleep(10 * time.Millisecond)
		h.tr.next(t)
		var sawDisc bool
		for _, st := range h.statuses() {
			if d, ok := st.(Disconnected); ok && errors.Is(d.Err, ErrHeartbeatTimeout) && d.Reconnect {
				sawDisc = true
			}
		}
		if !sawDisc {
			t.Fatal("no Disconnected{heartbeat timeout}")
		}
	})
}

func TestNoHeartbeatAfterClose(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: 100 * time.Millisecond})
		if err := h.sock.Close(); err != nil {
			t.Fatal(err)
		}
		if code, _ := h.srv.clientClose(); code != 1000 {
			t.Fatalf("close code %d", code)
		}
		sleep(time.Second)
		h.srv.expectNone(t)
		h.tr.noDial(t)
		if h.sock.State() != StateClosed {
			t.Fatal(h.sock.State())
		}
	})
}

func TestReconnectSchedule(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		dialErr := &DialError{URL: "x", Err: errors.New("refused")}
		h.tr.failNext(dialErr, dialErr, dialErr, dialErr, dialErr, dialErr, dialErr, dialErr, dialErr, dialErr)
		start := time.Now()
		h.srv.closeWith(1006)
		want := []time.Duration{10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000}
		var at time.Duration
		for i, d := range want {
			at += d * time.Millisecond
			n := h.tr.dialCount()
			sleep(time.Until(start.Add(at)) - time.Millisecond)
			synctest.Wait()
			if h.tr.dialCount() != n {
				t.Fatalf("attempt %d early", i+1)
			}
			sleep(time.Millisecond)
			synctest.Wait()
			if h.tr.dialCount() != n+1 {
				t.Fatalf("attempt %d not at %v", i+1, at)
			}
		}
		srv := h.tr.next(t)
		// A connection that opens and fails before answering anything
		// continues the schedule: 5 s again, not 10 ms.
		srv.closeWith(1011)
		sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		h.tr.noDial(t)
		sleep(time.Millisecond)
		srv = h.tr.next(t)
		// One that has answered (a ping here) restarts it: the next loss
		// waits 10 ms again.
		ping := async(func() error { _, err := h.sock.Ping(context.Background()); return err })
		srv.reply(t, srv.expect(t, "phoenix", "heartbeat"), "ok", "{}")
		if err := mustReady(t, ping); err != nil {
			t.Fatal(err)
		}
		srv.closeWith(1011)
		sleep(9 * time.Millisecond)
		h.tr.noDial(t)
		sleep(time.Millisecond)
		h.tr.next(t)
		if h.sock.Stats().Reconnects != 3 {
			t.Fatalf("reconnects %d", h.sock.Stats().Reconnects)
		}
	})
}

func TestRejoinOnReconnect(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			a, ja := h.joined("room:a")
			b, _ := h.joined("room:b")
			left, _ := h.joined("room:left")
			lres := async(func() error { return left.Leave(context.Background()) })
			lm := h.srv.expect(t, "room:left", wire.EventLeave)
			h.srv.reply(t, lm, "ok", "{}")
			mustReady(t, lres)
			// A push in flight when the connection drops.
			inflight := h.push(a, "x", nil)
			h.srv.expect(t, "room:a", "x")
			h.srv.closeWith(1006)
			synctest.Wait()
			if r := mustReady(t, inflight); !errors.Is(r.err, ErrDisconnected) {
				t.Fatalf("in-flight = %v", r.err)
			}
			if a.State() != ChannelErrored || b.State() != ChannelErrored || left.State() != ChannelClosed {
				t.Fatal(a.State(), b.State(), left.State())
			}
			// Pushed while disconnected: buffered until the rejoin.
			later := h.push(a, "later", nil)
			sleep(10 * time.Millisecond)
			srv := h.tr.next(t)
			synctest.Wait()
			got := map[string]wire.Message{}
			for range 2 {
				m, ok := srv.recv(t)
				if !ok || m.Event != wire.EventJoin {
					t.Fatalf("want two rejoins, got %+v", m)
				}
				got[m.Topic] = m
			}
			srv.expectNone(t)
			if got["room:a"].JoinRef == ja.JoinRef {
				t.Fatal("rejoin reused the join_ref")
			}
			srv.reply(t, got["room:a"], "ok", "{}")
			srv.reply(t, got["room:b"], "ok", "{}")
			lm2 := srv.expect(t, "room:a", "later")
			srv.reply(t, lm2, "ok", "{}")
			if r := mustReady(t, later); r.err != nil {
				t.Fatal(r.err)
			}
			if a.State() != ChannelJoined || b.State() != ChannelJoined {
				t.Fatal(a.State(), b.State())
			}
		})
	})
}

func TestRefWrapSkipsPending(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, _ := h.joined("room:1")
			// Make the counter wrap: set it just below the top through a
			// message run on the actor.
			h.sock.ref.Store(^uint64(0) - 1)
			p1 := h.push(ch, "a", nil)
			m1 := h.srv.expect(t, "room:1", "a")
			h.sock.ref.Store(^uint64(0))
			p2 := h.push(ch, "b", nil)
			m2 := h.srv.expect(t, "room:1", "b")
			h.sock.ref.Store(^uint64(0) - 1)
			p3 := h.push(ch, "c", nil)
			m3 := h.srv.expect(t, "room:1", "c")
			if m1.Ref.String() != "18446744073709551615" || m2.Ref.String() != "1" {
				t.Fatalf("refs %v %v", m1.Ref, m2.Ref)
			}
			if m3.Ref == m1.Ref || m3.Ref == m2.Ref {
				t.Fatalf("ref %v collides with a pending one", m3.Ref)
			}
			for _, m := range []wire.Message{m3, m2, m1} {
				h.srv.reply(t, m, "ok", `"`+m.Event+`"`)
			}
			for i, p := range []<-chan pushOut{p1, p2, p3} {
				r := mustReady(t, p)
				if want := `"` + string(rune('a'+i)) + `"`; string(r.r.Response) != want {
					t.Fatalf("push %d got %s", i, r.r.Response)
				}
			}
		})
	})
}

func TestCloseCodePolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code      int
		reconnect bool
		cfg       Config
	}{
		{1000, false, Config{}},
		{1000, true, Config{ReconnectOnNormalClose: true}},
		{1001, true, Config{}},
		{1006, true, Config{}},
		{1011, true, Config{}},
		{1012, true, Config{}},
	} {
		t.Run(fmt.Sprintf("%d-%v", tc.code, tc.reconnect), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				cfg := tc.cfg
				cfg.HeartbeatInterval = -1
				h := connect(t, &cfg)
				ch, _ := h.joined("room:1")
				h.srv.closeWith(tc.code)
				sleep(10 * time.Millisecond)
				synctest.Wait()
				if tc.reconnect {
					h.tr.next(t)
					if h.sock.Err() != nil {
						t.Fatal(h.sock.Err())
					}
					return
				}
				h.tr.noDial(t)
				<-h.sock.Done()
				if CloseCode(h.sock.Err()) != 1000 {
					t.Fatalf("Err = %v", h.sock.Err())
				}
				if ch.State() != ChannelClosed {
					t.Fatal(ch.State())
				}
				var disc *Disconnected
				for _, st := range h.statuses() {
					if d, ok := st.(Disconnected); ok {
						disc = &d
					}
				}
				if disc == nil || disc.Code != 1000 || disc.Reconnect {
					t.Fatalf("Disconnected %+v", disc)
				}
			})
		})
	}
}

func TestUnauthorizedStops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		h.tr.failNext(&DialError{URL: "x", Status: 403, Err: errors.New("bad handshake")})
		h.srv.closeWith(1006)
		sleep(10 * time.Millisecond)
		<-h.sock.Done()
		var de *DialError
		if !errors.As(h.sock.Err(), &de) || de.Status != 403 {
			t.Fatalf("Err = %v", h.sock.Err())
		}
		h.tr.noDial(t)
	})
}

func TestConnectFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tr := newMemTransport()
		tr.failNext(&DialError{URL: "x", Status: 401, Err: errors.New("bad handshake")})
		_, err := Connect(context.Background(), "http://example.test/socket", &Config{Transport: tr})
		var de *DialError
		if !errors.As(err, &de) || !de.Unauthorized() {
			t.Fatalf("Connect = %v", err)
		}
	})
}

func TestConnectURLAndAuth(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := 0
		h := connect(t, &Config{
			Params:        url.Values{"a": {"1"}},
			ParamsFunc:    func() url.Values { n++; return url.Values{"n": {string(rune('0' + n))}} },
			AuthTokenFunc: func() string { return "tok" },
			Vsn:           "2.0.0",
		})
		h.srv.closeWith(1006)
		sleep(10 * time.Millisecond)
		h.tr.next(t)
		h.tr.mu.Lock()
		dials := h.tr.dials
		h.tr.mu.Unlock()
		if len(dials) != 2 {
			t.Fatal(len(dials))
		}
		u0, _ := url.Parse(dials[0].url)
		u1, _ := url.Parse(dials[1].url)
		if u0.Path != "/socket/websocket" || u0.Scheme != "ws" || u0.Query().Get("vsn") != "2.0.0" || u0.Query().Get("a") != "1" {
			t.Fatal(dials[0].url)
		}
		if u0.Query().Get("n") != "1" || u1.Query().Get("n") != "2" {
			t.Fatal("params func not called per connect", dials)
		}
		if got := dials[0].header.Get("Sec-WebSocket-Protocol"); got != "phoenix, base64url.bearer.phx.dG9r" {
			t.Fatalf("protocol header %q", got)
		}
	})
}

func TestNormaliseEndpoint(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ws://h/socket":            "ws://h/socket/websocket",
		"http://h:4000/socket/":    "ws://h:4000/socket/websocket",
		"https://h/socket":         "wss://h/socket/websocket",
		"wss://h/socket/websocket": "wss://h/socket/websocket",
		"ws://h/socket?token=x":    "ws://h/socket/websocket?token=x",
	} {
		got, err := normaliseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("%s: %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://h/x", "ws:///x", "::"} {
		if _, err := normaliseEndpoint(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestDuplicateTopicLeavesOlder(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			old, j1 := h.joined("room:1")
			oldSub := mustSub(t, old)
			nw := h.sock.Channel("room:1", nil)
			newSub := mustSub(t, nw)
			res := h.join(nw)
			lm := h.srv.expect(t, "room:1", wire.EventLeave)
			j2 := h.srv.expect(t, "room:1", wire.EventJoin)
			if lm.JoinRef != j1.JoinRef || j2.JoinRef == j1.JoinRef {
				t.Fatal(lm, j2)
			}
			// Phoenix answers the new join before closing the old one.
			h.srv.reply(t, j2, "ok", "{}")
			h.srv.reply(t, lm, "ok", "{}")
			h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventClose, "{}")
			h.srv.push(t, "", "room:1", "ev", "{}")
			mustReady(t, res)
			if old.State() != ChannelClosed || nw.State() != ChannelJoined {
				t.Fatal(old.State(), nw.State())
			}
			if m := <-newSub.C(); m.Event != "ev" {
				t.Fatal(m)
			}
			if _, ok := <-oldSub.C(); ok || !errors.Is(oldSub.Err(), ErrLeft) {
				t.Fatal(oldSub.Err())
			}
		})
	})
}

// Whatever the order of the older session's leave reply and phx_close and
// the newer join's reply, the phx_close of the older session ends the
// older channel alone (duplicate_join.jsonl, leave.jsonl; on vsn 1.0.0 it
// names its session by its ref).
func TestDuplicateTopicStaleClose(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		for _, order := range []string{"leave,close,join", "join,close,leave", "close,join,leave"} {
			t.Run(order, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
					old, j1 := h.joined("room:1")
					nw := h.sock.Channel("room:1", nil)
					newSub := mustSub(t, nw)
					res := h.join(nw)
					lm := h.srv.expect(t, "room:1", wire.EventLeave)
					j2 := h.srv.expect(t, "room:1", wire.EventJoin)
					for _, step := range strings.Split(order, ",") {
						switch step {
						case "leave":
							h.srv.reply(t, lm, "ok", "{}")
						case "close":
							h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventClose, "{}")
						case "join":
							h.srv.reply(t, j2, "ok", "{}")
						}
						synctest.Wait()
					}
					if r := mustReady(t, res); r.err != nil {
						t.Fatalf("newer join = %v", r.err)
					}
					h.srv.push(t, j2.JoinRef.String(), "room:1", "ev", "{}")
					synctest.Wait()
					if old.State() != ChannelClosed || nw.State() != ChannelJoined {
						t.Fatalf("older %v, newer %v", old.State(), nw.State())
					}
					if m := <-newSub.C(); m.Event != "ev" {
						t.Fatal(m)
					}
					// Phoenix's own order: nothing is left unrouted. (In the
					// others the leave's reply comes after the phx_close that
					// already ended the older channel.)
					if st := h.sock.Stats(); order == "leave,close,join" && st.Unrouted != 0 {
						t.Fatalf("unrouted: %+v", st)
					}
				})
			})
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: 100 * time.Millisecond})
			stuckCh, j1 := h.joined("room:stuck")
			okCh, j2 := h.joined("room:ok")
			stuck := mustSub(t, stuckCh, WithBuffer(2), WithOverflow(DropNewest))
			oldest := mustSub(t, stuckCh, WithBuffer(2), WithOverflow(DropOldest))
			closing := mustSub(t, stuckCh, WithBuffer(2), WithOverflow(CloseWithError))
			good := mustSub(t, okCh, WithBuffer(1000))
			for i := range 10 {
				h.srv.push(t, j1.JoinRef.String(), "room:stuck", "n", string(rune('0'+i)))
				h.srv.push(t, j2.JoinRef.String(), "room:ok", "n", string(rune('0'+i)))
			}
			synctest.Wait()
			if buffered(t, good) != 10 {
				t.Fatalf("healthy topic got %d", buffered(t, good))
			}
			if stuck.Dropped() != 8 || oldest.Dropped() != 8 {
				t.Fatalf("dropped %d %d", stuck.Dropped(), oldest.Dropped())
			}
			if m := <-stuck.C(); string(m.Payload) != "0" {
				t.Fatalf("drop newest kept %s", m.Payload)
			}
			if m := <-oldest.C(); string(m.Payload) != "8" {
				t.Fatalf("drop oldest kept %s", m.Payload)
			}
			for range closing.C() {
			}
			if !errors.Is(closing.Err(), ErrSlowConsumer) {
				t.Fatal(closing.Err())
			}
			// Heartbeats go on while the consumer is stuck.
			sleep(100 * time.Millisecond)
			hb := h.srv.expect(t, "phoenix", "heartbeat")
			h.srv.reply(t, hb, "ok", "{}")
			n := 0
			for _, st := range h.statuses() {
				if sc, ok := st.(SlowConsumer); ok && sc.Topic == "room:stuck" {
					n++
				}
			}
			if n != 3 { // one per subscription and overflow episode
				t.Fatalf("SlowConsumer events %d", n)
			}
		})
	})
}

func TestCloseBoundedOnBlackhole(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1, CloseTimeout: 200 * time.Millisecond})
			ch, _ := h.joined("room:1")
			h.srv.setBlackhole()
			var outs []<-chan pushOut
			for range 100 { // fill the writer's queue
				outs = append(outs, h.push(ch, "x", nil))
			}
			synctest.Wait()
			start := time.Now()
			errs := make(chan error, 5)
			for range 5 {
				go func() { errs <- h.sock.Close() }()
			}
			for range 5 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if d := time.Since(start); d > 2*200*time.Millisecond {
				t.Fatalf("Close took %v", d)
			}
			for _, o := range outs {
				if r := mustReady(t, o); !errors.Is(r.err, ErrClosed) && !errors.Is(r.err, ErrDisconnected) {
					t.Fatalf("push = %v", r.err)
				}
			}
		})
	})
}

func TestPing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		res := async(func() pushOut {
			d, err := h.sock.Ping(context.Background())
			return pushOut{Reply{Status: d.String()}, err}
		})
		m := h.srv.expect(t, "phoenix", "heartbeat")
		sleep(5 * time.Millisecond)
		h.srv.reply(t, m, "ok", "{}")
		if r := mustReady(t, res); r.err != nil || r.r.Status != "5ms" {
			t.Fatalf("ping %+v", r)
		}
	})
}

// A ping nobody answers ends with ErrTimeout after Config.Timeout.
func TestPingTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, Timeout: time.Second})
		res := async(func() error { _, err := h.sock.Ping(context.Background()); return err })
		h.srv.expect(t, "phoenix", "heartbeat")
		sleep(999 * time.Millisecond)
		notReady(t, res)
		sleep(time.Millisecond)
		if err := mustReady(t, res); !errors.Is(err, ErrTimeout) {
			t.Fatalf("ping = %v, want ErrTimeout", err)
		}
		if d := h.debug(); d.pending != 0 || d.deadlines != 0 {
			t.Fatalf("left behind: %+v", d)
		}
	})
}

func TestSocketWideSubscription(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		all := mustSub(t, h.sock, Events("ev"))
		h.srv.push(t, "", "any:topic", "ev", `{"x":1}`)
		h.srv.push(t, "", "any:topic", "other", `{}`)
		synctest.Wait()
		m := <-all.C()
		if m.Topic != "any:topic" || string(m.Payload) != `{"x":1}` || len(all.C()) != 0 {
			t.Fatal(m)
		}
		all.Close()
		if _, ok := <-all.C(); ok || all.Err() != nil {
			t.Fatal("not closed cleanly")
		}
	})
}

func TestEventsIteratorAndDecode(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, jm := h.joined("room:1")
			type body struct{ N int }
			got := make(chan []string, 1)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				var out []string
				for v, err := range EventsAs[body](ctx, ch, Events("n")) {
					switch {
					case err == nil:
						out = append(out, string(rune('0'+v.Value.N)))
					case errors.As(err, new(*DecodeError)):
						out = append(out, "bad")
					default:
						out = append(out, "end:"+err.Error())
					}
				}
				got <- out
			}()
			synctest.Wait()
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", `{"N":1}`)
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", `"x"`)
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", `{"N":2}`)
			synctest.Wait()
			cancel()
			out := mustReady(t, got)
			if strings.Join(out, ",") != "1,bad,2,end:context canceled" {
				t.Fatal(out)
			}
		})
	})
}

func TestSocketContextCancelStops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tr := newMemTransport()
		ctx, cancel := context.WithCancel(context.Background())
		sock, err := Connect(context.Background(), "ws://example.test/socket", &Config{Transport: tr, Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		tr.next(t)
		ch := sock.Channel("room:1", nil)
		sub := mustSub(t, ch)
		cancel()
		<-sock.Done()
		if _, ok := <-sub.C(); ok || !errors.Is(sub.Err(), ErrClosed) {
			t.Fatal(sub.Err())
		}
		if !errors.Is(sock.Err(), context.Canceled) {
			t.Fatal(sock.Err())
		}
		if _, err := ch.Join(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatal(err)
		}
		for range sock.Status() {
		}
	})
}

// Connect's ctx bounds the dial only: the usual WithTimeout plus deferred
// cancel leaves the socket running after Connect returns.
func TestConnectContextBoundsDialOnly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tr := newMemTransport()
		sock := func() *Socket {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			sock, err := Connect(ctx, "ws://example.test/socket", &Config{Transport: tr, HeartbeatInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			return sock
		}()
		defer sock.Close()
		srv := tr.next(t)
		synctest.Wait()
		select {
		case <-sock.Done():
			t.Fatalf("socket stopped with its Connect context: %v", sock.Err())
		default:
		}
		if sock.State() != StateConnected {
			t.Fatalf("state %v", sock.State())
		}
		ch := sock.Channel("room:1", nil)
		res := async(func() error { _, err := ch.Join(context.Background()); return err })
		jm := srv.expect(t, "room:1", wire.EventJoin)
		srv.reply(t, jm, "ok", "{}")
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	})
}

// A Connect ctx that ends before the first connection opens abandons the
// dial and leaves nothing running.
func TestConnectContextEndsDial(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := Connect(ctx, "ws://example.test/socket", &Config{Transport: hangTransport{}})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect = %v, want DeadlineExceeded", err)
		}
	})
}

// hangTransport's dial waits for its ctx.
type hangTransport struct{}

func (hangTransport) Dial(ctx context.Context, _ string, _ http.Header) (Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestMalformedFrameReconnects(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// Each connection fails before answering: a constant schedule keeps
		// the reconnects 10 ms apart.
		h := connect(t, &Config{HeartbeatInterval: -1, Reconnect: func() backoff.BackOff {
			return backoff.NewConstantBackOff(10 * time.Millisecond)
		}})
		for _, bad := range []string{`nope`, `[1,2,3,4]`, `[null,null,"t"]`, `{"topic":"x"}`,
			`[null,null,"t","e",{]`, `[null,null,"t","e",{"a":tru}]`, `[null,null,"t","e",{},x]`} {
			h.srv.sendRaw(wire.Text, []byte(bad))
			synctest.Wait()
			if code, _ := h.srv.clientClose(); code != 1002 {
				t.Fatalf("%s: close code %d", bad, code)
			}
			sleep(10 * time.Millisecond)
			h.srv = h.tr.next(t)
		}
		if st := h.sock.Stats(); st.Malformed != 7 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestJoinContextCancelLeaves(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			ctx, cancel := context.WithCancel(context.Background())
			res := async(func() error { _, err := ch.Join(ctx); return err })
			jm := h.srv.expect(t, "room:1", wire.EventJoin)
			cancel()
			if err := mustReady(t, res); !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			lm := h.srv.expect(t, "room:1", wire.EventLeave)
			if lm.JoinRef != jm.JoinRef {
				t.Fatal(lm)
			}
			h.srv.reply(t, jm, "ok", "{}") // too late: ignored
			h.srv.reply(t, lm, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelClosed {
				t.Fatal(ch.State())
			}
		})
	})
}

// A Join whose ctx ends just as its reply arrives either returns the
// reply, the channel joined, or returns ctx.Err() with the channel left:
// never ctx.Err() with the channel still joined.
func TestJoinCancelRacingReply(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			var joined, left int
			for i := range 300 {
				ch := h.sock.Channel("room:"+strconv.Itoa(i), nil)
				ctx, cancel := context.WithCancel(context.Background())
				res := async(func() error { _, err := ch.Join(ctx); return err })
				jm := h.srv.expect(t, ch.Topic(), wire.EventJoin)
				if i%2 == 0 {
					h.srv.reply(t, jm, "ok", "{}")
					cancel()
				} else {
					cancel()
					h.srv.reply(t, jm, "ok", "{}")
				}
				err := mustReady(t, res)
				switch {
				case err == nil:
					joined++
					if st := ch.State(); st != ChannelJoined {
						t.Fatalf("join %d returned ok, state %v", i, st)
					}
				case errors.Is(err, context.Canceled):
					left++
					lm := h.srv.expect(t, ch.Topic(), wire.EventLeave)
					h.srv.reply(t, lm, "ok", "{}")
					synctest.Wait()
					if st := ch.State(); st != ChannelClosed {
						t.Fatalf("join %d returned %v, state %v", i, err, st)
					}
				default:
					t.Fatalf("join %d = %v", i, err)
				}
			}
			t.Logf("%d joined, %d cancelled and left", joined, left)
		})
	})
}

func TestLeaveWhileDisconnectedCompletesLocally(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, _ := h.joined("room:1")
			buffered := h.push(ch, "x", nil)
			h.srv.expect(t, "room:1", "x")
			h.tr.failNext(errors.New("down"), errors.New("down"))
			h.srv.closeWith(1006)
			synctest.Wait()
			pending := h.push(ch, "y", nil)
			synctest.Wait()
			if err := ch.Leave(context.Background()); err != nil {
				t.Fatal(err)
			}
			if ch.State() != ChannelClosed {
				t.Fatal(ch.State())
			}
			if r := mustReady(t, buffered); !errors.Is(r.err, ErrDisconnected) {
				t.Fatal(r.err)
			}
			if r := mustReady(t, pending); !errors.Is(r.err, ErrLeft) {
				t.Fatal(r.err)
			}
			sleep(time.Second)
			srv := h.tr.next(t)
			srv.expectNone(t) // no rejoin of a left channel
		})
	})
}

func TestOldConnectionEventsIgnored(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, _ := h.joined("room:1")
			var old *connHandle
			got := make(chan struct{})
			h.sock.mb.Tell(context.Background(), testFuncMsg{f: func(a *sockActor) { old = a.conn; close(got) }})
			<-got
			h.srv.closeWith(1006)
			sleep(10 * time.Millisecond)
			srv := h.tr.next(t)
			j := srv.expect(t, "room:1", wire.EventJoin)
			srv.reply(t, j, "ok", "{}")
			synctest.Wait()
			// The torn-down connection's late events: a frame, its end, and an
			// "open" must change nothing.
			a := h.sock
			ctx := context.Background()
			ev := []connEvent{
				{h: old, kind: evFrame, msg: wire.Message{JoinRef: j.JoinRef, Topic: "room:1", Event: wire.EventClose, Payload: []byte("{}")}},
				{h: old, kind: evClosed, err: &CloseError{Code: 1000}},
				{h: old, kind: evOpen, c: old.c},
			}
			done := make(chan struct{})
			a.mb.Tell(ctx, testFuncMsg{f: func(sa *sockActor) {
				for _, e := range ev {
					_ = sa.evq.Put(ctx, e)
				}
				close(done)
			}})
			<-done
			synctest.Wait()
			if ch.State() != ChannelJoined || h.sock.State() != StateConnected {
				t.Fatal(ch.State(), h.sock.State())
			}
			h.tr.noDial(t)
			r := h.push(ch, "x", nil)
			m := srv.expect(t, "room:1", "x")
			srv.reply(t, m, "ok", "{}")
			if o := mustReady(t, r); o.err != nil {
				t.Fatal(o.err)
			}
		})
	})
}

func TestBlockPolicyAndClose(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, jm := h.joined("room:1")
			sub := mustSub(t, ch, WithBuffer(1), WithOverflow(Block))
			for i := range 5 {
				h.srv.push(t, jm.JoinRef.String(), "room:1", "n", string(rune('0'+i)))
			}
			synctest.Wait()
			var got []string
			for range 5 {
				got = append(got, string((<-sub.C()).Payload))
			}
			if strings.Join(got, "") != "01234" || sub.Dropped() != 0 {
				t.Fatal(got, sub.Dropped())
			}
			// A consumer that stops reading does not keep Close from returning.
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", "5")
			h.srv.push(t, jm.JoinRef.String(), "room:1", "n", "6")
			synctest.Wait()
			if err := h.sock.Close(); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func TestBinaryPushOnV1IsAnError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, Vsn: "1.0.0"})
		ch := h.sock.Channel("room:1", nil)
		res := h.join(ch)
		synctest.Wait()
		f := <-h.srv.c.toServer
		m, err := wire.V1.DecodeClient(f.op, f.data)
		if err != nil || m.Event != wire.EventJoin {
			t.Fatal(m, err)
		}
		data, op, _ := wire.V1.EncodeServer(nil, &wire.Message{JoinRef: m.JoinRef, Ref: m.Ref, Topic: "room:1", Event: wire.EventReply,
			Payload: []byte(`{"status":"ok","response":{}}`)})
		h.srv.sendRaw(op, data)
		mustReady(t, res)
		if _, err := ch.Push(context.Background(), "bin", Binary{1, 2}); !errors.Is(err, wire.ErrUnsupported) {
			t.Fatalf("binary push on vsn 1 = %v", err)
		}
	})
}

func TestJoinParamsFuncPerJoin(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			n := 0
			ch := h.sock.Channel("room:1", ParamsFunc(func() any { n++; return map[string]int{"last_seen": n} }))
			h.join(ch)
			j1 := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j1, "ok", "{}")
			synctest.Wait()
			h.srv.push(t, j1.JoinRef.String(), "room:1", wire.EventError, "{}")
			sleep(time.Second)
			j2 := h.srv.expect(t, "room:1", wire.EventJoin)
			if string(j1.Payload) != `{"last_seen":1}` || string(j2.Payload) != `{"last_seen":2}` {
				t.Fatalf("%s %s", j1.Payload, j2.Payload)
			}
		})
	})
}

func TestUnjoinedChannelForgottenAfterUnsubscribe(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			for i := range 10 {
				ch := h.sock.Channel("room:"+string(rune('a'+i)), nil)
				sub := mustSub(t, ch)
				ca := sub.ca
				sub.Close()
				// The actor retires after Close has returned: it asks the
				// socket to forget it, and stops once the socket has.
				<-ca.done
				if !ca.retired.Load() || ch.a.Load() != nil {
					t.Fatalf("%s: the actor stopped without retiring", ch.Topic())
				}
			}
			if d := h.debug(); d.chans != 0 {
				t.Fatalf("chans %d", d.chans)
			}
			ch := h.sock.Channel("room:z", nil)
			sub := mustSub(t, ch)
			h.join(ch)
			jm := h.srv.expect(t, "room:z", wire.EventJoin)
			h.srv.reply(t, jm, "ok", "{}")
			synctest.Wait()
			h.srv.push(t, "", "room:z", "ev", "{}")
			synctest.Wait()
			if m := <-sub.C(); m.Event != "ev" {
				t.Fatal(m)
			}
		})
	})
}

// TestChannelInboxOverflow: a channel actor that falls behind (held busy
// here) has a bounded inbox; broadcasts beyond it are dropped, counted and
// reported, while replies still get through, other topics and heartbeats
// go on, and what was queued arrives in order.
func TestChannelInboxOverflow(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: 100 * time.Millisecond})
			stuckCh, j1 := h.joined("room:stuck")
			okCh, j2 := h.joined("room:ok")
			sub := mustSub(t, stuckCh, WithBuffer(2*chanInbox), WithOverflow(DropNewest))
			good := mustSub(t, okCh, WithBuffer(2*chanInbox), WithOverflow(DropNewest))
			res := h.push(stuckCh, "req", nil)
			pm := h.srv.expect(t, "room:stuck", "req")
			held, release := make(chan struct{}), make(chan struct{})
			ca := stuckCh.a.Load()
			if err := ca.mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { close(held); <-release }}); err != nil {
				t.Fatal(err)
			}
			<-held
			const extra = 10
			for i := range chanInbox + extra {
				h.srv.push(t, j1.JoinRef.String(), "room:stuck", "n", strconv.Itoa(i))
				h.srv.push(t, j2.JoinRef.String(), "room:ok", "n", strconv.Itoa(i))
				if i%(chanInbox/4) == chanInbox/4-1 {
					// The healthy channel's actor keeps up with its inbox only
					// when it gets to run: a burst of more than chanInbox frames
					// overflows it too when the socket actor outpaces it (under
					// load, with -race). Less than an inbox between waits.
					synctest.Wait()
				}
			}
			h.srv.reply(t, pm, "ok", `"r"`)
			synctest.Wait()
			if buffered(t, good) != chanInbox+extra {
				t.Fatalf("healthy topic got %d, stats %+v", buffered(t, good), h.sock.Stats())
			}
			if st := h.sock.Stats(); st.Overflowed != extra || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
			sleep(100 * time.Millisecond)
			hb := h.srv.expect(t, "phoenix", "heartbeat")
			h.srv.reply(t, hb, "ok", "{}")
			close(release)
			if r := mustReady(t, res); r.err != nil || string(r.r.Response) != `"r"` {
				t.Fatalf("reply after overflow: %+v", r)
			}
			for i := range chanInbox {
				if m := <-sub.C(); string(m.Payload) != strconv.Itoa(i) {
					t.Fatalf("message %d: %s", i, m.Payload)
				}
			}
			if buffered(t, sub) != 0 {
				t.Fatalf("%d more messages than the inbox holds", buffered(t, sub))
			}
			n := 0
			for _, st := range h.statuses() {
				if sc, ok := st.(SlowConsumer); ok && sc.Topic == "room:stuck" && sc.Dropped == 1 {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("SlowConsumer events for the inbox: %d", n)
			}
		})
	})
}

// TestBlockWaitsInsteadOfDropping: with a Block subscription, a full
// channel inbox makes the socket wait for room rather than drop.
func TestBlockWaitsInsteadOfDropping(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: -1})
			ch, jm := h.joined("room:1")
			sub := mustSub(t, ch, WithBuffer(1), WithOverflow(Block))
			const n = chanInbox + 100
			for i := range n {
				h.srv.push(t, jm.JoinRef.String(), "room:1", "n", strconv.Itoa(i))
			}
			synctest.Wait()
			for i := range n {
				if m := <-sub.C(); string(m.Payload) != strconv.Itoa(i) {
					t.Fatalf("message %d: %s", i, m.Payload)
				}
			}
			if st := h.sock.Stats(); st.Overflowed != 0 || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	})
}

// TestHeartbeatTimeoutWhileWriterStuck: channel actors fill the writer's
// queue of a blackholed connection; the socket does not wait for the
// writer, so its heartbeat timeout still finds the dead connection long
// before WriteTimeout.
func TestHeartbeatTimeoutWhileWriterStuck(t *testing.T) {
	forVsns(t, func(t *testing.T, vsn string) {
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{Vsn: vsn, HeartbeatInterval: 100 * time.Millisecond, WriteTimeout: time.Minute})
			ch, _ := h.joined("room:1")
			h.srv.setBlackhole()
			for range 80 { // more than the writer's queue holds
				h.push(ch, "x", nil)
			}
			sleep(250 * time.Millisecond)
			h.tr.next(t) // reconnected after the heartbeat timeout
			found := false
			for _, st := range h.statuses() {
				if d, ok := st.(Disconnected); ok && errors.Is(d.Err, ErrHeartbeatTimeout) {
					found = true
				}
			}
			if !found {
				t.Fatal("no Disconnected with ErrHeartbeatTimeout")
			}
		})
	})
}
