//go:build go1.25

package phx

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/wire"
)

// Behaviours that a small slip in the socket or channel actor would break
// without any other test noticing: each test here pins one of them to an
// exact instant or count, inside a synctest bubble.

// The heartbeat is sent HeartbeatInterval after the connection opens (and
// after each reply), and declared lost HeartbeatTimeout after it was sent:
// the two are set apart so that using one for the other shows.
func TestHeartbeatTimeoutIsItsOwnSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		interval, timeout time.Duration
	}{
		{"longer than interval", 100 * time.Millisecond, 300 * time.Millisecond},
		{"shorter than interval", 300 * time.Millisecond, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := connect(t, &Config{HeartbeatInterval: tc.interval, HeartbeatTimeout: tc.timeout})
				sleep(tc.interval - time.Millisecond)
				h.srv.expectNone(t)
				sleep(time.Millisecond)
				hb := h.srv.expect(t, "phoenix", "heartbeat")
				sleep(tc.timeout / 2)
				h.srv.reply(t, hb, "ok", "{}")
				synctest.Wait()
				// The next one: an interval after the reply.
				sleep(tc.interval - time.Millisecond)
				h.srv.expectNone(t)
				sleep(time.Millisecond)
				h.srv.expect(t, "phoenix", "heartbeat")
				// Unanswered: alive until exactly HeartbeatTimeout.
				sleep(tc.timeout - time.Millisecond)
				synctest.Wait()
				if h.srv.dropped() {
					t.Fatalf("connection dropped before HeartbeatTimeout (%v)", tc.timeout)
				}
				sleep(time.Millisecond)
				synctest.Wait()
				if !h.srv.dropped() {
					t.Fatalf("connection kept after HeartbeatTimeout (%v)", tc.timeout)
				}
				if code, reason := h.srv.clientClose(); code != 1000 || reason != "heartbeat timeout" {
					t.Fatalf("close %d %q", code, reason)
				}
			})
		})
	}
}

// rejoinings returns the Rejoining events among the pending statuses.
func (h *harness) rejoinings() []Rejoining {
	var out []Rejoining
	for _, st := range h.statuses() {
		if r, ok := st.(Rejoining); ok {
			out = append(out, r)
		}
	}
	return out
}

// After a successful rejoin the rejoin schedule starts over: every crash
// of a channel that had rejoined is reported as attempt 1 with the first
// delay, however many attempts the previous crash took. A push is kept in
// flight across each crash so that the channel's rejoin state is never
// tidied away between rounds: only the reset can restart the schedule.
func TestRejoinBackoffRestartsAfterJoin(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		inflight := h.push(ch, "work", nil)
		h.srv.expect(t, "room:1", "work")
		h.statuses()
		for round := 1; round <= 3; round++ {
			h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventError, `{"reason":"channel_crash"}`)
			synctest.Wait()
			if r := mustReady(t, inflight); !errors.Is(r.err, ErrDisconnected) {
				t.Fatalf("round %d: in-flight push = %v", round, r.err)
			}
			if got := h.rejoinings(); len(got) != 1 || got[0].Attempt != 1 || got[0].Delay != time.Second {
				t.Fatalf("round %d: after the crash %+v, want attempt 1 in 1s", round, got)
			}
			// Buffered while errored; sent once rejoined, and in flight at
			// the next crash.
			inflight = h.push(ch, "work", nil)
			sleep(time.Second)
			j := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j, "error", `{"reason":"busy"}`)
			synctest.Wait()
			if got := h.rejoinings(); len(got) != 1 || got[0].Attempt != 2 || got[0].Delay != 2*time.Second {
				t.Fatalf("round %d: after a refused rejoin %+v, want attempt 2 in 2s", round, got)
			}
			sleep(2*time.Second - time.Millisecond)
			h.srv.expectNone(t)
			sleep(time.Millisecond)
			jm = h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, jm, "ok", "{}")
			h.srv.expect(t, "room:1", "work")
			if ch.State() != ChannelJoined {
				t.Fatalf("round %d: state %v", round, ch.State())
			}
			h.statuses()
		}
	})
}

