package phx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
)

// blastPayload is the payload of the demo room's blast message i.
func blastPayload(i, size int) string {
	return fmt.Sprintf(`{"data":"%s","i":%d}`, strings.Repeat("x", size), i)
}

// startBlast joins topic on sock after subscribing with subs, and has the
// demo room send n blast messages of size bytes.
func startBlast(t *testing.T, ctx context.Context, ch *phx.Channel, n, size int) {
	t.Helper()
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "blast", map[string]int{"n": n, "size": size}); err != nil {
		t.Fatal(err)
	}
}

func lendSocket(t *testing.T, ctx context.Context) *phx.Socket {
	t.Helper()
	sock, err := phx.Connect(ctx, demo(t).URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return sock
}

// TestLendReusesBuffers: a lent subscription's consumer gets every
// message, in order and intact, from a few buffers the socket reuses as
// the consumer gives each message back by taking the next. The server
// sends rounds of ten, each once the last is consumed, so that at most a
// round is in flight: without reuse every message has a buffer of its own.
func TestLendReusesBuffers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sock := lendSocket(t, ctx)
	ch := sock.Channel("room:lend", nil)
	sub := mustSub(t, ch, phx.Events("blast"), phx.Lend())
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	const rounds, round, size = 60, 10, 1200
	want := make([]string, round+1)
	for i := 1; i <= round; i++ {
		want[i] = blastPayload(i, size)
	}
	leases := map[any]int{}
	for r := 0; r < rounds; r++ {
		if _, err := ch.Push(ctx, "blast", map[string]int{"n": round, "size": size}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= round; i++ {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("round %d, message %d: %v", r, i, err)
			}
			if string(m.Payload) != want[i] {
				t.Fatalf("round %d, message %d: payload %.60q…, want %.60q…", r, i, m.Payload, want[i])
			}
			lease := phx.LeaseOf(m)
			if lease == nil {
				t.Fatalf("round %d, message %d: not lent", r, i)
			}
			leases[lease]++
		}
	}
	if n := rounds * round; !raceOn && len(leases) > n/4 {
		t.Fatalf("%d buffers for %d messages: not reused", len(leases), n)
	}
	t.Logf("%d messages in %d buffers", rounds*round, len(leases))
	if st := sock.Stats(); st.Dropped != 0 || st.Overflowed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLendLeavesOwnedPayloadsAlone: the channel's other subscriptions, a
// socket-wide one and messages taken from a lent subscription's C keep
// their payloads while a lent consumer runs ahead and its buffers are
// reused.
func TestLendLeavesOwnedPayloadsAlone(t *testing.T) {
	t.Parallel()
	const n, size = 5000, 1100
	for _, other := range []string{"owned", "lent read from C", "socket-wide"} {
		t.Run(other, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			sock := lendSocket(t, ctx)
			ch := sock.Channel("room:mixed", nil)
			lent := mustSub(t, ch, phx.Events("blast"), phx.Lend())
			var kept *phx.Subscription
			switch other {
			case "owned":
				kept = mustSub(t, ch, phx.Events("blast"), phx.WithBuffer(n+10))
			case "lent read from C":
				kept = mustSub(t, ch, phx.Events("blast"), phx.Lend(), phx.WithBuffer(n+10))
			case "socket-wide":
				kept = mustSub(t, sock, phx.Events("blast"), phx.WithBuffer(n+10))
			}
			startBlast(t, ctx, ch, n, size)
			lentSeen := 0
			for i := 1; i <= n; i++ {
				m, err := lent.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if string(m.Payload) != blastPayload(i, size) {
					t.Fatalf("lent message %d: %.60q…", i, m.Payload)
				}
				if phx.LeaseOf(m) != nil {
					lentSeen++
				}
			}
			// A socket-wide subscription may see any frame: none is lent.
			if wantLent := other != "socket-wide"; wantLent && lentSeen != n || !wantLent && lentSeen != 0 {
				t.Fatalf("%d of %d messages lent, want all: %v", lentSeen, n, wantLent)
			}
			// Every message was buffered for kept before its first is
			// read, while the lent consumer went to the end.
			for i := 1; i <= n; i++ {
				var m phx.Message
				select {
				case m = <-kept.C():
				case <-ctx.Done():
					t.Fatalf("message %d: %v", i, ctx.Err())
				}
				if got := string(m.Payload); got != blastPayload(i, size) {
					t.Fatalf("message %d overwritten: %.60q…", i, got)
				}
			}
		})
	}
}

// TestLendTyped: SubscribeAs with Lend decodes each payload into the
// caller's value; frames under 1 KiB are copied, not lent.
func TestLendTyped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sock := lendSocket(t, ctx)
	ch := sock.Channel("room:typed", nil)
	type blast struct {
		I    int    `json:"i"`
		Data string `json:"data"`
	}
	sub, err := phx.SubscribeAs[blast](ctx, ch, phx.Events("blast"), phx.Lend())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 500
	startBlast(t, ctx, ch, n, 50)
	var kept []blast
	for i := 1; i <= n; i++ {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if phx.LeaseOf(m.Message) != nil {
			t.Fatalf("message %d of %d bytes lent: frames under 1 KiB are copied", i, len(m.Payload))
		}
		kept = append(kept, m.Value)
	}
	for i, v := range kept {
		if v.I != i+1 || v.Data != strings.Repeat("x", 50) {
			t.Fatalf("value %d: %+v", i+1, v)
		}
	}
}

// TestLendAllGivesBack: All, with Lend, gives each message back at the
// next step, and the one a loop broke on at the next Next or All: every
// message arrives intact, from reused buffers (rounds as in
// TestLendReusesBuffers).
func TestLendAllGivesBack(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sock := lendSocket(t, ctx)
	ch := sock.Channel("room:all", nil)
	sub := mustSub(t, ch, phx.Events("blast"), phx.Lend())
	defer sub.Close()
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	const rounds, round = 60, 10
	leases := map[any]bool{}
	for r := 0; r < rounds; r++ {
		if _, err := ch.Push(ctx, "blast", map[string]int{"n": round, "size": 1100}); err != nil {
			t.Fatal(err)
		}
		i := 0
		for m, err := range sub.All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			i++
			var v struct{ I int }
			if err := json.Unmarshal(m.Payload, &v); err != nil || v.I != i {
				t.Fatalf("round %d, message %d: %s (%v)", r, i, m.Payload, err)
			}
			if phx.LeaseOf(m) == nil {
				t.Fatalf("round %d, message %d not lent", r, i)
			}
			leases[phx.LeaseOf(m)] = true
			if i == round {
				break
			}
		}
	}
	if n := rounds * round; !raceOn && len(leases) > n/4 {
		t.Fatalf("%d buffers for %d messages: not reused", len(leases), n)
	}
}
