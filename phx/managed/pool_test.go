package managed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/phx/phxtest"
)

func echoServer(t *testing.T, maxChannels int) *phxtest.Server {
	return phxtest.NewServer(t, phxtest.Config{
		Channels:    map[string]phxtest.Handler{"t:*": phxtest.Echo{}},
		MaxChannels: maxChannels,
	})
}

// 10,000 topics through one client against a server that allows 100
// channels per socket: the client opens 100 sockets, joins every topic,
// pushes to each and receives a broadcast on each; leaving them all closes
// every socket but one. Under the race detector (which slows the server and
// the sockets about tenfold) and with -short it runs 2,000 topics on 20
// sockets.
func TestPool10000Topics(t *testing.T) {
	t.Parallel()
	n := 10000
	if testing.Short() || raceEnabled {
		n = 2000
	}
	srv := echoServer(t, 0) // Phoenix's default: 100
	c := newClient(t, srv, &managed.Config{Buffer: 4 * n})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("t:%d", i)
		_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: topics[i], Events: []string{"b"}})
	}
	if err := c.JoinAll(ctx, topics...); err != nil {
		t.Fatal(err)
	}
	joined := map[string]bool{}
	collect(t, c, func(ev managed.Event) bool {
		switch ev := ev.(type) {
		case managed.ChannelJoined:
			joined[ev.Topic] = true
		case managed.ChannelJoinError:
			t.Fatalf("join refused: %+v", ev)
		}
		return len(joined) == n
	})
	tJoin := time.Since(start)
	if a := srv.Stats().Active; a != n/100 {
		t.Fatalf("%d sockets for %d topics, want %d", a, n, n/100)
	}
	for _, conn := range srv.Conns() {
		if j := len(conn.Joined()); j != 100 {
			t.Fatalf("a socket holds %d channels", j)
		}
	}

	start = time.Now()
	ps := make([]managed.Push, n)
	for i, tp := range topics {
		ps[i] = managed.Push{Topic: tp, Event: "echo", Payload: map[string]int{"i": i}, Ref: tp}
	}
	if err := c.Send(ctx, ps...); err != nil {
		t.Fatal(err)
	}
	for i, tp := range topics {
		if err := srv.Broadcast(tp, "b", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	oks, events := map[string]bool{}, map[string]bool{}
	collect(t, c, func(ev managed.Event) bool {
		switch ev := ev.(type) {
		case managed.PushOK:
			var p struct{ I int }
			if json.Unmarshal(ev.Response, &p) != nil || topics[p.I] != ev.Push.Topic {
				t.Fatalf("reply %+v", ev)
			}
			oks[ev.Push.Ref] = true
		case managed.ChannelEvent:
			events[ev.Topic] = true
		case managed.PushTimeout, managed.PushFailed, managed.PushError:
			t.Fatalf("push failed: %+v", ev)
		}
		return len(oks) == n && len(events) == n
	})
	tPush := time.Since(start)

	start = time.Now()
	if err := c.LeaveAll(ctx); err != nil {
		t.Fatal(err)
	}
	left := 0
	collect(t, c, func(ev managed.Event) bool {
		if _, ok := ev.(managed.ChannelLeft); ok {
			left++
		}
		return left == n
	})
	if err := srv.WaitActive(ctx, 1); err != nil {
		t.Fatalf("sockets after leaving everything: %d", srv.Stats().Active)
	}
	t.Logf("%d topics on %d sockets: joined in %v, %d pushes and %d broadcasts in %v, left in %v",
		n, n/100, tJoin.Round(time.Millisecond), n, n, tPush.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// A server whose limit is lower than the client's per-socket cap refuses
// the extra joins with "too many channels": the client takes them to
// another socket.
func TestPoolServerLimitLowerThanCap(t *testing.T) {
	t.Parallel()
	srv := echoServer(t, 10)
	c := newClient(t, srv, &managed.Config{MaxChannelsPerSocket: 15})
	ctx := ctxFor(t)
	var topics []string
	for i := range 35 {
		topics = append(topics, fmt.Sprintf("t:%d", i))
	}
	if err := c.JoinAll(ctx, topics...); err != nil {
		t.Fatal(err)
	}
	joined := map[string]bool{}
	collect(t, c, func(ev managed.Event) bool {
		switch ev := ev.(type) {
		case managed.ChannelJoined:
			joined[ev.Topic] = true
		case managed.ChannelJoinError:
			t.Fatalf("join refused: %+v", ev)
		}
		return len(joined) == len(topics)
	})
	total := 0
	for _, conn := range srv.Conns() {
		if j := len(conn.Joined()); j > 10 {
			t.Fatalf("a socket holds %d channels", j)
		}
		total += len(conn.Joined())
	}
	if total != len(topics) {
		t.Fatalf("%d channels joined on the server, want %d", total, len(topics))
	}
}
