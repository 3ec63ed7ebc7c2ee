package presence_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/presence"
)

func mustState(t *testing.T, raw string) presence.State {
	t.Helper()
	s, err := presence.DecodeState(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("DecodeState(%s): %v", raw, err)
	}
	return s
}

func mustDiff(t *testing.T, raw string) presence.Diff {
	t.Helper()
	d, err := presence.DecodeDiff(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("DecodeDiff(%s): %v", raw, err)
	}
	return d
}

func refs(p presence.Presence) string { return strings.Join(p.Refs(), ",") }

// describe renders events as short strings: "join k cur new", "leave k cur
// left", "update k old>new cur", "sync".
func describe(evs []presence.Event) []string {
	out := []string{}
	for _, ev := range evs {
		switch ev := ev.(type) {
		case presence.Join:
			cur := "nil"
			if ev.Current != nil {
				cur = "[" + refs(*ev.Current) + "]"
			}
			out = append(out, "join "+ev.Key+" "+cur+" ["+refs(ev.New)+"]")
		case presence.Leave:
			out = append(out, "leave "+ev.Key+" ["+refs(ev.Current)+"] ["+refs(ev.Left)+"]")
		case presence.Update:
			out = append(out, "update "+ev.Key+" "+ev.Old.Ref+">"+ev.New.Ref+" ["+refs(ev.Current)+"]")
		case presence.Sync:
			out = append(out, "sync")
		}
	}
	return out
}

