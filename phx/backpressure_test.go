package phx_test

import (
	"context"
	"encoding/json"
	"flag"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
)

// The sizes of the backpressure runs. make test runs them small; make
// backpressure runs the full shapes (1,000,000 × 100 B at full speed;
// 100,000 with a 1 s stall every 10,000) and prints the figures.
var (
	bpBlast = flag.Int("bp.blast", 0, "messages of the full-speed blast (0: 20,000, 5,000 with -short)")
	bpStall = flag.Int("bp.stalled", 0, "messages of the stalled run (0: 10,000, 4,000 with -short)")
	bpEvery = flag.Int("bp.every", 0, "the stalled consumer stops every this many messages (0: a third of the run)")
	bpPause = flag.Duration("bp.pause", 0, "how long the stalled consumer stops (0: 1.2 s)")
)

func size(v, full, short int) int {
	switch {
	case v > 0:
		return v
	case testing.Short():
		return short
	}
	return full
}

// blastRun joins a demo room with default settings, has the server push n
// messages of 100 bytes as fast as it can (demo "blast"), and consumes them
// with a plain range loop over sub.C() that decodes each payload into a
// map, calling pause(i) after message i. It checks that every message
// arrived, in order, and returns the time taken.
func blastRun(t *testing.T, cfg *phx.Config, n int, pause func(i int)) (time.Duration, *phx.Socket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	srv := demo(t)
	sock, err := phx.Connect(ctx, srv.URL(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	ch := sock.Channel("room:blast", nil)
	sub := mustSub(t, ch, phx.Events("blast"))
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pushed := make(chan error, 1)
	go func() {
		_, err := ch.Push(ctx, "blast", map[string]int{"n": n, "size": 100})
		pushed <- err
	}()
	got := 0
	// A message that never comes (lost across a reconnect) fails the run
	// with the socket's figures instead of hanging it.
	idle := time.NewTimer(time.Minute)
	defer idle.Stop()
	for {
		var m phx.Message
		select {
		case m = <-sub.C():
		case <-idle.C:
			t.Fatalf("no message for a minute after %d of %d (stats %+v, state %v, sub err %v)", got, n, sock.Stats(), sock.State(), sub.Err())
		}
		idle.Reset(time.Minute)
		if m.Event == "" {
			break // closed
		}
		var v map[string]any
		if err := json.Unmarshal(m.Payload, &v); err != nil {
			t.Fatal(err)
		}
		i, _ := v["i"].(float64)
		if int(i) != got+1 {
			t.Fatalf("message %d after %d: lost %d (stats %+v, dropped %d)", int(i), got, int(i)-got-1, sock.Stats(), sub.Dropped())
		}
		got++
		if pause != nil {
			pause(got)
		}
		if got == n {
			break
		}
	}
	if got != n {
		t.Fatalf("got %d of %d: %v", got, n, sub.Err())
	}
	d := time.Since(start)
	if err := <-pushed; err != nil {
		t.Fatalf("blast push: %v", err)
	}
	if st := sock.Stats(); st.Dropped != 0 || st.Overflowed != 0 || sub.Dropped() != 0 {
		t.Fatalf("stats %+v, dropped %d", st, sub.Dropped())
	}
	return d, sock
}

// TestBackpressureFullSpeed: a consumer slower than the server loses
// nothing with default settings; the connection is read at its pace.
func TestBackpressureFullSpeed(t *testing.T) {
	t.Parallel()
	n := size(*bpBlast, 20_000, 5_000)
	d, _ := blastRun(t, nil, n, nil)
	t.Logf("backpressure: full speed: %d of %d messages in %v (%.0f msg/s)", n, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
}

// TestBackpressureStalledConsumer: a consumer that stops for a while every
// so often loses nothing, and its stalls, though they leave heartbeat
// replies unread for longer than the heartbeat timeout, are not taken for
// a dead server.
func TestBackpressureStalledConsumer(t *testing.T) {
	t.Parallel()
	n := size(*bpStall, 10_000, 4_000)
	every := *bpEvery
	if every <= 0 {
		every = n / 3
	}
	pause := *bpPause
	if pause <= 0 {
		pause = 1200 * time.Millisecond
	}
	// A stall leaves the heartbeat reply unread for longer than the
	// heartbeat timeout. Not much longer: the server answers behind its
	// queue of pushes, which a loaded machine may take a while to send.
	cfg := &phx.Config{HeartbeatInterval: pause * 2 / 5}
	stalls := 0
	d, sock := blastRun(t, cfg, n, func(i int) {
		if i%every == 0 && i < n {
			stalls++
			time.Sleep(pause)
		}
	})
	st := sock.Stats()
	if st.Reconnects != 0 {
		t.Fatalf("the client's own stall caused a reconnect: %+v", st)
	}
	if sock.State() != phx.StateConnected {
		t.Fatal(sock.State())
	}
	t.Logf("backpressure: stalled: %d of %d messages in %v with %d stalls of %v; heartbeat %v; reconnects %d",
		n, n, d.Round(time.Millisecond), stalls, pause, cfg.HeartbeatInterval, st.Reconnects)
}
