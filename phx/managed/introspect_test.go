package managed_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// gated is a server whose joins wait for joinGate and whose "hold" pushes
// wait for holdGate; "noreply" is never answered, anything else echoed.
func gated(t *testing.T, joinGate, holdGate chan struct{}) *phxtest.Server {
	h := phxtest.HandlerFuncs{
		JoinFunc: func(ctx context.Context, _ *phxtest.Channel, _ json.RawMessage) (any, error) {
			select {
			case <-joinGate:
			case <-ctx.Done():
			}
			return nil, nil
		},
		InFunc: func(ctx context.Context, _ *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
			switch in.Event {
			case "hold":
				select {
				case <-holdGate:
				case <-ctx.Done():
				}
			case "noreply":
				return phxtest.NoReply()
			}
			return phxtest.Reply("ok", in.Payload)
		},
	}
	return phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"q:*": h}})
}

func refs(ps []managed.Push) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Ref)
	}
	return out
}

// Queued pushes can be listed and dropped; a dropped one never reaches the
// wire.
func TestQueuedPushesListedAndDropped(t *testing.T) {
	t.Parallel()
	joinGate := make(chan struct{})
	srv := gated(t, joinGate, nil)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	err := c.Send(ctx,
		managed.Push{Topic: "q:1", Event: "echo", Ref: "a", Payload: map[string]string{"p": "a"}},
		managed.Push{Topic: "q:1", Event: "echo", Ref: "b", Payload: map[string]string{"p": "b"}},
		managed.Push{Topic: "q:1", Event: "other", Ref: "c", Payload: map[string]string{"p": "c"}},
		managed.Push{Topic: "q:2", Event: "echo", Ref: "d"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.AllQueuedPushes(ctx)
	if err != nil || !slices.Equal(refs(all["q:1"]), []string{"a", "b", "c"}) || !slices.Equal(refs(all["q:2"]), []string{"d"}) {
		t.Fatalf("all queued %v, %v", all, err)
	}
	q, _ := c.QueuedPushes(ctx, managed.AllOf(managed.TopicIs("q:1"), managed.EventIs("echo")))
	if !slices.Equal(refs(q), []string{"a", "b"}) {
		t.Fatalf("queued echo pushes %v", refs(q))
	}
	if ok, _ := c.PushQueued(ctx, managed.RefIs("b")); !ok {
		t.Fatal("b not queued")
	}
	if ok, _ := c.PushWaiting(ctx, managed.RefIs("b")); !ok {
		t.Fatal("b not waiting")
	}
	if ok, _ := c.PushInFlight(ctx, managed.RefIs("b")); ok {
		t.Fatal("b in flight before the join")
	}
	if ch, _ := c.QueuedChannels(ctx); !slices.Equal(ch, []string{"q:1", "q:2"}) {
		t.Fatalf("queued channels %v", ch)
	}
	if ok, _ := c.ChannelQueued(ctx, "q:1"); !ok {
		t.Fatal("q:1 not queued")
	}
	if n, err := c.DropQueuedPush(ctx, managed.RefIs("b")); n != 1 || err != nil {
		t.Fatalf("DropQueuedPush = %d, %v", n, err)
	}
	if n, _ := c.DropPush(ctx, managed.RefIs("d")); n != 1 {
		t.Fatalf("DropPush of a queued push = %d", n)
	}
	for _, want := range []string{"b", "d"} {
		if got := next[managed.PushCancelled](t, c); got.Push.Ref != want {
			t.Fatalf("cancelled %q, want %q", got.Push.Ref, want)
		}
	}
	close(joinGate)
	for _, want := range []string{"a", "c"} {
		if got := next[managed.PushOK](t, c); got.Push.Ref != want {
			t.Fatalf("ok %q, want %q", got.Push.Ref, want)
		}
	}
	conn, _ := srv.WaitConn(ctx, 1)
	if err := srv.Wait(ctx, func() bool { return len(conn.Joined()) == 2 }); err != nil {
		t.Fatal(err)
	}
	got := frames(conn)
	for _, f := range got {
		if f == `q:1 echo {"p":"b"}` || f == `q:2 echo {}` {
			t.Fatalf("dropped push on the wire: %q", got)
		}
	}
	if len(got) != 4 { // two joins, a, c
		t.Fatalf("frames %q", got)
	}
	if w, _ := c.PushWaiting(ctx, nil); w {
		t.Fatal("pushes still waiting")
	}
}

// In-flight and timed-out pushes are seen as such, and dropped: a dropped
// timed-out push is never retried, a dropped in-flight one reports no reply.
func TestInFlightAndTimedOutDropped(t *testing.T) {
	t.Parallel()
	joinGate, holdGate := make(chan struct{}), make(chan struct{})
	close(joinGate)
	srv := gated(t, joinGate, holdGate)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	if err := c.Send(ctx,
		managed.Push{Topic: "q:1", Event: "hold", Ref: "h"},
		managed.Push{Topic: "q:2", Event: "noreply", Ref: "t", Timeout: 50 * time.Millisecond, Retry: managed.Every(time.Hour)},
	); err != nil {
		t.Fatal(err)
	}
	to := next[managed.PushTimeout](t, c)
	if to.Push.Ref != "t" || !to.Retry || to.Attempt != 1 {
		t.Fatalf("timeout %+v", to)
	}
	if ok, _ := c.PushTimedOut(ctx, managed.RefIs("t")); !ok {
		t.Fatal("t not timed out")
	}
	if ps, _ := c.TimedOutPushes(ctx, nil); len(ps) != 1 || ps[0].Push.Ref != "t" || ps[0].State != managed.TimedOut {
		t.Fatalf("timed out %+v", ps)
	}
	if d, ok, _ := c.RetryIn(ctx, managed.RefIs("t")); !ok || d <= 0 || d > time.Hour {
		t.Fatalf("RetryIn = %v, %v", d, ok)
	}
	if ok, _ := c.PushWaiting(ctx, managed.RefIs("t")); !ok {
		t.Fatal("timed-out push not waiting")
	}
	if n, _ := c.DropQueuedPush(ctx, managed.RefIs("t")); n != 0 {
		t.Fatal("DropQueuedPush dropped a timed-out push")
	}
	if n, _ := c.DropTimedOutPush(ctx, managed.RefIs("t")); n != 1 {
		t.Fatal("DropTimedOutPush dropped nothing")
	}
	if ok, _ := c.PushWaiting(ctx, managed.RefIs("t")); ok {
		t.Fatal("dropped push still waiting")
	}

	conn, _ := srv.WaitConn(ctx, 1)
	if err := srv.Wait(ctx, func() bool { return slices.Contains(frames(conn), "q:1 hold {}") }); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.PushInFlight(ctx, managed.RefIs("h")); !ok {
		t.Fatal("h not in flight")
	}
	if n, _ := c.DropPush(ctx, managed.RefIs("h")); n != 1 {
		t.Fatal("DropPush dropped nothing")
	}
	nextWhere(t, c, func(e managed.PushCancelled) bool { return e.Push.Ref == "h" })
	close(holdGate)
	// The next push on q:1 goes out; h's late reply is not reported.
	if _, err := c.Push(ctx, managed.Push{Topic: "q:1", Event: "echo", Ref: "after"}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-c.Events():
			if ok, is := ev.(managed.PushOK); is && ok.Push.Ref == "h" {
				t.Fatal("dropped push reported ok")
			}
			continue
		default:
		}
		break
	}
}