// A Ping in flight when the connection drops fails with ErrDisconnected at
// once, not when the caller's ctx ends.
func TestPingFailsWhenConnectionDrops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		res := async(func() error { _, err := h.sock.Ping(ctx); return err })
		h.srv.expect(t, "phoenix", "heartbeat")
		notReady(t, res)
		h.srv.closeWith(1006)
		if err := mustReady(t, res); !errors.Is(err, ErrDisconnected) {
			t.Fatalf("ping = %v, want ErrDisconnected", err)
		}
	})
}

// A reply on the phoenix topic is handled once: a heartbeat's stays inside
// the socket, a ping's reaches the socket-wide subscription exactly once,
// a reply to nothing is counted as unrouted once and still tapped; no
// reply to a heartbeat or a ping counts as unrouted.
func TestPhoenixRepliesHandledOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: 30 * time.Millisecond})
		all := mustSub(t, h.sock)
		for range 10 {
			sleep(30 * time.Millisecond)
			hb := h.srv.expect(t, "phoenix", "heartbeat")
			h.srv.reply(t, hb, "ok", "{}")
		}
		synctest.Wait()
		if n := len(all.C()); n != 0 {
			t.Fatalf("socket-wide subscription got %d heartbeat replies, first %+v", n, <-all.C())
		}
		res := async(func() error { _, err := h.sock.Ping(context.Background()); return err })
		pm := h.srv.expect(t, "phoenix", "heartbeat")
		h.srv.reply(t, pm, "ok", "{}")
		if err := mustReady(t, res); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(all.C()); n != 1 {
			t.Fatalf("ping reply delivered %d times", n)
		}
		if m := <-all.C(); m.Topic != "phoenix" || m.Event != wire.EventReply || m.Ref != pm.Ref.String() {
			t.Fatalf("tapped %+v", m)
		}
		if st := h.sock.Stats(); st.Unrouted != 0 {
			t.Fatalf("unrouted %d after heartbeats and a ping", st.Unrouted)
		}
		h.srv.send(t, wire.Message{Ref: wire.NewRef("9999"), Topic: "phoenix", Event: wire.EventReply,
			Payload: wire.AppendReplyPayload(nil, "ok", []byte("{}"))})
		synctest.Wait()
		if st := h.sock.Stats(); st.Unrouted != 1 {
			t.Fatalf("unrouted %d after a reply to no push, want 1", st.Unrouted)
		}
		if n := len(all.C()); n != 1 {
			t.Fatalf("reply to no push delivered %d times", n)
		}
		all.Close()
	})
}

// Socket.Subscribe's contract: heartbeat replies excepted, at any rate and
// also when the subscription filters on phx_reply.
func TestSocketSubscribeSkipsHeartbeatReplies(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: 30 * time.Millisecond})
		replies := mustSub(t, h.sock, Events(wire.EventReply))
		ch, _ := h.joined("room:1")
		out := h.push(ch, "ev", nil)
		pm := h.srv.expect(t, "room:1", "ev")
		for range 10 {
			sleep(30 * time.Millisecond)
			hb := h.srv.expect(t, "phoenix", "heartbeat")
			h.srv.reply(t, hb, "ok", "{}")
		}
		h.srv.reply(t, pm, "ok", `{"n":1}`)
		if r := mustReady(t, out); r.err != nil {
			t.Fatal(r.err)
		}
		synctest.Wait()
		// The join reply and the push reply; nothing of the heartbeats.
		var got []Message
		for len(replies.C()) > 0 {
			got = append(got, <-replies.C())
		}
		if len(got) != 2 || got[0].Topic != "room:1" || got[1].Topic != "room:1" || got[1].Ref != pm.Ref.String() {
			t.Fatalf("replies tapped: %+v", got)
		}
		replies.Close()
	})
}

// reconnectings returns the Reconnecting events among the pending statuses.
func (h *harness) reconnectings() []Reconnecting {
	var out []Reconnecting
	for _, st := range h.statuses() {
		if r, ok := st.(Reconnecting); ok {
			out = append(out, r)
		}
	}
	return out
}

