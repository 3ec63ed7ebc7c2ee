//go:build go1.25

package managed_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
)

// drain takes every event the stream holds once the bubble is idle.
func drain(c *managed.Client) []managed.Event {
	synctest.Wait()
	var out []managed.Event
	for {
		select {
		case ev := <-c.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

func fakeClient(t *testing.T, tr *fakeTransport) *managed.Client {
	c := managed.New(context.Background(), "ws://fake/socket", &managed.Config{
		Socket: phx.Config{Transport: tr, HeartbeatInterval: -1},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func timeouts(evs []managed.Event) []managed.PushTimeout {
	var out []managed.PushTimeout
	for _, ev := range evs {
		if e, ok := ev.(managed.PushTimeout); ok {
			out = append(out, e)
		}
	}
	return out
}

// Backoff([1s, 5s], none): the push is tried three times (two retries),
// 1 s then 5 s after a timeout, then reported dropped.
func TestBackoffRetriesTwiceThenDrops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tr := &fakeTransport{}
		c := fakeClient(t, tr)
		ctx := context.Background()
		start := time.Now()
		res := make(chan error, 1)
		go func() {
			_, err := c.Push(ctx, managed.Push{Topic: "room:a", Event: "noreply", Timeout: time.Second, Ref: "r",
				Retry: managed.Backoff([]time.Duration{time.Second, 5 * time.Second}, 0)})
			res <- err
		}()
		// tries at 0 s, 2 s (1 s timeout + 1 s), 8 s (3 s + 5 s); the last times out at 9 s
		for _, step := range []struct {
			at time.Duration
			n  int
		}{{0, 1}, {2*time.Second - time.Millisecond, 1}, {2 * time.Second, 2},
			{8*time.Second - time.Millisecond, 2}, {8 * time.Second, 3}} {
			time.Sleep(step.at - time.Since(start))
			synctest.Wait()
			if n := len(tr.pushes()); n != step.n {
				t.Fatalf("%d pushes at %v, want %d", n, step.at, step.n)
			}
		}
		time.Sleep(9*time.Second - time.Since(start))
		evs := drain(c)
		to := timeouts(evs)
		if len(to) != 3 {
			t.Fatalf("timeouts %+v", to)
		}
		want := []struct {
			retry bool
			at    time.Duration
		}{{true, 2 * time.Second}, {true, 8 * time.Second}, {false, 0}}
		for i, w := range want {
			if to[i].Attempt != i+1 || to[i].Retry != w.retry || (w.retry && to[i].RetryAt.Sub(start) != w.at) {
				t.Fatalf("timeout %d: %+v, want retry %v at %v", i, to[i], w.retry, w.at)
			}
		}
		if n := len(tr.pushes()); n != 3 {
			t.Fatalf("%d pushes on the wire, want 3", n)
		}
		if err := <-res; !errors.Is(err, phx.ErrTimeout) {
			t.Fatalf("Push = %v, want ErrTimeout", err)
		}
		// Nothing more, ever.
		time.Sleep(time.Minute)
		if n := len(tr.pushes()); n != 3 {
			t.Fatalf("%d pushes after a minute", n)
		}
		if w, _ := c.PushWaiting(ctx, managed.RefIs("r")); w {
			t.Fatal("dropped push still waiting")
		}
	})
}

// The countdown to a retry decreases with time and hits zero at the retry,
// when the push is in flight again.
func TestRetryCountdown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tr := &fakeTransport{}
		c := fakeClient(t, tr)
		ctx := context.Background()
		if err := c.Send(ctx, managed.Push{Topic: "room:a", Event: "noreply", Timeout: time.Second,
			Retry: managed.Every(3 * time.Second), Ref: "x"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, ok, _ := c.RetryIn(ctx, managed.RefIs("x")); ok {
			t.Fatal("countdown before the timeout")
		}
		if in, _ := c.PushInFlight(ctx, managed.RefIs("x")); !in {
			t.Fatal("push not in flight")
		}
		time.Sleep(time.Second) // the timeout: retry at 4 s
		for _, step := range []struct{ sleep, left time.Duration }{
			{0, 3 * time.Second}, {time.Second, 2 * time.Second}, {time.Second, time.Second},
			{999 * time.Millisecond, time.Millisecond}} {
			time.Sleep(step.sleep)
			synctest.Wait()
			d, ok, err := c.RetryIn(ctx, managed.RefIs("x"))
			if err != nil || !ok || d != step.left {
				t.Fatalf("RetryIn = %v, %v, %v; want %v", d, ok, err, step.left)
			}
			if n := len(tr.pushes()); n != 1 {
				t.Fatalf("%d pushes before the retry", n)
			}
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if _, ok, _ := c.RetryIn(ctx, managed.RefIs("x")); ok {
			t.Fatal("countdown still running at the retry")
		}
		if in, _ := c.PushInFlight(ctx, managed.RefIs("x")); !in {
			t.Fatal("retried push not in flight")
		}
		if n := len(tr.pushes()); n != 2 {
			t.Fatalf("%d pushes after the retry, want 2", n)
		}
	})
}

// Join and leave timeouts from the topic's configs, to the millisecond.
func TestJoinAndLeaveTimeouts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tr := &fakeTransport{silent: map[string]bool{"room:quiet": true}, mute: map[string]bool{"room:mute": true}}
		c := fakeClient(t, tr)
		ctx := context.Background()
		_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "room:quiet", Timeout: 2 * time.Second})
		_ = c.SetLeaveConfig(ctx, managed.LeaveConfig{Topic: "room:mute", Timeout: 3 * time.Second})
		start := time.Now()
		_ = c.JoinAll(ctx, "room:quiet")
		time.Sleep(2*time.Second - time.Millisecond)
		for _, ev := range drain(c) {
			if _, ok := ev.(managed.ChannelJoinTimeout); ok {
				t.Fatal("join timed out early")
			}
		}
		time.Sleep(time.Millisecond)
		var timedOut bool
		for _, ev := range drain(c) {
			_, ok := ev.(managed.ChannelJoinTimeout)
			timedOut = timedOut || ok
		}
		if !timedOut {
			t.Fatalf("no join timeout at %v", time.Since(start))
		}
		if _, err := c.Join(ctx, "room:mute"); err != nil {
			t.Fatal(err)
		}
		left := make(chan time.Duration, 1)
		go func() {
			t0 := time.Now()
			_ = c.Leave(ctx, "room:mute")
			left <- time.Since(t0)
		}()
		synctest.Wait()
		if d := <-left; d != 3*time.Second {
			t.Fatalf("leave took %v, want 3s", d)
		}
		if ok, _ := c.ChannelJoined(ctx, "room:mute"); ok {
			t.Fatal("still joined")
		}
	})
}
