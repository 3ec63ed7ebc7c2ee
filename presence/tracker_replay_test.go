package presence_test

import (
	"testing"

	"github.com/cenkalti/backoff/v4"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/presence"
)

// TestTrackerReplayThreeUsers plays the actions noted in
// testdata/phoenix/presence_three_users.jsonl against phxtest with real
// client sockets for u1, u2 (two sockets) and u3, and follows them with a
// Tracker on an observer socket. After every Sync its list must be the one
// the recorded frames fold into (the same fold TestReplayThreeUsers checks
// against the notes), and the last one is the recording's final state.
func TestTrackerReplayThreeUsers(t *testing.T) {
	t.Parallel()
	var want []string
	m := presence.NewMachine(presence.Options{})
	for _, in := range recordedFrames(t) {
		evs, err := m.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			want = append(want, listing(t, m.State()))
		}
	}

	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	tr, _, _ := observe(t, ctx, srv, nil)
	step := 0
	check := func(action string) {
		t.Helper()
		if step > 0 { // observe has waited for the first Sync already
			untilSync(t, ctx, tr)
		}
		if step >= len(want) {
			t.Fatalf("%s: more syncs than the recording's %d", action, len(want))
		}
		if got := listing(t, tr.State()); got != want[step] {
			t.Errorf("after %s: %q, want %q", action, got, want[step])
		}
		step++
	}
	check("observer joins with device monitor")

	u1, u1ch := join(t, ctx, srv, "u1", "laptop")
	check("u1 joins with device laptop")
	u2, u2ch := join(t, ctx, srv, "u2", "phone")
	check("u2 joins with device phone")
	// u3's socket must stay down once dropped, as a closed browser tab does.
	u3 := dial(t, ctx, srv, "u3", phx.Config{Reconnect: func() backoff.BackOff { return &backoff.StopBackOff{} }})
	if _, err := u3.Channel(room, map[string]any{"device": "tablet"}).Join(ctx); err != nil {
		t.Fatal(err)
	}
	check("u3 joins with device tablet")
	u2b, _ := join(t, ctx, srv, "u2", "desktop")
	check("u2 joins a second time from another socket with device desktop")
	if _, err := u2ch.Push(ctx, "update_meta", map[string]any{"status": "away"}); err != nil {
		t.Fatal(err)
	}
	check("u2 (first socket, device phone) pushes update_meta")
	if err := u1ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	check("u1 leaves (phx_leave)")
	for _, c := range srv.Conns() {
		if c.Params().Get("user") == "u3" {
			c.Drop()
		}
	}
	<-u3.Done()
	check("u3's socket is closed abruptly")
	_ = u2b.Close()
	check("u2b closes its websocket normally")
	_ = u2.Close()
	check("u2 closes its websocket normally")
	_ = u1.Close()
	if step != len(want) {
		t.Errorf("%d syncs, the recording has %d", step, len(want))
	}
	// u1 had left already: closing its socket changes nothing, and the
	// list is the recording's final state and the server's.
	if err := srv.WaitActive(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, tr.State()); got != want[len(want)-1] {
		t.Errorf("final list %q, want %q", got, want[len(want)-1])
	}
	sameAsServer(t, srv, tr)
}
