package managed_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// emitter is a server whose "emit" push makes the channel push each event
// named in {"events": [...]} with {"seq": n}, then "end"; "seq" counts per
// channel from 1. Joins are recorded.
type emitter struct {
	joins chan json.RawMessage
}

func (e emitter) handler() phxtest.Handler {
	return phxtest.HandlerFuncs{
		JoinFunc: func(_ context.Context, _ *phxtest.Channel, p json.RawMessage) (any, error) {
			select {
			case e.joins <- p:
			default:
			}
			return nil, nil
		},
		InFunc: func(_ context.Context, ch *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
			var req struct {
				Events []string `json:"events"`
				From   int      `json:"from"`
			}
			_ = json.Unmarshal(in.Payload, &req)
			for i, ev := range req.Events {
				_ = ch.Push(ev, map[string]int{"seq": req.From + i})
			}
			_ = ch.Push("end", map[string]int{})
			return phxtest.Reply("ok", nil)
		},
	}
}

func emitServer(t *testing.T) (*phxtest.Server, emitter) {
	e := emitter{joins: make(chan json.RawMessage, 16)}
	srv := phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"ev:*": e.handler()}})
	return srv, e
}

// emit asks the server for events on topic and returns the ones delivered.
func emit(t *testing.T, c *managed.Client, topic string, events ...string) []string {
	t.Helper()
	ctx := ctxFor(t)
	if _, err := c.Push(ctx, managed.Push{Topic: topic, Event: "emit", Payload: map[string]any{"events": events}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ev := nextWhere(t, c, func(e managed.ChannelEvent) bool { return e.Topic == topic })
		if ev.Event == "end" {
			return got
		}
		got = append(got, ev.Event)
	}
}

// Only subscribed events are delivered, and the set follows AddEvents and
// DropEvents at run time.
func TestEventFilter(t *testing.T) {
	t.Parallel()
	srv, _ := emitServer(t)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	if err := c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "ev:1", Events: []string{"a", "end"}}); err != nil {
		t.Fatal(err)
	}
	if got := emit(t, c, "ev:1", "a", "b", "c", "a"); !slices.Equal(got, []string{"a", "a"}) {
		t.Fatalf("delivered %v", got)
	}
	_ = c.AddEvents(ctx, "ev:1", "b")
	if got := emit(t, c, "ev:1", "a", "b", "c"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after AddEvents: %v", got)
	}
	_ = c.DropEvents(ctx, "ev:1", "a")
	if got := emit(t, c, "ev:1", "a", "b", "c"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after DropEvents: %v", got)
	}
}

