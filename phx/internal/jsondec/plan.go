package jsondec

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

type kind uint8

const (
	kSlow kind = iota // not decoded here: give up if the input carries it
	kString
	kBool
	kInt
	kUint
	kFloat
	kRaw
	kPtr
	kSlice
	kStruct
)

type field struct {
	name string
	off  uintptr
	p    *plan
	idx  int // index in the struct, used only while building
}

type plan struct {
	typ    reflect.Type
	kind   kind
	bits   int // size in bits of int, uint and float kinds
	elem   *plan
	fields []field
}

var (
	plans           sync.Map // reflect.Type -> *plan
	rawType         = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func planFor(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	building := map[reflect.Type]*plan{}
	p := build(t, building)
	for bt, bp := range building {
		plans.LoadOrStore(bt, bp)
	}
	return p
}

func build(t reflect.Type, building map[reflect.Type]*plan) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	if p, ok := building[t]; ok {
		return p // a recursive type: filled in by the caller up the stack
	}
	p := &plan{typ: t}
	building[t] = p
	if t == rawType {
		p.kind = kRaw
		return p
	}
	// A pointer's methods are those of its element, whose plan checks them.
	if t.Kind() != reflect.Pointer && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
		t.Implements(textType) || reflect.PointerTo(t).Implements(textType)) {
		return p
	}
	switch t.Kind() {
	case reflect.String:
		p.kind = kString
	case reflect.Bool:
		p.kind = kBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind, p.bits = kInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.kind, p.bits = kUint, t.Bits()
	case reflect.Float32, reflect.Float64:
		p.kind, p.bits = kFloat, t.Bits()
	case reflect.Pointer:
		p.kind = kPtr
		p.elem = build(t.Elem(), building)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return p // base64 text, or a named byte slice: encoding/json's business
		}
		p.kind = kSlice
		p.elem = build(t.Elem(), building)
	case reflect.Struct:
		if fields, ok := structFields(t, building); ok {
			p.kind = kStruct
			p.fields = fields
		}
	}
	return p
}

// structFields lists the fields encoding/json would decode into, or reports
// false when its rules for them are more than a flat list of exported fields
// with plain ASCII names (embedding, ",string", clashing names).
func structFields(t reflect.Type, building map[reflect.Type]*plan) ([]field, bool) {
	var fields []field
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, false
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		for o := range strings.SplitSeq(opts, ",") {
			if o == "string" {
				return nil, false
			}
		}
		if name == "" {
			name = sf.Name
		}
		if !plainName(name) || seen[name] {
			return nil, false
		}
		seen[name] = true
		fields = append(fields, field{name: name, off: sf.Offset, idx: i})
	}
	// Plans are built after the names are checked so that a refused struct
	// leaves no half-built element plans behind it.
	for j := range fields {
		fields[j].p = build(t.Field(fields[j].idx).Type, building)
	}
	return fields, true
}

// plainName reports whether a field name is one whose matching rules are
// simple: ASCII letters, digits, '_' and '-' only (encoding/json folds
// non-ASCII names in ways bytes.EqualFold does not mirror).
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
