package phx_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// Where real Phoenix sends two frames to a client in either order, phxtest
// gives one order unless told otherwise (phxtest.Interleave). The client
// must not depend on it: these tests run under the fixed order, the
// swapped one and a few seeds.

type interleaving struct {
	name string
	il   phxtest.Interleave
	seed uint64
}

var interleavings = []interleaving{
	{"fixed", phxtest.InterleaveFixed, 0},
	{"swapped", phxtest.InterleaveSwapped, 0},
	{"seed1", phxtest.InterleaveSeeded, 1},
	{"seed2", phxtest.InterleaveSeeded, 2},
}

func interleaved(t *testing.T, il interleaving) *phxtest.Server {
	cfg := phxtest.DemoConfig()
	cfg.Interleave, cfg.InterleaveSeed = il.il, il.seed
	return phxtest.NewServer(t, cfg)
}

// A channel that updates its own presence gets the push's reply and the
// presence_diff in either order: every diff reaches the subscription, in
// the order of the updates, whether it came before the reply or after.
func TestInterleaveOwnPresenceUpdate(t *testing.T) {
	t.Parallel()
	for _, il := range interleavings {
		t.Run(il.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			srv := interleaved(t, il)
			sock := dial(t, srv, &phx.Config{Params: url.Values{"user": {"ann"}}})
			ch := sock.Channel("room:il", map[string]string{"device": "d"})
			diffs := mustSub(t, ch, phx.Events("presence_diff"))
			defer diffs.Close()
			if _, err := ch.Join(ctx); err != nil {
				t.Fatal(err)
			}
			next := func() string {
				t.Helper()
				select {
				case m := <-diffs.C():
					return string(m.Payload)
				case <-ctx.Done():
					t.Fatal("no presence_diff")
					return ""
				}
			}
			if d := next(); !strings.Contains(d, `"joins":{"ann"`) {
				t.Fatalf("own join: %s", d)
			}
			const n = 8
			for i := 1; i <= n; i++ {
				r, err := ch.Push(ctx, "update_meta", map[string]int{"i": i})
				if err != nil || r.Status != "ok" {
					t.Fatalf("update %d: %+v, %v", i, r, err)
				}
				if d := next(); !strings.Contains(d, fmt.Sprintf(`"i":%d,`, i)) {
					t.Fatalf("update %d: diff %s", i, d)
				}
			}
			conn, err := srv.WaitJoined(ctx, "room:il")
			if err != nil {
				t.Fatal(err)
			}
			chosen, swapped := conn.Interleavings()
			if chosen != n {
				t.Errorf("%d orders chosen, want %d", chosen, n)
			}
			switch il.il {
			case phxtest.InterleaveFixed:
				if swapped != 0 {
					t.Errorf("%d swapped", swapped)
				}
			case phxtest.InterleaveSwapped:
				if swapped != n {
					t.Errorf("%d swapped", swapped)
				}
			}
		})
	}
}

// Pushes and heartbeats that share a long-poll POST are answered in either
// order: every push and every ping resolves.
func TestInterleaveLongPollBatch(t *testing.T) {
	t.Parallel()
	for _, il := range interleavings {
		t.Run(il.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			srv := interleaved(t, il)
			sock := dial(t, srv, &phx.Config{Transport: &phx.LongPoll{Timeout: 5 * time.Second}})
			ch := sock.Channel("room:lpil", nil)
			if _, err := ch.Join(ctx); err != nil {
				t.Fatal(err)
			}
			const rounds = 20
			var wg sync.WaitGroup
			errs := make(chan error, 2*rounds)
			for i := range rounds {
				wg.Add(2)
				go func() {
					defer wg.Done()
					r, err := ch.Push(ctx, "echo", map[string]int{"i": i})
					if err == nil && string(r.Response) != fmt.Sprintf(`{"i":%d}`, i) {
						err = fmt.Errorf("echo %d: %s", i, r.Response)
					}
					errs <- err
				}()
				go func() {
					defer wg.Done()
					_, err := sock.Ping(ctx)
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