// render lists a state as "key=ref,ref key=ref".
func render(s presence.State) string {
	return strings.Join(presence.List(s, func(k string, p presence.Presence) string { return k + "=" + refs(p) }), " ")
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSyncDiff(t *testing.T) {
	t.Parallel()
	const base = `{"u1":{"metas":[{"phx_ref":"1"}]},"u2":{"metas":[{"phx_ref":"2"},{"phx_ref":"3"}]}}`
	tests := []struct {
		name, diff string
		state      string
		events     []string
	}{
		{
			name:   "new key joins last",
			diff:   `{"joins":{"u3":{"metas":[{"phx_ref":"4"}]}},"leaves":{}}`,
			state:  "u1=1 u2=2,3 u3=4",
			events: []string{"join u3 nil [4]"},
		},
		{
			name:   "known key keeps its place, old metas first",
			diff:   `{"joins":{"u1":{"metas":[{"phx_ref":"5"}]}},"leaves":{}}`,
			state:  "u1=1,5 u2=2,3",
			events: []string{"join u1 [1] [5]"},
		},
		{
			name:   "a repeated ref moves to the end",
			diff:   `{"joins":{"u2":{"metas":[{"phx_ref":"2"}]}},"leaves":{}}`,
			state:  "u1=1 u2=3,2",
			events: []string{"join u2 [2,3] [2]"},
		},
		{
			name:   "leave of one meta",
			diff:   `{"joins":{},"leaves":{"u2":{"metas":[{"phx_ref":"2"}]}}}`,
			state:  "u1=1 u2=3",
			events: []string{"leave u2 [3] [2]"},
		},
		{
			name:   "leave of the last meta removes the key",
			diff:   `{"joins":{},"leaves":{"u1":{"metas":[{"phx_ref":"1"}]}}}`,
			state:  "u2=2,3",
			events: []string{"leave u1 [] [1]"},
		},
		{
			name:   "leave of an unknown key is ignored",
			diff:   `{"joins":{},"leaves":{"nobody":{"metas":[{"phx_ref":"1"}]}}}`,
			state:  "u1=1 u2=2,3",
			events: []string{},
		},
		{
			name:   "leave of unknown refs on a known key is reported",
			diff:   `{"joins":{},"leaves":{"u1":{"metas":[{"phx_ref":"9"}]}}}`,
			state:  "u1=1 u2=2,3",
			events: []string{"leave u1 [1] [9]"},
		},
		{
			name:   "update: joins before leaves",
			diff:   `{"leaves":{"u2":{"metas":[{"phx_ref":"2"}]}},"joins":{"u2":{"metas":[{"phx_ref":"6","phx_ref_prev":"2"}]}}}`,
			state:  "u1=1 u2=3,6",
			events: []string{"join u2 [2,3] [6]", "leave u2 [3,6] [2]"},
		},
		{
			name:   "array-index keys come first, in numeric order",
			diff:   `{"joins":{"10":{"metas":[{"phx_ref":"a"}]},"__proto__":{"metas":[{"phx_ref":"b"}]},"2":{"metas":[{"phx_ref":"c"}]},"02":{"metas":[{"phx_ref":"d"}]}},"leaves":{}}`,
			state:  "2=c 10=a u1=1 u2=2,3 __proto__=b 02=d",
			events: []string{"join 2 nil [c]", "join 10 nil [a]", "join __proto__ nil [b]", "join 02 nil [d]"},
		},
		{
			name:   "a repeated key takes the last value at the first place",
			diff:   `{"joins":{"x":{"metas":[{"phx_ref":"a"}]},"y":{"metas":[{"phx_ref":"b"}]},"x":{"metas":[{"phx_ref":"c"}]}},"leaves":{}}`,
			state:  "u1=1 u2=2,3 x=c y=b",
			events: []string{"join x nil [c]", "join y nil [b]"},
		},
		{
			name:   "refs compare like JavaScript ===",
			diff:   `{"joins":{"n":{"metas":[{"phx_ref":1},{"phx_ref":"1"},{"phx_ref":null},{}]}},"leaves":{"n":{"metas":[{"phx_ref":1.0},{"phx_ref":"x"}]}}}`,
			state:  "u1=1 u2=2,3 n=1,,",
			events: []string{"join n nil [,1,,]", "leave n [1,,] [,x]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, diff := mustState(t, base), mustDiff(t, tt.diff)
			before, beforeDiff := marshal(t, st), marshal(t, diff.Joins)+marshal(t, diff.Leaves)
			got, evs := presence.SyncDiff(st, diff)
			if r := render(got); r != tt.state {
				t.Errorf("state %q, want %q", r, tt.state)
			}
			if d := describe(evs); !slices.Equal(d, tt.events) {
				t.Errorf("events %q, want %q", d, tt.events)
			}
			if marshal(t, st) != before || marshal(t, diff.Joins)+marshal(t, diff.Leaves) != beforeDiff {
				t.Error("SyncDiff modified its arguments")
			}
		})
	}
}

func TestSyncState(t *testing.T) {
	t.Parallel()
	cur := mustState(t, `{"u1":{"metas":[{"phx_ref":"1"}]},"u2":{"metas":[{"phx_ref":"2"},{"phx_ref":"3","v":"old"}]},"u3":{"metas":[{"phx_ref":"4"}]}}`)
	next := mustState(t, `{"u4":{"metas":[{"phx_ref":"7"}]},"u2":{"metas":[{"phx_ref":"3","v":"new"},{"phx_ref":"5"}]},"u1":{"metas":[{"phx_ref":"1"}]}}`)
	before := marshal(t, cur) + marshal(t, next)
	got, evs := presence.SyncState(cur, next)
	if r, want := render(got), "u1=1 u2=3,5 u4=7"; r != want {
		t.Errorf("state %q, want %q", r, want)
	}
	// Joins in the new state's order, then leaves: first the keys that are
	// gone (in the old state's order), then the keys that lost metas.
	want := []string{"join u4 nil [7]", "join u2 [2,3] [5]", "leave u3 [] [4]", "leave u2 [3,5] [2]"}
	if d := describe(evs); !slices.Equal(d, want) {
		t.Errorf("events %q, want %q", d, want)
	}
	// A meta is known by its phx_ref: the old body stays.
	p, _ := got.Get("u2")
	if !strings.Contains(string(p.Metas[0].Raw), "old") {
		t.Errorf("u2 meta %s, want the old body", p.Metas[0].Raw)
	}
	if marshal(t, cur)+marshal(t, next) != before {
		t.Error("SyncState modified its arguments")
	}
	// Applying the same state again changes nothing.
	again, evs := presence.SyncState(got, next)
	if len(evs) != 0 || render(again) != render(got) {
		t.Errorf("second SyncState: %q, %s", describe(evs), render(again))
	}
}

func TestWithUpdates(t *testing.T) {
	t.Parallel()
	base := mustState(t, `{"u":{"metas":[{"phx_ref":"a"},{"phx_ref":"b"}]}}`)
	tests := []struct {
		name, diff string
		want       []string
	}{
		{
			name: "update",
			diff: `{"joins":{"u":{"metas":[{"phx_ref":"c","phx_ref_prev":"a"}]}},"leaves":{"u":{"metas":[{"phx_ref":"a"}]}}}`,
			want: []string{"update u a>c [b,c]"},
		},
		{
			name: "update next to a plain join and leave",
			diff: `{"joins":{"u":{"metas":[{"phx_ref":"c","phx_ref_prev":"a"},{"phx_ref":"d"}]}},"leaves":{"u":{"metas":[{"phx_ref":"a"},{"phx_ref":"b"}]}}}`,
			want: []string{"join u [a,b] [d]", "update u a>c [c,d]", "leave u [c,d] [b]"},
		},
		{
			name: "phx_ref_prev of an unknown meta stays a join and a leave",
			diff: `{"joins":{"u":{"metas":[{"phx_ref":"c","phx_ref_prev":"z"}]}},"leaves":{"u":{"metas":[{"phx_ref":"a"}]}}}`,
			want: []string{"join u [a,b] [c]", "leave u [b,c] [a]"},
		},
		{
			name: "old meta not in leaves",
			diff: `{"joins":{"u":{"metas":[{"phx_ref":"c","phx_ref_prev":"a"}]}},"leaves":{"u":{"metas":[{"phx_ref":"b"}]}}}`,
			want: []string{"join u [a,b] [c]", "leave u [a,c] [b]"},
		},
		{
			name: "no leaves at all",
			diff: `{"joins":{"u":{"metas":[{"phx_ref":"c","phx_ref_prev":"a"}]}},"leaves":{}}`,
			want: []string{"join u [a,b] [c]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, evs := presence.SyncDiff(base, mustDiff(t, tt.diff))
			plain := describe(evs)
			if d := describe(presence.WithUpdates(evs)); !slices.Equal(d, tt.want) {
				t.Errorf("events %q, want %q", d, tt.want)
			}
			if !slices.Equal(describe(evs), plain) {
				t.Error("WithUpdates modified its argument")
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"u":1}`, `{"u":{}}`, `{"u":{"metas":{}}}`,
		`{"u":{"metas":[1]}}`, `{"u":{"metas":[null]}}`, `{"u":null}`,
	} {
		if _, err := presence.DecodeState(json.RawMessage(raw)); !errors.Is(err, presence.ErrMalformed) {
			t.Errorf("DecodeState(%s) = %v, want ErrMalformed", raw, err)
		}
	}
	for _, raw := range []string{
		`null`, `{"joins":[]}`, `{"joins":{"u":{}}}`, `{"leaves":{"u":{"metas":"x"}}}`, `{"joins":{}`,
	} {
		if _, err := presence.DecodeDiff(json.RawMessage(raw)); !errors.Is(err, presence.ErrMalformed) {
			t.Errorf("DecodeDiff(%s) = %v, want ErrMalformed", raw, err)
		}
	}
	// Missing or null sides are empty.
	for _, raw := range []string{`{}`, `{"joins":null,"leaves":null}`, ` {"other":1} `} {
		d, err := presence.DecodeDiff(json.RawMessage(raw))
		if err != nil || d.Joins.Len() != 0 || d.Leaves.Len() != 0 {
			t.Errorf("DecodeDiff(%s) = %v, %v", raw, d, err)
		}
	}
}

func TestDecodeKeepsEverything(t *testing.T) {
	t.Parallel()
	raw := []byte(` {"ü\u00e9":{"user":{"n":1},"metas":[{"phx_ref":"r1","x":[1,{"y":"\"}"}],"phx_ref_prev":"r0"}],"z":true}, "":{"metas":[]}} `)
	s, err := presence.DecodeState(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw[3] = 'X' // the state keeps its own copy
	p, ok := s.Get("üé")
	if !ok || len(p.Metas) != 1 {
		t.Fatalf("Get: %v %v", p, ok)
	}
	m := p.Metas[0]
	if m.Ref != "r1" || m.PrevRef != "r0" || string(m.Raw) != `{"phx_ref":"r1","x":[1,{"y":"\"}"}],"phx_ref_prev":"r0"}` {
		t.Errorf("meta %+v", m)
	}
	if got, want := marshal(t, s), `{"üé":{"user":{"n":1},"metas":[{"phx_ref":"r1","x":[1,{"y":"\"}"}],"phx_ref_prev":"r0"}],"z":true},"":{"metas":[]}}`; got != want {
		t.Errorf("MarshalJSON\n%s\nwant\n%s", got, want)
	}
	again := mustState(t, marshal(t, s))
	if marshal(t, again) != marshal(t, s) {
		t.Error("MarshalJSON does not round-trip")
	}
	if keys := s.Keys(); !slices.Equal(keys, []string{"üé", ""}) {
		t.Errorf("Keys %q", keys)
	}
}

func TestMetasAs(t *testing.T) {
	t.Parallel()
	s := mustState(t, `{"u":{"metas":[{"phx_ref":"a","device":"phone"},{"phx_ref":"b","device":7}]}}`)
	p, _ := s.Get("u")
	type meta struct {
		Device string `json:"device"`
	}
	if _, err := presence.MetasAs[meta](p); err == nil {
		t.Fatal("MetasAs accepted a number for a string")
	} else {
		var me *presence.MetaError
		if !errors.As(err, &me) || me.Index != 1 || me.Ref != "b" {
			t.Errorf("error %v", err)
		}
	}
	m, err := presence.DecodeMeta[meta](p.Metas[0])
	if err != nil || m.Device != "phone" {
		t.Errorf("DecodeMeta = %+v, %v", m, err)
	}
}

func TestMachine(t *testing.T) {
	t.Parallel()
	in := func(event, payload, joinRef string) presence.Input {
		return presence.Input{Event: event, Payload: json.RawMessage(payload), JoinRef: joinRef}
	}
	apply := func(m *presence.Machine, i presence.Input) []string {
		t.Helper()
		evs, err := m.Apply(i)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return describe(evs)
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
	}
	const (
		joinA  = `{"joins":{"a":{"metas":[{"phx_ref":"1"}]}},"leaves":{}}`
		joinB  = `{"joins":{"b":{"metas":[{"phx_ref":"2"}]}},"leaves":{}}`
		leaveA = `{"joins":{},"leaves":{"a":{"metas":[{"phx_ref":"1"}]}}}`
	)

	t.Run("diffs wait for the state of the current join", func(t *testing.T) {
		t.Parallel()
		m := presence.NewMachine(presence.Options{})
		check(apply(m, in("presence_diff", joinA, "1")))
		if m.Pending() != 1 || m.Synced("1") {
			t.Fatalf("pending %d synced %v", m.Pending(), m.Synced("1"))
		}
		check(apply(m, in("presence_state", `{"a":{"metas":[{"phx_ref":"1"}]}}`, "1")),
			"join a nil [1]", "join a [1] [1]", "sync")
		check(apply(m, in("presence_diff", joinB, "1")), "join b nil [2]", "sync")
		// Rejoin: diffs wait again, and a diff from before the rejoin is stale.
		check(apply(m, in("presence_diff", leaveA, "")))
		check(apply(m, in("presence_diff", joinA, "2")))
		if m.Pending() != 2 {
			t.Fatalf("pending %d", m.Pending())
		}
		check(apply(m, in("presence_state", `{"b":{"metas":[{"phx_ref":"2"}]}}`, "2")),
			"leave a [] [1]", "join a nil [1]", "sync")
		if m.Stale() != 1 || m.Pending() != 0 || render(m.State()) != "b=2 a=1" {
			t.Errorf("stale %d pending %d state %s", m.Stale(), m.Pending(), render(m.State()))
		}
	})

	t.Run("phoenix.js keeps stale diffs", func(t *testing.T) {
		t.Parallel()
		m := presence.NewMachine(presence.Options{KeepStaleDiffs: true})
		check(apply(m, in("presence_diff", joinA, "1")))
		check(apply(m, in("presence_state", `{}`, "2")), "join a nil [1]", "sync")
	})

	t.Run("event names, updates, other events", func(t *testing.T) {
		t.Parallel()
		m := presence.NewMachine(presence.Options{StateEvent: "s", DiffEvent: "d", Updates: true})
		check(apply(m, in("presence_state", `{"x":{"metas":[]}}`, "1")))
		check(apply(m, in("s", `{"a":{"metas":[{"phx_ref":"1"}]}}`, "1")), "join a nil [1]", "sync")
		check(apply(m, in("d", `{"joins":{"a":{"metas":[{"phx_ref":"2","phx_ref_prev":"1"}]}},"leaves":{"a":{"metas":[{"phx_ref":"1"}]}}}`, "1")),
			"update a 1>2 [2]", "sync")
	})

	t.Run("malformed payloads change nothing", func(t *testing.T) {
		t.Parallel()
		m := presence.NewMachine(presence.Options{})
		check(apply(m, in("presence_state", `{"a":{"metas":[{"phx_ref":"1"}]}}`, "1")), "join a nil [1]", "sync")
		for _, i := range []presence.Input{in("presence_state", `{"a":1}`, "1"), in("presence_diff", `[`, "1")} {
			if _, err := m.Apply(i); !errors.Is(err, presence.ErrMalformed) {
				t.Errorf("Apply(%s) = %v", i.Payload, err)
			}
		}
		if render(m.State()) != "a=1" || !m.Synced("1") {
			t.Errorf("state %s", render(m.State()))
		}
	})

	t.Run("pending bound drops the oldest", func(t *testing.T) {
		t.Parallel()
		m := presence.NewMachine(presence.Options{MaxPending: 1})
		check(apply(m, in("presence_diff", joinA, "1")))
		if _, err := m.Apply(in("presence_diff", joinB, "1")); !errors.Is(err, presence.ErrPendingOverflow) {
			t.Fatalf("err %v", err)
		}
		check(apply(m, in("presence_state", `{}`, "1")), "join b nil [2]", "sync")
		if m.Dropped() != 1 {
			t.Errorf("dropped %d", m.Dropped())
		}
	})

	t.Run("snapshots do not change", func(t *testing.T) {
		t.Parallel()
		var m0 presence.Machine // the zero Machine works
		m := &m0
		if m.State().Len() != 0 || len(m.List()) != 0 {
			t.Fatal("zero Machine not empty")
		}
		apply(m, in("presence_state", `{"a":{"metas":[{"phx_ref":"1"}]}}`, "1"))
		snap := m.State()
		apply(m, in("presence_diff", joinB, "1"))
		apply(m, in("presence_diff", leaveA, "1"))
		if render(snap) != "a=1" || render(m.State()) != "b=2" {
			t.Errorf("snapshot %s, state %s", render(snap), render(m.State()))
		}
		if l := m.List(); len(l) != 1 || l[0].Key != "b" {
			t.Errorf("List %v", l)
		}
	})
}