// Reconnecting.Attempt counts the attempts since a connection last proved
// healthy, from 1, with the delay of the schedule's step: after a
// connection opens and answers a ping, the next loss starts again at
// attempt 1 and the first delay.
func TestReconnectingAttemptsCountFromLastOpen(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		srv := h.srv
		h.statuses()
		for round := 1; round <= 2; round++ {
			dialErr := &DialError{URL: "x", Err: errors.New("refused")}
			h.tr.failNext(dialErr, dialErr)
			srv.closeWith(1006)
			want := []Reconnecting{{1, 10 * time.Millisecond}, {2, 50 * time.Millisecond}, {3, 100 * time.Millisecond}}
			for i, w := range want {
				got := h.reconnectings()
				if len(got) != 1 || got[0] != w {
					t.Fatalf("round %d, attempt %d: %+v, want %+v", round, i+1, got, w)
				}
				sleep(w.Delay)
			}
			srv = h.tr.next(t)
			synctest.Wait()
			if h.sock.State() != StateConnected {
				t.Fatalf("round %d: state %v", round, h.sock.State())
			}
			pinged := make(chan error, 1)
			go func() { _, err := h.sock.Ping(context.Background()); pinged <- err }()
			hb := srv.expect(t, "phoenix", "heartbeat")
			srv.reply(t, hb, "ok", "{}")
			if err := <-pinged; err != nil {
				t.Fatalf("round %d: ping: %v", round, err)
			}
		}
		if n := h.sock.Stats().Reconnects; n != 2 {
			t.Fatalf("reconnects %d, want 2", n)
		}
	})
}

// A broadcast that arrives while the channel is leaving belongs to the
// session being left: it is counted, not delivered.
func TestBroadcastWhileLeavingIsStale(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		sub := mustSub(t, ch)
		res := async(func() error { return ch.Leave(context.Background()) })
		lm := h.srv.expect(t, "room:1", wire.EventLeave)
		h.srv.push(t, jm.JoinRef.String(), "room:1", "late", "{}")
		h.srv.push(t, "", "room:1", "late", "{}")
		synctest.Wait()
		if n := len(sub.C()); n != 0 {
			t.Fatalf("%d broadcasts delivered while leaving", n)
		}
		// The stamped one reaches the leaving channel; the unstamped one
		// finds the topic no longer routed to it.
		if st := h.sock.Stats(); st.Stale != 1 || st.Unrouted != 1 {
			t.Fatalf("stale %d, unrouted %d, want 1 and 1", st.Stale, st.Unrouted)
		}
		h.srv.reply(t, lm, "ok", "{}")
		if err := mustReady(t, res); err != nil {
			t.Fatal(err)
		}
	})
}

// A join still waiting for its reply ends at once when the server errors
// the channel or the connection drops: the first Join fails with
// ErrDisconnected, and the channel joins again (on the rejoin schedule, or
// as soon as the socket reconnects), without waiting for the join timeout.
func TestJoinInFlightEndsOnErrorOrDrop(t *testing.T) {
	t.Parallel()
	t.Run("phx_error", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			res := h.join(ch)
			jm := h.srv.expect(t, "room:1", wire.EventJoin)
			h.statuses()
			h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventError, "{}")
			if r := mustReady(t, res); !errors.Is(r.err, ErrDisconnected) {
				t.Fatalf("join = %v", r.err)
			}
			if ch.State() != ChannelErrored {
				t.Fatalf("state %v", ch.State())
			}
			if got := h.rejoinings(); len(got) != 1 || got[0].Attempt != 1 {
				t.Fatalf("rejoinings %+v", got)
			}
			sleep(time.Second)
			j2 := h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.reply(t, j2, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v", ch.State())
			}
		})
	})
	t.Run("drop", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := connect(t, &Config{HeartbeatInterval: -1})
			ch := h.sock.Channel("room:1", nil)
			res := h.join(ch)
			h.srv.expect(t, "room:1", wire.EventJoin)
			h.srv.closeWith(1006)
			if r := mustReady(t, res); !errors.Is(r.err, ErrDisconnected) {
				t.Fatalf("join = %v", r.err)
			}
			sleep(10 * time.Millisecond)
			srv := h.tr.next(t)
			j2 := srv.expect(t, "room:1", wire.EventJoin)
			srv.reply(t, j2, "ok", "{}")
			synctest.Wait()
			if ch.State() != ChannelJoined {
				t.Fatalf("state %v", ch.State())
			}
		})
	})
}

