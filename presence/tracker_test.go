package presence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/presence"
	"github.com/phxgo/phxgo/wire"
)

const room = "room:presence"

// testCtx bounds a test: long enough for a loaded 2-core machine, short
// enough that a hang fails the test rather than the run.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial connects user to srv with fast reconnects and rejoins.
func dial(t *testing.T, ctx context.Context, srv *phxtest.Server, user string, cfg phx.Config) *phx.Socket {
	t.Helper()
	cfg.Params = url.Values{"user": {user}}
	fast := func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) }
	if cfg.Rejoin == nil {
		cfg.Rejoin = fast
	}
	if cfg.Reconnect == nil {
		cfg.Reconnect = fast
	}
	s, err := phx.Connect(ctx, srv.URL(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// join joins room as user with device on a socket of its own.
func join(t *testing.T, ctx context.Context, srv *phxtest.Server, user, device string) (*phx.Socket, *phx.Channel) {
	t.Helper()
	s := dial(t, ctx, srv, user, phx.Config{})
	ch := s.Channel(room, map[string]any{"device": device})
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	return s, ch
}

// observe starts a tracker on a fresh observer socket, subscribed before the
// join, and waits for its first Sync.
func observe(t *testing.T, ctx context.Context, srv *phxtest.Server, opts *presence.TrackOptions) (*presence.Tracker, *phx.Socket, *phx.Channel) {
	t.Helper()
	s := dial(t, ctx, srv, "observer", phx.Config{})
	ch := s.Channel(room, map[string]any{"device": "monitor"})
	tr := presence.Track(ctx, ch, opts)
	t.Cleanup(tr.Close)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	untilSync(t, ctx, tr)
	return tr, s, ch
}

// untilSync collects events up to and including the next Sync, rendered as
// short strings.
func untilSync(t *testing.T, ctx context.Context, tr *presence.Tracker) []string {
	t.Helper()
	var got []string
	for {
		select {
		case ev, ok := <-tr.Events():
			if !ok {
				t.Fatalf("tracker ended (%v) after %q", tr.Err(), got)
			}
			got = append(got, renderEv(ev))
			if _, ok := ev.(presence.Sync); ok {
				return got
			}
		case <-ctx.Done():
			t.Fatalf("no sync after %q: %v", got, ctx.Err())
		}
	}
}

func renderEv(ev presence.Event) string {
	switch ev := ev.(type) {
	case presence.Join:
		return fmt.Sprintf("join %s %d+%d", ev.Key, len(currentMetas(ev.Current)), len(ev.New.Metas))
	case presence.Leave:
		return fmt.Sprintf("leave %s %d-%d", ev.Key, len(ev.Current.Metas), len(ev.Left.Metas))
	case presence.Update:
		return "update " + ev.Key
	case presence.Sync:
		return fmt.Sprintf("sync %d", ev.Len)
	case presence.Skipped:
		return "skipped " + ev.Event
	}
	return fmt.Sprintf("%T", ev)
}

func currentMetas(p *presence.Presence) []presence.Meta {
	if p == nil {
		return nil
	}
	return p.Metas
}

// sameAsServer requires the tracker's list to hold what the server holds:
// the same keys with the same phx_refs.
func sameAsServer(t *testing.T, srv *phxtest.Server, tr *presence.Tracker) {
	t.Helper()
	raw, err := json.Marshal(srv.Presence(room))
	if err != nil {
		t.Fatal(err)
	}
	server, err := presence.DecodeState(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for key, p := range server.All() {
		want[key] = p.Refs()
	}
	got := map[string][]string{}
	for _, kp := range tr.List() {
		got[kp.Key] = kp.Presence.Refs()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tracker list %v, server %v", got, want)
	}
}

func TestTrackerJoinLeaveUpdate(t *testing.T) {
	t.Parallel()
	for _, updates := range []bool{false, true} {
		t.Run(fmt.Sprint("updates=", updates), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			srv := phxtest.NewServer(t, phxtest.DemoConfig())
			tr, _, _ := observe(t, ctx, srv, &presence.TrackOptions{Options: presence.Options{Updates: updates}})

			_, ch1 := join(t, ctx, srv, "u1", "laptop")
			if got := strings.Join(untilSync(t, ctx, tr), ", "); got != "join u1 0+1, sync 2" {
				t.Errorf("u1 joins: %s", got)
			}
			_, ch2 := join(t, ctx, srv, "u2", "phone")
			untilSync(t, ctx, tr)
			if _, err := ch2.Push(ctx, "update_meta", map[string]any{"status": "away"}); err != nil {
				t.Fatal(err)
			}
			want := "join u2 1+1, leave u2 1-1, sync 3"
			if updates {
				want = "update u2, sync 3"
			}
			if got := strings.Join(untilSync(t, ctx, tr), ", "); got != want {
				t.Errorf("u2 updates: %s, want %s", got, want)
			}
			if err := ch1.Leave(ctx); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(untilSync(t, ctx, tr), ", "); got != "leave u1 0-1, sync 2" {
				t.Errorf("u1 leaves: %s", got)
			}
			sameAsServer(t, srv, tr)
			if st := tr.Stats(); st.Dropped != 0 || st.Skipped != 0 || st.Messages != 6 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestTrackerSeveralSocketsPerKey(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	tr, _, _ := observe(t, ctx, srv, nil)
	s1, _ := join(t, ctx, srv, "u2", "phone")
	untilSync(t, ctx, tr)
	join(t, ctx, srv, "u2", "desktop")
	if got := strings.Join(untilSync(t, ctx, tr), ", "); got != "join u2 1+1, sync 2" {
		t.Errorf("second socket: %s", got)
	}
	_ = s1.Close()
	if got := strings.Join(untilSync(t, ctx, tr), ", "); got != "leave u2 1-1, sync 2" {
		t.Errorf("first socket closes: %s", got)
	}
	sameAsServer(t, srv, tr)
}

// After the server crashes the channel, and after the connection drops, the
// channel rejoins with a new join ref, the server sends a new state and the
// tracker reports what changed meanwhile: its list is the server's again.
func TestTrackerRejoin(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	tr, obs, _ := observe(t, ctx, srv, nil)
	_, ch1 := join(t, ctx, srv, "u1", "laptop")
	untilSync(t, ctx, tr)
	conn := obsConn(t, ctx, srv)
	oldRef, _ := conn.JoinRef(room)

	// Crash: the observer's own presence leaves and joins again, which the
	// new state reports as one meta replaced.
	if err := conn.CrashChannel(ctx, room); err != nil {
		t.Fatal(err)
	}
	got := untilSync(t, ctx, tr)
	if last := got[len(got)-1]; last != "sync 2" || !contains(got, "join observer 1+1") || !contains(got, "leave observer 1-1") {
		t.Errorf("after crash: %q", got)
	}
	sameAsServer(t, srv, tr)

	// A diff of the old join is stale: it never reaches the state. The
	// next diff, sent after it on the same connection, shows it was not
	// folded.
	stale := wire.Message{JoinRef: wire.NewRef(oldRef), Topic: room, Event: "presence_diff",
		Payload: []byte(`{"joins":{"ghost":{"metas":[{"phx_ref":"g"}]}},"leaves":{}}`)}
	if err := conn.Send(stale); err != nil {
		t.Fatal(err)
	}
	_, _ = join(t, ctx, srv, "u2", "phone")
	if got := strings.Join(untilSync(t, ctx, tr), ", "); got != "join u2 0+1, sync 3" {
		t.Errorf("after a stale diff: %s", got)
	}

	// Drop: while the observer is away u1 leaves; the diff never reaches it
	// and the next state says so.
	status := obs.Status()
	conn.Drop()
	waitStatus(t, ctx, status, func(st phx.Status) bool { _, ok := st.(phx.Disconnected); return ok })
	if err := ch1.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	// The observer may rejoin before or after the server has let u1 go:
	// the leave comes in the new state or in a diff after it.
	got = nil
	for i := 0; i < 3 && !contains(got, "leave u1 0-1"); i++ {
		got = append(got, untilSync(t, ctx, tr)...)
	}
	if !contains(got, "leave u1 0-1") || got[len(got)-1] != "sync 2" {
		t.Errorf("after reconnect: %q", got)
	}
	sameAsServer(t, srv, tr)
}

func obsConn(t *testing.T, ctx context.Context, srv *phxtest.Server) *phxtest.Conn {
	t.Helper()
	for _, c := range srv.Conns() {
		if c.Params().Get("user") == "observer" {
			return c
		}
	}
	t.Fatal("no observer connection")
	return nil
}

func waitStatus(t *testing.T, ctx context.Context, c <-chan phx.Status, want func(phx.Status) bool) {
	t.Helper()
	for {
		select {
		case st := <-c:
			if want(st) {
				return
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestTrackerEnds(t *testing.T) {
	t.Parallel()
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		tr, _, _ := observe(t, ctx, srv, nil)
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() { defer wg.Done(); tr.Close() }()
		}
		wg.Wait()
		tr.Close()
		if _, ok := <-tr.Events(); ok {
			t.Error("Events open after Close")
		}
		if err := tr.Err(); err != nil {
			t.Errorf("Err after Close: %v", err)
		}
		if n := len(tr.List()); n != 1 {
			t.Errorf("final list has %d keys, want 1", n)
		}
	})
	t.Run("ctx", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		s := dial(t, ctx, srv, "observer", phx.Config{})
		tctx, cancel := context.WithCancel(ctx)
		tr := presence.Track(tctx, s.Channel(room, nil), nil)
		cancel()
		<-tr.Done()
		if err := tr.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err %v, want context.Canceled", err)
		}
		var last error
		for _, err := range tr.All(ctx) {
			last = err
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("All ended with %v", last)
		}
	})
	t.Run("leave", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		tr, _, ch := observe(t, ctx, srv, nil)
		if err := ch.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		for range tr.Events() {
		}
		if err := tr.Err(); !errors.Is(err, phx.ErrLeft) {
			t.Errorf("Err %v, want ErrLeft", err)
		}
	})
	t.Run("socket closed", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		tr, s, _ := observe(t, ctx, srv, nil)
		_ = s.Close()
		<-tr.Done()
		if err := tr.Err(); !errors.Is(err, phx.ErrClosed) {
			t.Errorf("Err %v, want ErrClosed", err)
		}
	})
	t.Run("nil channel", func(t *testing.T) {
		t.Parallel()
		tr := presence.Track(context.Background(), nil, nil)
		<-tr.Done()
		if tr.Err() == nil {
			t.Error("no error for a nil channel")
		}
	})
}

// A consumer that stops reading: with CloseWithError the second batch
// ends the tracker; with DropNewest the batches are counted and the state stays
// right.
func TestTrackerOverflow(t *testing.T) {
	t.Parallel()
	t.Run("close with error", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		tr, _, _ := observe(t, ctx, srv, &presence.TrackOptions{Buffer: 1, Overflow: phx.CloseWithError})
		join(t, ctx, srv, "u1", "laptop")
		join(t, ctx, srv, "u2", "phone")
		<-tr.Done()
		if err := tr.Err(); !errors.Is(err, phx.ErrSlowConsumer) {
			t.Errorf("Err %v, want ErrSlowConsumer", err)
		}
	})
	t.Run("drop newest", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		tr, _, _ := observe(t, ctx, srv, &presence.TrackOptions{Buffer: 1})
		// One batch waits unread (u1's join); u2's is dropped.
		join(t, ctx, srv, "u1", "laptop")
		join(t, ctx, srv, "u2", "phone")
		// Both diffs are on their way to the observer's subscription; the
		// actor answers Stats between messages, so each question is a turn
		// of its loop and the diffs are folded after a few.
		for tr.Stats().Messages < 4 {
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
		}
		if st := tr.Stats(); st.Dropped != 2 {
			t.Errorf("dropped %d events, want 2 (a join and a sync)", st.Dropped)
		}
		sameAsServer(t, srv, tr)
		if got := strings.Join(untilSync(t, ctx, tr), ", "); got != "join u1 0+1, sync 2" {
			t.Errorf("kept batch: %s", got)
		}
	})
	t.Run("drop oldest", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		tr, _, _ := observe(t, ctx, srv, &presence.TrackOptions{Buffer: 2, Overflow: phx.DropOldest})
		// Two batches wait unread, none begun: u3's join drops the
		// oldest, u1's, and keeps u2's.
		join(t, ctx, srv, "u1", "laptop")
		join(t, ctx, srv, "u2", "phone")
		join(t, ctx, srv, "u3", "tablet")
		for tr.Stats().Dropped == 0 {
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
		}
		if got := strings.Join(untilSync(t, ctx, tr), ", "); !strings.HasPrefix(got, "join u2 ") {
			t.Errorf("first kept batch: %s, want u2's", got)
		}
	})
}

