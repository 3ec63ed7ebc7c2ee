package presence

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"iter"
	"maps"
	"slices"
	"sort"
	"strconv"
)

// ErrMalformed is matched (errors.Is) by every error that reports a
// presence_state or presence_diff payload this package cannot read.
var ErrMalformed = errors.New("presence: malformed payload")

// Meta is one entry of a key's metas: one tracked process (a socket, a device)
// of that key. Raw holds the whole meta object exactly as the server sent it,
// so nothing the server adds is lost; Ref and PrevRef are the phx_ref and
// phx_ref_prev members read out of it.
//
// A Meta, like every value this package hands out, is never modified after it
// is created: the fold builds new slices instead of editing old ones, so a
// Meta or a Presence may be kept and shared freely.
type Meta struct {
	// Ref is phx_ref when it is a JSON string (what Phoenix sends), else "".
	Ref string
	// PrevRef is phx_ref_prev when it is a JSON string, else "". Phoenix sets
	// it on the new meta of a Presence.update.
	PrevRef string
	// Raw is the meta object verbatim.
	Raw json.RawMessage

	ref, prev refKey
}

// Decode unmarshals the meta object into v.
func (m Meta) Decode(v any) error { return json.Unmarshal(m.Raw, v) }

// MarshalJSON returns Raw, so a Meta encodes as the server sent it.
func (m Meta) MarshalJSON() ([]byte, error) {
	if len(m.Raw) == 0 {
		return []byte("{}"), nil
	}
	return m.Raw, nil
}

// DecodeMeta unmarshals one meta into a value of type M.
func DecodeMeta[M any](m Meta) (M, error) {
	var v M
	err := json.Unmarshal(m.Raw, &v)
	return v, err
}

// MetasAs unmarshals every meta of p into M, in order. The error names the
// first meta that did not decode.
func MetasAs[M any](p Presence) ([]M, error) {
	out := make([]M, len(p.Metas))
	for i, m := range p.Metas {
		if err := json.Unmarshal(m.Raw, &out[i]); err != nil {
			return nil, &MetaError{Index: i, Ref: m.Ref, Err: err}
		}
	}
	return out, nil
}

// MetaError reports a meta that could not be decoded into the caller's type.
type MetaError struct {
	Index int    // position in Presence.Metas
	Ref   string // its phx_ref
	Err   error  // from encoding/json
}

func (e *MetaError) Error() string {
	return "presence: meta " + strconv.Itoa(e.Index) + " (phx_ref " + strconv.Quote(e.Ref) + "): " + e.Err.Error()
}

func (e *MetaError) Unwrap() error { return e.Err }

// Presence is what the server holds for one key: its metas, plus any other
// members the server's Presence fetch/2 added next to "metas" (Fields, nil
// when there are none). The slices and maps of a Presence handed out by this
// package are shared with the states that hold it: treat them as read-only.
type Presence struct {
	Metas  []Meta
	Fields map[string]json.RawMessage

	// The order of the members as received, so MarshalJSON writes them back
	// as the server (and JSON.stringify in the JS client) would: the field
	// names, and how many of them came before "metas".
	order   []string
	metasAt int
}

// withMetas returns p with other metas and the same fields.
func (p Presence) withMetas(ms []Meta) Presence {
	p.Metas = ms
	return p
}