// SlowConsumer is reported once per overflow episode, with the topic's
// running total of drops: a second episode, after the channel caught up,
// is reported again, once.
func TestSlowConsumerOncePerEpisode(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:stuck")
		sub := mustSub(t, ch, WithBuffer(4*chanInbox), WithOverflow(DropNewest))
		ca := ch.a.Load()
		h.statuses()
		for ep, tc := range []struct {
			extra      int
			first, sum uint64 // the running total at the episode's first drop, and after it
		}{{3, 1, 3}, {2, 4, 5}} {
			held, release := make(chan struct{}), make(chan struct{})
			if err := ca.mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { close(held); <-release }}); err != nil {
				t.Fatal(err)
			}
			<-held
			for i := range chanInbox + tc.extra {
				h.srv.push(t, jm.JoinRef.String(), "room:stuck", "n", strconv.Itoa(i))
			}
			synctest.Wait()
			close(release)
			synctest.Wait()
			var got []SlowConsumer
			for _, st := range h.statuses() {
				if sc, ok := st.(SlowConsumer); ok {
					got = append(got, sc)
				}
			}
			if len(got) != 1 || got[0].Topic != "room:stuck" || got[0].Dropped != tc.first || !errors.Is(got[0].Err, ErrSlowConsumer) {
				t.Fatalf("episode %d: %+v, want one at drop %d", ep+1, got, tc.first)
			}
			if st := h.sock.Stats(); st.Overflowed != tc.sum {
				t.Fatalf("episode %d: overflowed %d, want %d", ep+1, st.Overflowed, tc.sum)
			}
			for len(sub.C()) > 0 {
				<-sub.C()
			}
		}
	})
}

// A phx_close that answers a leave in place of its reply completes the
// leave: Leave returns nil and subscriptions end with ErrLeft, not with a
// server close.
func TestCloseWhileLeavingIsTheLeave(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		sub := mustSub(t, ch)
		res := async(func() error { return ch.Leave(context.Background()) })
		h.srv.expect(t, "room:1", wire.EventLeave)
		h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventClose, "{}")
		if err := mustReady(t, res); err != nil {
			t.Fatalf("leave = %v", err)
		}
		if _, ok := <-sub.C(); ok || !errors.Is(sub.Err(), ErrLeft) {
			t.Fatalf("subscription ended with %v, want ErrLeft", sub.Err())
		}
		if ch.State() != ChannelClosed {
			t.Fatalf("state %v", ch.State())
		}
	})
}

// A connection given up while its writer is stuck (a blackholed peer, a
// long WriteTimeout) is dropped CloseTimeout after the socket let it go,
// not when the write times out.
func TestStuckConnectionDroppedAfterCloseTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const closeTimeout = 300 * time.Millisecond
		h := connect(t, &Config{HeartbeatInterval: 100 * time.Millisecond, WriteTimeout: time.Hour, CloseTimeout: closeTimeout})
		ch, _ := h.joined("room:1")
		old := h.srv
		old.setBlackhole()
		for range 80 { // more than the writer's queue holds
			h.push(ch, "x", nil)
		}
		// The heartbeat goes out at 100 ms and is given up at 200 ms.
		sleep(200 * time.Millisecond)
		synctest.Wait()
		found := false
		for _, st := range h.statuses() {
			if d, ok := st.(Disconnected); ok && errors.Is(d.Err, ErrHeartbeatTimeout) {
				found = true
			}
		}
		if !found {
			t.Fatal("no Disconnected with ErrHeartbeatTimeout at 200 ms")
		}
		sleep(closeTimeout - time.Millisecond)
		synctest.Wait()
		if old.dropped() {
			t.Fatal("stuck connection dropped before CloseTimeout")
		}
		sleep(time.Millisecond)
		synctest.Wait()
		if !old.dropped() {
			t.Fatal("stuck connection still open CloseTimeout after it was given up")
		}
	})
}

// With RetryUnauthorized a 401 or 403 on a reconnect is one more failed
// attempt: the socket keeps to its schedule and connects again.
func TestRetryUnauthorizedKeepsReconnecting(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, RetryUnauthorized: true})
		h.tr.failNext(&DialError{URL: "x", Status: 401, Err: errors.New("bad handshake")},
			&DialError{URL: "x", Status: 403, Err: errors.New("bad handshake")})
		h.srv.closeWith(1006)
		sleep(10*time.Millisecond + 50*time.Millisecond + 100*time.Millisecond)
		h.tr.next(t)
		synctest.Wait()
		if h.sock.State() != StateConnected || h.sock.Err() != nil {
			t.Fatalf("state %v, err %v", h.sock.State(), h.sock.Err())
		}
	})
}

