package phx_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// schedule is a reconnect backoff walking a list of delays, repeating the
// last; the delays the socket waits are read from its Reconnecting events.
type schedule struct {
	d []time.Duration
	i int
}

func (s *schedule) NextBackOff() time.Duration {
	d := s.d[min(s.i, len(s.d)-1)]
	s.i++
	return d
}

func (s *schedule) Reset() { s.i = 0 }

// A server that accepts connections and fails them at once (drops them
// after the upgrade or the session's creation, or fails the first frame the
// client sends) must not reset the reconnect backoff: the delays follow the
// schedule instead of repeating its first step, on every transport. Once a
// connection has answered (the rejoin's reply), the next loss starts the
// schedule over.
func TestReconnectStormFollowsSchedule(t *testing.T) {
	t.Parallel()
	steps := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond,
		40 * time.Millisecond, 50 * time.Millisecond, 60 * time.Millisecond}
	for _, tr := range []struct {
		name string
		t    func() phx.Transport
	}{
		{"websocket", func() phx.Transport { return nil }},
		{"longpoll", func() phx.Transport { return &phx.LongPoll{Timeout: lpRequestTimeout()} }},
	} {
		for _, fault := range []struct {
			name string
			f    phxtest.Faults
		}{
			{"close on open", phxtest.Faults{CloseOnOpen: true}},
			{"fail frames", phxtest.Faults{FailFrames: true}},
		} {
			for _, vsn := range []string{"2.0.0", "1.0.0"} {
				t.Run(tr.name+"/"+fault.name+"/vsn="+vsn, func(t *testing.T) {
					t.Parallel()
					testReconnectStorm(t, tr.t(), fault.f, vsn, steps)
				})
			}
		}
	}
}

func testReconnectStorm(t *testing.T, tr phx.Transport, fault phxtest.Faults, vsn string, steps []time.Duration) {
	bound := 10 * time.Second
	if lpPhoenixTiming {
		bound = time.Minute // a long-poll session lost is noticed after Phoenix's 2 s
	}
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	srv := phxtest.NewServer(t, lpTiming(phxtest.DemoConfig()))
	sock := dial(t, srv, &phx.Config{
		Transport: tr,
		Vsn:       vsn,
		Params:    url.Values{"user": {"storm"}},
		Reconnect: func() backoff.BackOff { return &schedule{d: steps} },
	})
	ch := sock.Channel("room:storm", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := srv.WaitJoined(ctx, "room:storm")
	if err != nil {
		t.Fatal(err)
	}

	srv.SetFaults(fault)
	c.Drop()
	const n = 5 // attempts observed in a row, every one accepted and failed
	for i := range n {
		r := waitStatus[phx.Reconnecting](t, ctx, sock, nil)
		if r.Attempt != i+1 || r.Delay != steps[i] {
			t.Fatalf("reconnect %d: attempt %d after %v, want attempt %d after %v", i+1, r.Attempt, r.Delay, i+1, steps[i])
		}
	}
	if st := srv.Stats(); st.Accepted < n {
		t.Fatalf("the server accepted %d connections: the fault did not let them open", st.Accepted)
	}

	// A connection that answers resets the schedule.
	srv.SetFaults(phxtest.Faults{})
	waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:storm" })
	c, err = srv.WaitJoined(ctx, "room:storm")
	if err != nil {
		t.Fatal(err)
	}
	c.Drop()
	if r := waitStatus[phx.Reconnecting](t, ctx, sock, nil); r.Attempt != 1 || r.Delay != steps[0] {
		t.Fatalf("after a healthy connection: attempt %d after %v, want 1 after %v", r.Attempt, r.Delay, steps[0])
	}
}

// A connection that has answered a ping and nothing else (no channel)
// proves healthy too, on every loss.
func TestReconnectBackoffResetByPing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	steps := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	sock := dial(t, srv, &phx.Config{Reconnect: func() backoff.BackOff { return &schedule{d: steps} }})
	for i := range 3 {
		if _, err := sock.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := srv.WaitConn(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		c.Drop()
		if r := waitStatus[phx.Reconnecting](t, ctx, sock, nil); r.Attempt != 1 || r.Delay != steps[0] {
			t.Fatalf("loss %d: attempt %d after %v", i+1, r.Attempt, r.Delay)
		}
		waitStatus[phx.Connected](t, ctx, sock, nil)
	}
}