// MarshalJSON encodes the presence as the server sent it: its members in the
// order received ({"metas":[...]} first, then Fields by name, for a Presence
// built by hand).
func (p Presence) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	writeMetas := func() {
		b.WriteString(`"metas":[`)
		for i, m := range p.Metas {
			if i > 0 {
				b.WriteByte(',')
			}
			raw, _ := m.MarshalJSON()
			b.Write(raw)
		}
		b.WriteByte(']')
	}
	order, at := p.order, p.metasAt
	if len(order) != len(p.Fields) || at > len(order) {
		order, at = make([]string, 0, len(p.Fields)), 0
		for k := range p.Fields {
			order = append(order, k)
		}
		sort.Strings(order)
	}
	for i := 0; i <= len(order); i++ {
		if i == at {
			if i > 0 {
				b.WriteByte(',')
			}
			writeMetas()
		}
		if i == len(order) {
			break
		}
		if i > 0 || at == 0 {
			b.WriteByte(',')
		}
		k := order[i]
		v, ok := p.Fields[k]
		if !ok {
			v = json.RawMessage("null")
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Refs returns the phx_ref of every meta, in order.
func (p Presence) Refs() []string {
	out := make([]string, len(p.Metas))
	for i, m := range p.Metas {
		out[i] = m.Ref
	}
	return out
}

// State is a presence state: keys mapped to presences, kept in the order the
// official JavaScript client lists them. That order is the one of a JavaScript
// object: keys that are array indices ("0", "1", ... "4294967294") first in
// numeric order, then every other key in the order it was first added. Keeping
// it lets List and the Join / Leave events come out in exactly the JS order.
//
// The zero State is empty and ready to use. A State is immutable: the fold
// returns new States and never changes the ones it is given, so a State may be
// read from several goroutines at once.
type State struct{ d *stateData }

// Diff is a decoded presence_diff: the presences that joined and that left.
type Diff struct {
	Joins  State
	Leaves State
}

// Len reports the number of keys.
func (s State) Len() int {
	if s.d == nil {
		return 0
	}
	return len(s.d.m)
}

// Get returns the presence of key.
func (s State) Get(key string) (Presence, bool) {
	if s.d == nil {
		return Presence{}, false
	}
	e, ok := s.d.m[key]
	return e.p, ok
}

// Keys returns the keys in JS order.
func (s State) Keys() []string {
	out := make([]string, 0, s.Len())
	for k := range s.d.all() {
		out = append(out, k)
	}
	return out
}

// All iterates over the keys and their presences in JS order.
func (s State) All() iter.Seq2[string, Presence] { return s.d.all() }

// MarshalJSON encodes the state as a presence_state payload, keys in JS order.
func (s State) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for k, p := range s.d.all() {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		pb, _ := p.MarshalJSON()
		b.Write(pb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// List returns chooser(key, presence) for every key, in JS order, like the
// JS Presence.list(presences, chooser).
func List[T any](s State, chooser func(key string, p Presence) T) []T {
	out := make([]T, 0, s.Len())
	for k, p := range s.d.all() {
		out = append(out, chooser(k, p))
	}
	return out
}

// stateData is the mutable representation behind a State. It is mutated only
// while exactly one owner holds it (a fresh clone inside a pure function, or a
// Machine that has not handed it out since its last change).
//
// The JS order is kept without sorting: keys lists every key in the order it
// was added, with dead slots left by deletions (a slot is live when its
// entry's pos points back at it), compacted once they outnumber the live
// ones. Array-index keys, which JS lists first, are counted so that a state
// without any pays nothing for them.
type stateData struct {
	m       map[string]entry
	keys    []string
	indexed int // live keys that are array indices
}

type entry struct {
	p   Presence
	pos int   // slot in keys
	idx int64 // array index value of the key, or -1
}

func newData(n int) *stateData { return &stateData{m: make(map[string]entry, n)} }

func (d *stateData) clone() *stateData {
	if d == nil {
		return newData(0)
	}
	return &stateData{m: maps.Clone(d.m), keys: slices.Clone(d.keys), indexed: d.indexed}
}

func (d *stateData) get(key string) (Presence, bool) {
	if d == nil {
		return Presence{}, false
	}
	e, ok := d.m[key]
	return e.p, ok
}

// set stores p under key. An existing key keeps its place, a new one goes
// last, as an assignment to a JavaScript object property does.
func (d *stateData) set(key string, p Presence) {
	if e, ok := d.m[key]; ok {
		e.p = p
		d.m[key] = e
		return
	}
	e := entry{p: p, pos: len(d.keys), idx: arrayIndex(key)}
	if e.idx >= 0 {
		d.indexed++
	}
	d.m[key] = e
	d.keys = append(d.keys, key)
}

func (d *stateData) del(key string) {
	e, ok := d.m[key]
	if !ok {
		return
	}
	if e.idx >= 0 {
		d.indexed--
	}
	delete(d.m, key)
	if len(d.keys) > 32 && len(d.keys) > 2*len(d.m) {
		d.compact()
	}
}

func (d *stateData) compact() {
	live := make([]string, 0, len(d.m))
	for i, k := range d.keys {
		if e, ok := d.m[k]; ok && e.pos == i {
			e.pos = len(live)
			d.m[k] = e
			live = append(live, k)
		}
	}
	d.keys = live
}

// all iterates in JS order: array-index keys by value, then the others in
// the order they were added.
func (d *stateData) all() iter.Seq2[string, Presence] {
	return func(yield func(string, Presence) bool) {
		if d == nil {
			return
		}
		if d.indexed > 0 {
			type ik struct {
				idx int64
				key string
			}
			idx := make([]ik, 0, d.indexed)
			for k, e := range d.m {
				if e.idx >= 0 {
					idx = append(idx, ik{e.idx, k})
				}
			}
			slices.SortFunc(idx, func(a, b ik) int { return cmp.Compare(a.idx, b.idx) })
			for _, x := range idx {
				if !yield(x.key, d.m[x.key].p) {
					return
				}
			}
		}
		for i, k := range d.keys {
			if e, ok := d.m[k]; ok && e.pos == i && e.idx < 0 {
				if !yield(k, e.p) {
					return
				}
			}
		}
	}
}

// arrayIndex returns the value of key when JavaScript treats it as an array
// index (a canonical decimal integer below 2^32-1), else -1. Such keys are
// listed before all others by every JavaScript object.
func arrayIndex(key string) int64 {
	if len(key) == 0 || len(key) > 10 || (len(key) > 1 && key[0] == '0') {
		return -1
	}
	var v int64
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int64(c-'0')
	}
	if v > 4294967294 {
		return -1
	}
	return v
}

// refKey is the identity of a phx_ref under JavaScript's === after a JSON
// round trip: strings and numbers by value, null, true and false by kind, a
// missing member equal only to another missing one, and objects or arrays
// equal to nothing.
type refKey struct {
	kind uint8
	s    string
}

const (
	refMissing uint8 = iota
	refNull
	refFalse
	refTrue
	refNumber
	refStr
	refOpaque
)

func (r refKey) matches(o refKey) bool { return r.kind != refOpaque && r == o }

func refIn(r refKey, metas []Meta) bool {
	for i := range metas {
		if metas[i].ref.matches(r) {
			return true
		}
	}
	return false
}

// without returns the metas of ms whose ref is not among by's, in a new slice
// (nil when none are left), keeping the JS filter semantics: duplicates are
// kept or dropped together.
func without(ms, by []Meta) []Meta {
	var out []Meta
	for _, m := range ms {
		if !refIn(m.ref, by) {
			out = append(out, m)
		}
	}
	return out
}
