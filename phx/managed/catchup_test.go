package managed_test

import (
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
)

// CatchUp remembers the last seq seen and sends it with every later join:
// the rejoin after a crash, and the join after a Disconnect and Connect.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	srv, e := emitServer(t)
	c := newClient(t, srv, &managed.Config{Socket: phx.Config{
		Rejoin: func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) },
	}})
	ctx := ctxFor(t)
	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "ev:1", Events: []string{"a", "end"},
		Payload: map[string]string{"k": "v"}, CatchUp: &managed.CatchUp{Field: "seq"}})
	if _, err := c.Join(ctx, "ev:1"); err != nil {
		t.Fatal(err)
	}
	if p := <-e.joins; string(p) != `{"k":"v"}` {
		t.Fatalf("first join %s", p)
	}
	// seq 7, 8, 9; "end" carries none and leaves the position alone
	if _, err := c.Push(ctx, managed.Push{Topic: "ev:1", Event: "emit",
		Payload: map[string]any{"events": []string{"a", "b", "a"}, "from": 7}}); err != nil {
		t.Fatal(err)
	}
	nextWhere(t, c, func(e managed.ChannelEvent) bool { return e.Event == "end" })
	conn, _ := srv.WaitConn(ctx, 1)
	if err := conn.CrashChannel(ctx, "ev:1"); err != nil {
		t.Fatal(err)
	}
	if p := <-e.joins; string(p) != `{"k":"v","last_seq":9}` {
		t.Fatalf("rejoin %s", p)
	}
	nextWhere(t, c, func(e managed.ChannelJoined) bool { return e.Rejoin })
	if _, err := c.Push(ctx, managed.Push{Topic: "ev:1", Event: "emit",
		Payload: map[string]any{"events": []string{"a"}, "from": 10}}); err != nil {
		t.Fatal(err)
	}
	nextWhere(t, c, func(e managed.ChannelEvent) bool { return e.Event == "end" })
	_ = c.Disconnect(ctx, 0)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if p := <-e.joins; string(p) != `{"k":"v","last_seq":10}` {
		t.Fatalf("join after reconnect %s", p)
	}
}
