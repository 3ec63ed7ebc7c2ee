package presence_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/presence"
)

// statePayload is a presence_state of n keys with one realistic meta each.
func statePayload(n int) json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"user:%d":{"metas":[{"device":"phone","online_at":"1795316676","phx_ref":"GOo_AYvaY7Z%05d"}]}`, i, i)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

// diffPayloads are the two diffs a device going away and coming back sends:
// applied in turn they leave the state as it was.
func diffPayloads() (leave, join json.RawMessage) {
	meta := `{"u42":{"metas":[{"device":"phone","online_at":"1795316676","phx_ref":"GOo_AYvaY7ZX0042"}]}}`
	return json.RawMessage(`{"joins":{},"leaves":` + meta + `}`), json.RawMessage(`{"joins":` + meta + `,"leaves":{}}`)
}

const benchKeys = 10000

// BenchmarkDiff10k applies one presence_diff to a 10,000-key state: through
// a Machine (in place, the tracker's path), through the pure SyncDiff (which
// copies the key map), and next to two floors: encoding/json decoding the
// same diff into plain Go values, and copying a 10,000-entry map.
func BenchmarkDiff10k(b *testing.B) {
	leave, join := diffPayloads()
	base, err := presence.DecodeState(statePayload(benchKeys))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("floor=json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var v struct {
				Joins, Leaves map[string]struct{ Metas []map[string]any }
			}
			p := join
			if i%2 == 0 {
				p = leave
			}
			if err := json.Unmarshal(p, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor=map-copy", func(b *testing.B) {
		m := make(map[string]presence.Presence, benchKeys)
		for k, p := range base.All() {
			m[k] = p
		}
		b.ReportAllocs()
		for b.Loop() {
			c := make(map[string]presence.Presence, len(m))
			for k, v := range m {
				c[k] = v
			}
		}
	})
	b.Run("DecodeDiff", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := presence.DecodeDiff(join); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Machine", func(b *testing.B) {
		m := presence.NewMachine(presence.Options{})
		if _, err := m.Apply(presence.Input{Event: "presence_state", Payload: statePayload(benchKeys), JoinRef: "1"}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := join
			if i%2 == 0 {
				p = leave
			}
			if _, err := m.Apply(presence.Input{Event: "presence_diff", Payload: p, JoinRef: "1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Machine+snapshot", func(b *testing.B) {
		m := presence.NewMachine(presence.Options{})
		if _, err := m.Apply(presence.Input{Event: "presence_state", Payload: statePayload(benchKeys), JoinRef: "1"}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := join
			if i%2 == 0 {
				p = leave
			}
			if _, err := m.Apply(presence.Input{Event: "presence_diff", Payload: p, JoinRef: "1"}); err != nil {
				b.Fatal(err)
			}
			_ = m.State()
		}
	})
	b.Run("SyncDiff", func(b *testing.B) {
		dl, _ := presence.DecodeDiff(leave)
		dj, _ := presence.DecodeDiff(join)
		st := base
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d := dj
			if i%2 == 0 {
				d = dl
			}
			st, _ = presence.SyncDiff(st, d)
		}
	})
}

// BenchmarkState10k reads and applies a full presence_state of 10,000 keys:
// the first one (everything joins), a repeat of it (a rejoin where nothing
// changed), next to the floor of encoding/json decoding it into plain Go
// values.
func BenchmarkState10k(b *testing.B) {
	payload := statePayload(benchKeys)
	b.Run("floor=json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			var v map[string]struct{ Metas []map[string]any }
			if err := json.Unmarshal(payload, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeState", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := presence.DecodeState(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Machine/first", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			m := presence.NewMachine(presence.Options{})
			if _, err := m.Apply(presence.Input{Event: "presence_state", Payload: payload, JoinRef: "1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Machine/resync", func(b *testing.B) {
		m := presence.NewMachine(presence.Options{})
		if _, err := m.Apply(presence.Input{Event: "presence_state", Payload: payload, JoinRef: "1"}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			evs, err := m.Apply(presence.Input{Event: "presence_state", Payload: payload, JoinRef: "1"})
			if err != nil || len(evs) != 1 {
				b.Fatal(err, len(evs))
			}
		}
	})
	b.Run("List", func(b *testing.B) {
		st, _ := presence.DecodeState(payload)
		b.ReportAllocs()
		for b.Loop() {
			_ = presence.List(st, func(k string, p presence.Presence) string { return k })
		}
	})
}
