package managed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// wait bounds every wait of a test; generous for a loaded 2-core machine.
const wait = 20 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, srv *phxtest.Server, cfg *managed.Config) *managed.Client {
	t.Helper()
	if cfg == nil {
		cfg = &managed.Config{}
	}
	if cfg.Socket.Params == nil {
		cfg.Socket.Params = map[string][]string{"user": {"ann"}}
	}
	c := managed.New(context.Background(), srv.URL(), cfg)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// next returns the next event of type T, skipping others.
func next[T managed.Event](t *testing.T, c *managed.Client) T {
	t.Helper()
	return nextWhere(t, c, func(T) bool { return true })
}

// nextWhere returns the next event of type T that ok accepts, skipping others.
func nextWhere[T managed.Event](t *testing.T, c *managed.Client, ok func(T) bool) T {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-c.Events():
			if !open {
				var zero T
				t.Fatalf("stream closed waiting for %T", zero)
			}
			if e, is := ev.(T); is && ok(e) {
				return e
			}
		case <-timer.C:
			var zero T
			t.Fatalf("no %T within %v", zero, wait)
		}
	}
}

// frames lists "topic event" of what the client sent on conn, heartbeats aside.
func frames(conn *phxtest.Conn) []string {
	var out []string
	for _, m := range conn.Received() {
		if m.Event == "heartbeat" {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s", m.Topic, m.Event, m.Payload))
	}
	return out
}

func demo(t *testing.T) *phxtest.Server {
	return phxtest.NewServer(t, phxtest.DemoConfig())
}

var _ = phx.ErrTimeout

// collect reads the stream until done returns true and returns what it read.
func collect(t *testing.T, c *managed.Client, done func(managed.Event) bool) []managed.Event {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var out []managed.Event
	for {
		select {
		case ev, open := <-c.Events():
			if !open {
				t.Fatalf("stream closed after %v", out)
			}
			out = append(out, ev)
			if done(ev) {
				return out
			}
			timer.Reset(wait) // a bound on silence, not on the whole run
		case <-timer.C:
			t.Fatalf("gave up after %v with %d events; the last: %v", wait, len(out), out[max(0, len(out)-5):])
		}
	}
}
