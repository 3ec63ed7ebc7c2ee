package presence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// DecodeState reads a presence_state payload: {key: {"metas": [meta, ...]}, ...}.
// The payload is copied, so the caller may reuse its buffer. Keys keep the
// order of the payload (a repeated key takes the last value at its first
// place, as JSON.parse does). Every presence needs a "metas" array of objects;
// anything else is an error matching ErrMalformed, and nothing is returned.
func DecodeState(payload json.RawMessage) (State, error) {
	b, err := validObject(payload, "presence_state")
	if err != nil {
		return State{}, err
	}
	d, err := decodePresences(b, "presence_state")
	if err != nil {
		return State{}, err
	}
	return State{d}, nil
}

// DecodeDiff reads a presence_diff payload: {"joins": {...}, "leaves": {...}},
// each side shaped like a presence_state. A side that is missing or null is
// empty. The payload is copied; errors match ErrMalformed.
func DecodeDiff(payload json.RawMessage) (Diff, error) {
	b, err := validObject(payload, "presence_diff")
	if err != nil {
		return Diff{}, err
	}
	var diff Diff
	err = members(b, func(tok, val []byte) error {
		var (
			side *State
			key  string
		)
		switch {
		case keyIs(tok, "joins"):
			side, key = &diff.Joins, "joins"
		case keyIs(tok, "leaves"):
			side, key = &diff.Leaves, "leaves"
		default:
			return nil
		}
		if string(val) == "null" {
			*side = State{}
			return nil
		}
		if val[0] != '{' {
			return malformed("presence_diff: %s is not an object", key)
		}
		d, err := decodePresences(val, "presence_diff "+key)
		if err != nil {
			return err
		}
		*side = State{d}
		return nil
	})
	if err != nil {
		return Diff{}, err
	}
	return diff, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// validObject checks that payload is one JSON object and returns a private
// copy with surrounding whitespace removed; the scanners below rely on it
// being valid.
func validObject(payload json.RawMessage, what string) ([]byte, error) {
	b := payload[skipWS(payload, 0):]
	for len(b) > 0 && isWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if !json.Valid(b) {
		return nil, malformed("%s: invalid JSON", what)
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, malformed("%s: not an object", what)
	}
	return bytes.Clone(b), nil
}

func decodePresences(obj []byte, what string) (*stateData, error) {
	d := newData(0)
	err := members(obj, func(tok, val []byte) error {
		key := unquote(tok)
		p, err := decodePresence(val)
		if err != nil {
			return malformed("%s: key %q: %v", what, key, err)
		}
		d.set(key, p)
		return nil
	})
	return d, err
}

func decodePresence(val []byte) (Presence, error) {
	if val[0] != '{' {
		return Presence{}, fmt.Errorf("presence is not an object")
	}
	var (
		p        Presence
		sawMetas bool
	)
	err := members(val, func(tok, v []byte) error {
		if !keyIs(tok, "metas") {
			key := unquote(tok)
			if p.Fields == nil {
				p.Fields = make(map[string]json.RawMessage)
			}
			if _, dup := p.Fields[key]; !dup {
				p.order = append(p.order, key)
			}
			p.Fields[key] = v
			return nil
		}
		if v[0] != '[' {
			return fmt.Errorf("metas is not an array")
		}
		if !sawMetas {
			p.metasAt = len(p.order)
		}
		sawMetas = true
		p.Metas = p.Metas[:0:0]
		return elements(v, func(e []byte) error {
			m, err := decodeMeta(e)
			if err != nil {
				return err
			}
			p.Metas = append(p.Metas, m)
			return nil
		})
	})
	if err == nil && !sawMetas {
		err = fmt.Errorf("no metas")
	}
	return p, err
}

func decodeMeta(obj []byte) (Meta, error) {
	if obj[0] != '{' {
		return Meta{}, fmt.Errorf("meta is not an object")
	}
	m := Meta{Raw: obj}
	err := members(obj, func(tok, v []byte) error {
		switch {
		case keyIs(tok, "phx_ref"):
			m.ref = refOf(v)
			m.Ref = refString(m.ref)
		case keyIs(tok, "phx_ref_prev"):
			m.prev = refOf(v)
			m.PrevRef = refString(m.prev)
		}
		return nil
	})
	return m, err
}

func refString(r refKey) string {
	if r.kind == refStr {
		return r.s
	}
	return ""
}

func refOf(v []byte) refKey {
	switch v[0] {
	case '"':
		return refKey{kind: refStr, s: unquote(v)}
	case 'n':
		return refKey{kind: refNull}
	case 't':
		return refKey{kind: refTrue}
	case 'f':
		return refKey{kind: refFalse}
	case '{', '[':
		return refKey{kind: refOpaque}
	}
	// A number: JavaScript compares the parsed double, so 1, 1.0 and 1e0 are
	// one ref (and an overflow is Infinity, as in JS).
	f, _ := strconv.ParseFloat(string(v), 64)
	if f == 0 {
		f = 0 // -0 === 0
	}
	return refKey{kind: refNumber, s: strconv.FormatFloat(f, 'g', -1, 64)}
}

// unquote decodes a JSON string token; the fast path covers the common key
// with no escapes.
func unquote(tok []byte) string {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(tok, &s) // tok is a valid JSON string
	return s
}

// The scanners below walk JSON already checked by json.Valid, so they only
// need to find the bounds of each value.

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// keyIs reports whether the string token tok decodes to name, without
// allocating in the common case of a token with no escapes.
func keyIs(tok []byte, name string) bool {
	if bytes.IndexByte(tok, '\\') >= 0 {
		return unquote(tok) == name
	}
	return len(tok) == len(name)+2 && string(tok[1:len(tok)-1]) == name
}

// members calls fn with each key (as its raw string token) and raw value of
// the object obj, in order.
func members(obj []byte, fn func(tok, val []byte) error) error {
	i := skipWS(obj, 1)
	for i < len(obj) && obj[i] != '}' {
		k := skipString(obj, i)
		key := obj[i:k]
		i = skipWS(obj, k)
		i = skipWS(obj, i+1) // ':'
		j := skipValue(obj, i)
		if err := fn(key, obj[i:j]); err != nil {
			return err
		}
		i = skipWS(obj, j)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
	}
	return nil
}

// elements calls fn with each raw element of the array arr.
func elements(arr []byte, fn func(val []byte) error) error {
	i := skipWS(arr, 1)
	for i < len(arr) && arr[i] != ']' {
		j := skipValue(arr, i)
		if err := fn(arr[i:j]); err != nil {
			return err
		}
		i = skipWS(arr, j)
		if i < len(arr) && arr[i] == ',' {
			i = skipWS(arr, i+1)
		}
	}
	return nil
}