// A reconnect backoff that returns backoff.Stop ends the socket with the
// last connection error, without another attempt.
func TestReconnectBackoffStopEndsSocket(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, Reconnect: func() backoff.BackOff { return &backoff.StopBackOff{} }})
		h.srv.closeWith(1011)
		synctest.Wait()
		select {
		case <-h.sock.Done():
		default:
			t.Fatal("socket still running after the backoff stopped")
		}
		if CloseCode(h.sock.Err()) != 1011 || !strings.Contains(h.sock.Err().Error(), "gave up") {
			t.Fatalf("Err = %v", h.sock.Err())
		}
		sleep(time.Minute)
		h.tr.noDial(t)
	})
}

// A rejoin backoff that returns backoff.Stop closes the channel with the
// reason it errored, instead of rejoining.
func TestRejoinBackoffStopClosesChannel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, Rejoin: func() backoff.BackOff { return &backoff.StopBackOff{} }})
		ch, jm := h.joined("room:1")
		sub := mustSub(t, ch)
		h.srv.push(t, jm.JoinRef.String(), "room:1", wire.EventError, `{"reason":"boom"}`)
		synctest.Wait()
		if ch.State() != ChannelClosed {
			t.Fatalf("state %v", ch.State())
		}
		var se *ServerError
		if _, ok := <-sub.C(); ok || !errors.As(sub.Err(), &se) || !strings.Contains(sub.Err().Error(), "gave up") {
			t.Fatalf("subscription ended with %v", sub.Err())
		}
		sleep(time.Minute)
		h.srv.expectNone(t)
	})
}

// A subscription's drops: Stats.Dropped counts each, and SlowConsumer is
// reported once per episode with the subscription's running total; an
// episode ends when a message fits again.
func TestSubscriptionDropEpisodes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		ch, jm := h.joined("room:1")
		sub := mustSub(t, ch, WithBuffer(2), WithOverflow(DropNewest))
		h.statuses()
		for ep, tc := range []struct {
			sent        int
			first, drop uint64
		}{{4, 1, 2}, {3, 3, 3}} {
			for i := range tc.sent {
				h.srv.push(t, jm.JoinRef.String(), "room:1", "n", strconv.Itoa(i))
			}
			synctest.Wait()
			var got []SlowConsumer
			for _, st := range h.statuses() {
				if sc, ok := st.(SlowConsumer); ok {
					got = append(got, sc)
				}
			}
			if len(got) != 1 || got[0].Topic != "room:1" || got[0].Dropped != tc.first {
				t.Fatalf("episode %d: %+v, want one at drop %d", ep+1, got, tc.first)
			}
			if st := h.sock.Stats(); st.Dropped != tc.drop {
				t.Fatalf("episode %d: dropped %d, want %d", ep+1, st.Dropped, tc.drop)
			}
			for len(sub.C()) > 0 {
				<-sub.C()
			}
		}
	})
}

// When nobody reads the Status stream, its oldest events make room for
// the newest.
func TestStatusStreamKeepsNewest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1, StatusBuffer: 2})
		for i := range 5 {
			h.joined("room:" + strconv.Itoa(i))
		}
		var topics []string
		for _, st := range h.statuses() {
			if j, ok := st.(Joined); ok {
				topics = append(topics, j.Topic)
			}
		}
		if strings.Join(topics, " ") != "room:3 room:4" {
			t.Fatalf("status stream holds %v, want the last two joins", topics)
		}
	})
}

// A Join made while the socket is reconnecting is sent as soon as the
// connection opens, not after a timeout.
func TestJoinWhileDisconnectedSentOnOpen(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := connect(t, &Config{HeartbeatInterval: -1})
		h.tr.failNext(errors.New("down"))
		h.srv.closeWith(1006)
		synctest.Wait()
		ch := h.sock.Channel("room:1", nil)
		res := h.join(ch)
		synctest.Wait()
		if ch.State() != ChannelJoining {
			t.Fatalf("state %v", ch.State())
		}
		sleep(10 * time.Millisecond) // the failed attempt
		h.tr.noDial(t)
		sleep(50 * time.Millisecond)
		srv := h.tr.next(t)
		jm := srv.expect(t, "room:1", wire.EventJoin)
		srv.reply(t, jm, "ok", "{}")
		if r := mustReady(t, res); r.err != nil {
			t.Fatalf("join = %v", r.err)
		}
	})
}
