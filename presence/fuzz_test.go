package presence_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/phxgo/phxgo/presence"
)

// FuzzPresence checks the fold's properties on two kinds of input.
//
// raw is any payload: decoding never panics, a decoded state round-trips
// through MarshalJSON, SyncState from nothing gives the state itself, and
// the fold never changes its arguments.
//
// seed and n drive the simulated server of the differential test (with the
// unique string refs a real server uses) for n messages: two Machines fed
// the same messages agree on every event and state (the fold is
// deterministic), the pure SyncState / SyncDiff agree with the Machine's
// in-place fold, and after a final rejoin and presence_state, whatever
// diffs came before, the local state is the server's.
func FuzzPresence(f *testing.F) {
	f.Add(uint64(1), uint16(50), []byte(`{"u1":{"metas":[{"phx_ref":"a"}]},"__proto__":{"metas":[]}}`))
	f.Add(uint64(2), uint16(300), []byte(`{"joins":{"0":{"metas":[{"phx_ref":1}]}},"leaves":{"0":{"metas":[{}]}}}`))
	f.Add(uint64(3), uint16(1000), []byte(`{"a":{"metas":[{"phx_ref":"x"}],"metas":[]},"a":{"f":1,"metas":[{"phx_ref":"\u0078"}]}}`))
	f.Add(uint64(4), uint16(0), []byte(`{"joins":null,"leaves":{"k\"":{"metas":[{"phx_ref":{"o":1}},{"phx_ref":null}]}}}`))
	for s := uint64(10); s < 20; s++ {
		f.Add(s, uint16(200+s*37), []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, raw []byte) {
		checkPayload(t, raw)
		checkSequence(t, seed, int(n%128))
	})
}

func checkPayload(t *testing.T, raw []byte) {
	orig := bytes.Clone(raw)
	st, stErr := presence.DecodeState(raw)
	diff, diffErr := presence.DecodeDiff(raw)
	if !bytes.Equal(raw, orig) {
		t.Fatal("decoding changed its input")
	}
	if stErr == nil {
		enc := marshal(t, st)
		again, err := presence.DecodeState(json.RawMessage(enc))
		if err != nil || marshal(t, again) != enc {
			t.Fatalf("round trip of %s: %v, %s", enc, err, marshal(t, again))
		}
		got, _ := presence.SyncState(presence.State{}, st)
		if marshal(t, got) != enc || marshal(t, st) != enc {
			t.Fatalf("SyncState from nothing: %s, want %s", marshal(t, got), enc)
		}
		if diffErr == nil {
			before := marshal(t, diff.Joins) + marshal(t, diff.Leaves)
			_, evs := presence.SyncDiff(st, diff)
			presence.WithUpdates(evs)
			if marshal(t, st) != enc || marshal(t, diff.Joins)+marshal(t, diff.Leaves) != before {
				t.Fatal("SyncDiff changed its arguments")
			}
		}
	}
}

func checkSequence(t *testing.T, seed uint64, n int) {
	g := newGen(seed, true)
	a, b := presence.NewMachine(presence.Options{}), presence.NewMachine(presence.Options{})
	r := &renderer{}
	apply := func(msg genMsg) {
		in := presence.Input{Event: msg.Event, Payload: json.RawMessage(msg.Raw), JoinRef: msg.JoinRef}
		before := a.State()
		direct := a.Pending() == 0 && a.Synced(msg.JoinRef)
		evA, errA := a.Apply(in)
		evB, errB := b.Apply(in)
		if errA != nil || errB != nil {
			t.Fatalf("Apply: %v, %v", errA, errB)
		}
		ra, rb := r.render(a, evA), r.render(b, evB)
		if !bytes.Equal(ra, rb) {
			t.Fatalf("two Machines disagree\n%s\n%s", ra, rb)
		}
		if !direct {
			return
		}
		// The Machine applied this message at once: the pure fold on the
		// snapshot taken before must give the same state and events.
		var (
			pure presence.State
			evs  []presence.Event
		)
		if msg.Event == "presence_state" {
			pure, evs = presence.SyncState(before, mustState(t, msg.Raw))
		} else {
			pure, evs = presence.SyncDiff(before, mustDiff(t, msg.Raw))
		}
		if got, want := marshal(t, pure), marshal(t, a.State()); got != want {
			t.Fatalf("pure fold %s, Machine %s", got, want)
		}
		if got, want := slices.Concat(describe(evs), []string{"sync"}), describe(evA); !slices.Equal(got, want) {
			t.Fatalf("pure fold events %q, Machine %q", got, want)
		}
	}
	for range n {
		apply(g.next())
	}
	g.rejoin()
	for len(g.queue) > 0 {
		apply(g.next())
	}
	// The server's state, as key -> sorted metas; keys with no metas (which
	// a join with an empty metas list leaves behind) do not count.
	want := map[string][]string{}
	for k, ms := range g.metas {
		for _, m := range ms {
			want[k] = append(want[k], m.body)
		}
		slices.Sort(want[k])
	}
	got := map[string][]string{}
	for k, p := range a.State().All() {
		for _, m := range p.Metas {
			got[k] = append(got[k], string(m.Raw))
		}
		if len(got[k]) > 0 {
			slices.Sort(got[k])
		} else {
			delete(got, k)
		}
	}
	if marshal(t, got) != marshal(t, want) {
		t.Fatalf("seed %d, %d messages: after the final state\n%s\nserver\n%s", seed, n, marshal(t, got), marshal(t, want))
	}
}
