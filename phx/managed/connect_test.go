package managed_test

import (
	"slices"
	"testing"

	"github.com/phxgo/phxgo/phx/managed"
)

// A push made while the socket is down connects, joins, and is sent once,
// after the join; pushes queued together go out in order.
func TestPushWhileDownSentOnceAfterJoin(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	var ps []managed.Push
	for _, b := range []string{"1", "2", "3"} {
		ps = append(ps, managed.Push{Topic: "room:a", Event: "echo", Payload: map[string]string{"n": b}, Ref: b})
	}
	if err := c.Send(ctx, ps...); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1", "2", "3"} {
		ok := next[managed.PushOK](t, c)
		if ok.Push.Ref != want || string(ok.Response) != `{"n":"`+want+`"}` {
			t.Fatalf("reply %+v, want ref %s", ok, want)
		}
	}
	conn, err := srv.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := frames(conn)
	want := []string{`room:a phx_join {}`, `room:a echo {"n":"1"}`, `room:a echo {"n":"2"}`, `room:a echo {"n":"3"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
	// Joined and connected: the next push goes out at once.
	if _, err := c.Push(ctx, managed.Push{Topic: "room:a", Event: "echo"}); err != nil {
		t.Fatal(err)
	}
	if n := len(frames(conn)); n != 5 {
		t.Fatalf("%d frames, want 5", n)
	}
}

// Explicit Connect and Join; joins asked for before the socket opens wait
// for it.
func TestJoinsQueuedUntilConnect(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	if err := c.JoinAll(ctx, "room:1", "room:2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		seen[next[managed.ChannelJoined](t, c).Topic] = true
	}
	resp, err := c.Join(ctx, "room:3")
	if err != nil || string(resp) != `{"joined":"room:3","params":{}}` {
		t.Fatalf("join = %s, %v", resp, err)
	}
	joined, err := c.JoinedChannels(ctx)
	if err != nil || !slices.Equal(joined, []string{"room:1", "room:2", "room:3"}) {
		t.Fatalf("joined %v, %v", joined, err)
	}
	if _, err := c.Join(ctx, "room:secret"); err == nil {
		t.Fatal("join room:secret succeeded")
	}
	je := next[managed.ChannelJoinError](t, c)
	if je.Topic != "room:secret" || string(je.Response) != `{"reason":"unauthorized"}` {
		t.Fatalf("join error %+v", je)
	}
}

// A join asked for while the topic is being left joins it again after the
// leave, on a new channel; pushes made meanwhile go to the new channel.
func TestJoinWhileLeaving(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	if _, err := c.Join(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Batch(ctx, managed.Batch{Leave: []string{"room:1"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Batch(ctx, managed.Batch{Join: []string{"room:1"},
		Push: []managed.Push{{Topic: "room:1", Event: "echo", Ref: "after"}}}); err != nil {
		t.Fatal(err)
	}
	var left, rejoined, ok bool
	collect(t, c, func(ev managed.Event) bool {
		switch ev := ev.(type) {
		case managed.ChannelLeft:
			left = true
		case managed.ChannelJoined:
			rejoined = left
		case managed.PushOK:
			ok = rejoined && ev.Push.Ref == "after"
		case managed.PushFailed:
			t.Fatalf("push failed: %+v", ev)
		}
		return ok
	})
	if j, _ := c.ChannelJoined(ctx, "room:1"); !j {
		t.Fatal("room:1 not joined")
	}
}