// A payload the fold cannot read is reported as Skipped, and the tracker
// goes on.
func TestTrackerSkipsMalformed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	tr, _, _ := observe(t, ctx, srv, nil)
	if err := obsConn(t, ctx, srv).Push(room, "presence_diff", "not a diff"); err != nil {
		t.Fatal(err)
	}
	join(t, ctx, srv, "u1", "laptop")
	var skipped error
	for ev, err := range tr.All(ctx) {
		if err != nil {
			skipped = err
			if _, ok := ev.(presence.Skipped); !ok {
				t.Fatalf("%v without a Skipped event: %v", err, ev)
			}
			continue
		}
		if _, ok := ev.(presence.Sync); ok {
			break
		}
	}
	if !errors.Is(skipped, presence.ErrMalformed) {
		t.Errorf("skipped with %v, want ErrMalformed", skipped)
	}
	if st := tr.Stats(); st.Skipped != 1 {
		t.Errorf("stats %+v", st)
	}
	sameAsServer(t, srv, tr)
}

// Block: the tracker stops reading the channel while its queue is full;
// when the subscription overflows too, the tracker ends with
// ErrSlowConsumer after handing out what it had.
func TestTrackerBlock(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	tr, obs, _ := observe(t, ctx, srv, &presence.TrackOptions{Buffer: 1, Overflow: phx.Block, SubscriptionBuffer: 1})
	status := obs.Status()
	// Three diffs (the room tracks each user after its join reply, in any
	// order) for room for two: one batch queued, one message in the
	// subscription. Nobody reads until the subscription has overflowed.
	join(t, ctx, srv, "u1", "laptop")
	join(t, ctx, srv, "u2", "phone")
	join(t, ctx, srv, "u3", "tablet")
	waitStatus(t, ctx, status, func(st phx.Status) bool { _, ok := st.(phx.SlowConsumer); return ok })
	var got []string
	for ev := range tr.Events() {
		// Which user comes first is up to the server.
		if j, ok := ev.(presence.Join); ok {
			ev = presence.Join{Key: "u", New: j.New}
		}
		got = append(got, renderEv(ev))
	}
	if err := tr.Err(); !errors.Is(err, phx.ErrSlowConsumer) {
		t.Errorf("Err %v, want ErrSlowConsumer", err)
	}
	s := strings.Join(got, ", ")
	if s != "join u 0+1, sync 2" && s != "join u 0+1, sync 2, join u 0+1, sync 3" {
		t.Errorf("events before the end: %s", s)
	}
}