// The join payload is computed on each join and rejoin; the join and leave
// timeouts apply; defaults apply where nothing is set.
func TestJoinConfig(t *testing.T) {
	t.Parallel()
	srv, e := emitServer(t)
	var n atomic.Int32
	c := newClient(t, srv, &managed.Config{Socket: phx.Config{
		Rejoin: func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) },
	}})
	ctx := ctxFor(t)
	if err := c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "ev:1",
		Payload: func() any { return map[string]int32{"n": n.Add(1)} }}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, "ev:1"); err != nil {
		t.Fatal(err)
	}
	if p := <-e.joins; string(p) != `{"n":1}` {
		t.Fatalf("first join payload %s", p)
	}
	conn, _ := srv.WaitConn(ctx, 1)
	if err := conn.CrashChannel(ctx, "ev:1"); err != nil {
		t.Fatal(err)
	}
	if ev := next[managed.ChannelErrored](t, c); ev.Topic != "ev:1" {
		t.Fatalf("errored %+v", ev)
	}
	if ev := next[managed.ChannelJoined](t, c); ev.Topic != "ev:1" || !ev.Rejoin {
		t.Fatalf("rejoined %+v", ev)
	}
	if p := <-e.joins; string(p) != `{"n":2}` {
		t.Fatalf("rejoin payload %s", p)
	}
	// A static payload, and the default {} for a topic with no config.
	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "ev:2", Payload: map[string]string{"k": "v"}})
	if _, err := c.Join(ctx, "ev:2"); err != nil {
		t.Fatal(err)
	}
	if p := <-e.joins; string(p) != `{"k":"v"}` {
		t.Fatalf("static payload %s", p)
	}
	if _, err := c.Join(ctx, "ev:3"); err != nil {
		t.Fatal(err)
	}
	if p := <-e.joins; string(p) != `{}` {
		t.Fatalf("default payload %s", p)
	}
	if err := c.SetLeaveConfig(ctx, managed.LeaveConfig{Topic: "ev:2", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := c.Leave(ctx, "ev:2"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.ChannelJoined(ctx, "ev:2"); ok {
		t.Fatal("ev:2 still joined")
	}
}

func TestJoinTimeout(t *testing.T) {
	t.Parallel()
	joinGate := make(chan struct{})
	srv := gated(t, joinGate, nil)
	t.Cleanup(func() { close(joinGate) })
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "q:1", Timeout: 50 * time.Millisecond})
	start := time.Now()
	_, err := c.Join(ctx, "q:1")
	if !errors.Is(err, phx.ErrTimeout) {
		t.Fatalf("join = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("join timed out after %v", d)
	}
	if ev := next[managed.ChannelJoinTimeout](t, c); ev.Topic != "q:1" {
		t.Fatalf("timeout %+v", ev)
	}
}

// One call joins, leaves and pushes; LeaveAll leaves everything.
func TestBatch(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	if err := c.JoinAll(ctx, "room:1", "room:2"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		next[managed.ChannelJoined](t, c)
	}
	err := c.Batch(ctx, managed.Batch{
		JoinConfigs: []managed.JoinConfig{{Topic: "room:3", Events: []string{"new_msg"}}},
		Join:        []string{"room:3"},
		Leave:       []string{"room:1"},
		Push: []managed.Push{
			{Topic: "room:2", Event: "echo", Ref: "p2"},
			{Topic: "room:3", Event: "new_msg", Payload: map[string]string{"body": "hi"}, Ref: "p3"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var left, event bool
	oks := map[string]bool{}
	collect(t, c, func(ev managed.Event) bool {
		switch ev := ev.(type) {
		case managed.ChannelLeft:
			left = ev.Topic == "room:1" && ev.Err == nil
		case managed.ChannelEvent:
			event = ev.Topic == "room:3" && string(ev.Payload) == `{"body":"hi"}`
		case managed.PushOK:
			oks[ev.Push.Ref] = true
		}
		return left && event && len(oks) == 2
	})
	if j, _ := c.JoinedChannels(ctx); !slices.Equal(j, []string{"room:2", "room:3"}) {
		t.Fatalf("joined %v", j)
	}
	if err := c.LeaveAll(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		next[managed.ChannelLeft](t, c)
	}
	if j, _ := c.JoinedChannels(ctx); len(j) != 0 {
		t.Fatalf("joined after LeaveAll %v", j)
	}
	if err := c.Send(ctx, managed.Push{Topic: "room:1"}); !errors.Is(err, managed.ErrInvalid) {
		t.Fatalf("push without event = %v", err)
	}
}

func TestQueries(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, &managed.Config{Socket: phx.Config{
		Reconnect: func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) },
	}})
	ctx := ctxFor(t)
	if st, _ := c.State(ctx); st != managed.Disconnected || st.String() != "disconnected" {
		t.Fatalf("state %v", st)
	}
	if c.Endpoint() != srv.URL() {
		t.Fatalf("endpoint %q", c.Endpoint())
	}
	if p := c.Protocol(); p != (managed.Protocol{Transport: "websocket", Serializer: "2.0.0"}) {
		t.Fatalf("protocol %+v", p)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	next[managed.SocketOpened](t, c)
	if ok, _ := c.Connected(ctx); !ok {
		t.Fatal("not connected")
	}
	if st, _ := c.State(ctx); st.String() != "connected" {
		t.Fatalf("state %v", st)
	}
	if r, _ := c.DisconnectReason(ctx); r != nil {
		t.Fatalf("reason %v before any disconnect", r)
	}
	if _, err := c.Join(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	closed := next[managed.SocketClosed](t, c)
	if closed.Code != 1001 || !closed.Reconnect {
		t.Fatalf("closed %+v", closed)
	}
	if r, _ := c.DisconnectReason(ctx); phx.CloseCode(r) != 1001 {
		t.Fatalf("reason %v", r)
	}
	nextWhere(t, c, func(e managed.ChannelJoined) bool { return e.Rejoin })
	other := managed.New(ctx, "ws://u:pw@example.com/socket?token=s3cret", nil)
	defer other.Close()
	if e := other.Endpoint(); e != "ws://example.com/socket" {
		t.Fatalf("endpoint %q shows secrets", e)
	}
	if got := managed.TopicParts("room:lobby:1"); !slices.Equal(got, []string{"room", "lobby", "1"}) {
		t.Fatalf("parts %q", got)
	}
}
