package phx_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// scripted is a channel whose pushes are answered by their event: ok,
// error, noreply (never answered) and crash.
var scripted = phxtest.HandlerFuncs{
	JoinFunc: func(context.Context, *phxtest.Channel, json.RawMessage) (any, error) { return nil, nil },
	InFunc: func(_ context.Context, _ *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
		switch in.Event {
		case "ok":
			return phxtest.Reply("ok", map[string]int{"n": 1})
		case "error":
			return phxtest.Reply("error", map[string]string{"reason": "nope"})
		case "crash":
			return phxtest.Crash()
		}
		return phxtest.NoReply()
	},
}

func scriptedServer(t *testing.T) *phxtest.Server {
	return phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"s:*": scripted}})
}

// sentBytes sums the frames the server wrote on c.
func sentBytes(c *phxtest.Conn) (n, bytes uint64) {
	for _, f := range c.Sent() {
		n++
		bytes += uint64(len(f.Data))
	}
	return n, bytes
}

func TestStatsScriptedSession(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := scriptedServer(t)
	sock := dial(t, srv, &phx.Config{HeartbeatInterval: -1})
	ch := sock.Channel("s:1", nil)
	sub, err := ch.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "ok", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "error", nil); err == nil {
		t.Fatal("error push: no error")
	}
	if _, err := ch.Push(ctx, "noreply", nil, phx.WithTimeout(20*time.Millisecond)); !errors.Is(err, phx.ErrTimeout) {
		t.Fatalf("noreply push: %v", err)
	}
	st := sock.Stats()
	c1, _ := srv.WaitConn(ctx, 1)
	if n := uint64(len(c1.Received())); st.Sent != n || st.Sent != 4 {
		t.Fatalf("sent %d frames, server received %d", st.Sent, n)
	}
	// Every frame the server wrote answered a call that has returned.
	if n, b := sentBytes(c1); st.Received != n || st.BytesReceived != b {
		t.Fatalf("received %d frames %d bytes, server sent %d, %d", st.Received, st.BytesReceived, n, b)
	}
	if st.BytesSent == 0 {
		t.Fatal("no bytes sent")
	}
	want := phx.Stats{PushesSent: 3, PushesReplied: 1, PushesErrored: 1, PushesTimedOut: 1, Joins: 1, Channels: 1, Subscriptions: 1}
	got := phx.Stats{PushesSent: st.PushesSent, PushesReplied: st.PushesReplied, PushesErrored: st.PushesErrored,
		PushesTimedOut: st.PushesTimedOut, Joins: st.Joins, Channels: st.Channels, Subscriptions: st.Subscriptions}
	if got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if h := st.PushLatency; h.Count != 2 || h.Sum <= 0 || h.Mean() <= 0 || h.Quantile(1) < h.Mean() {
		t.Fatalf("push latency %+v", h)
	}

	// A crash on the server: phx_error, then a rejoin.
	if _, err := ch.Push(ctx, "crash", nil); !errors.Is(err, phx.ErrDisconnected) {
		t.Fatalf("crash push: %v", err)
	}
	waitStatus[phx.Joined](t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "s:1" && sock.Stats().Rejoins == 1 })
	// A dropped connection: a reconnect, counted by cause, and a rejoin.
	c1.Drop()
	waitStatus[phx.Joined](t, ctx, sock, func(j phx.Joined) bool { return sock.Stats().Rejoins == 2 })
	st = sock.Stats()
	if st.Reconnects != 1 || st.ReconnectsBy[phx.CauseError] != 1 || st.Joins != 1 || st.Channels != 1 {
		t.Fatalf("after the drop: reconnects %d by cause %v joins %d channels %d", st.Reconnects, st.ReconnectsBy, st.Joins, st.Channels)
	}
	sub.Close()
	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if st := sock.Stats(); st.Channels != 0 || st.Subscriptions != 0 {
		t.Fatalf("after leave: channels %d subscriptions %d", st.Channels, st.Subscriptions)
	}
}

func TestStatsHeartbeatRTT(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), &phx.Config{HeartbeatInterval: 5 * time.Millisecond, HeartbeatTimeout: 5 * time.Second})
	tap, err := sock.Frames(ctx, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	// Three heartbeat replies read, then the next heartbeat sent: the
	// third round trip has been recorded by then.
	for replies := 0; replies < 3; {
		if nextFrame(t, ctx, tap).Dir == phx.Received {
			replies++
		}
	}
	for nextFrame(t, ctx, tap).Dir != phx.Sent {
	}
	st := sock.Stats()
	if st.HeartbeatRTT.Count < 3 || st.HeartbeatLast <= 0 || st.HeartbeatMean <= 0 {
		t.Fatalf("heartbeat last %v mean %v histogram %+v", st.HeartbeatLast, st.HeartbeatMean, st.HeartbeatRTT)
	}
}

func TestStatsAllocatesNothing(t *testing.T) {
	sock := dial(t, demo(t), nil)
	var st phx.Stats
	if n := testing.AllocsPerRun(100, func() { st = sock.Stats() }); n != 0 {
		t.Fatalf("Stats allocates %v times", n)
	}
	_ = st
}

func TestStatsStatusDropped(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	// Nobody reads Status: of Connected, Joined, ChannelEnded and Closed,
	// a buffer of one keeps the last and counts the three before it.
	sock := dial(t, demo(t), &phx.Config{StatusBuffer: 1, HeartbeatInterval: -1})
	ch := sock.Channel("echo:sd", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	if n := sock.Stats().StatusDropped; n != 3 {
		t.Fatalf("status dropped %d, want 3", n)
	}
	var kept []phx.Status
	for st := range sock.Status() {
		kept = append(kept, st)
	}
	if len(kept) != 1 || kept[0] != (phx.Closed{}) {
		t.Fatalf("kept %v", kept)
	}
}