// A tracker made after the join has missed that join's presence_state: the
// diffs wait (and overflow MaxPending as Skipped values) until a rejoin
// brings a state, after which the list is the server's.
func TestTrackerAfterJoin(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	s := dial(t, ctx, srv, "observer", phx.Config{})
	ch := s.Channel(room, map[string]any{"device": "monitor"})
	// The room pushes its state after the join reply: wait until the
	// client has it, so that the tracker surely misses it.
	first, err := ch.Subscribe(ctx, phx.Events("presence_state"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.C():
		first.Close()
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	conn, err := srv.WaitJoined(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	tr := presence.Track(ctx, ch, &presence.TrackOptions{Options: presence.Options{MaxPending: 1}})
	defer tr.Close()
	join(t, ctx, srv, "u1", "laptop")
	join(t, ctx, srv, "u2", "phone")
	var skipped error
	for ev, err := range tr.All(ctx) {
		if _, ok := ev.(presence.Skipped); !ok || err == nil {
			t.Fatalf("%v, %v before any state", ev, err)
		}
		skipped = err
		break
	}
	if !errors.Is(skipped, presence.ErrPendingOverflow) {
		t.Errorf("skipped with %v, want ErrPendingOverflow", skipped)
	}
	if st := tr.Stats(); st.Pending != 1 || st.Overflow != 1 || len(tr.List()) != 0 {
		t.Errorf("stats %+v, %d keys", st, len(tr.List()))
	}
	if err := conn.CrashChannel(ctx, room); err != nil {
		t.Fatal(err)
	}
	untilSync(t, ctx, tr)
	sameAsServer(t, srv, tr)
}
