package jsondec

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds nesting; deeper input is left to encoding/json, which has
// its own (larger) limit, so giving up here never changes a result.
const maxDepth = 512

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

// Unmarshal decodes data into v (a non-nil pointer) exactly as
// encoding/json.Unmarshal would, and reports true; or it reports false,
// having possibly written part of *v, for the caller to decode a fresh value
// with encoding/json. Malformed input is always reported false.
func Unmarshal(data []byte, v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	return decode(data, planFor(rv.Type().Elem()), rv.UnsafePointer())
}

// Into is Unmarshal for a *T known at compile time. Unlike Unmarshal it
// does not make *v escape, so a T the caller keeps on its stack stays there:
// on small payloads that saves an allocation as large as the decoding.
func Into[T any](data []byte, v *T) bool {
	if v == nil {
		return false
	}
	return decode(data, planFor(reflect.TypeFor[T]()), unsafe.Pointer(v))
}

func decode(data []byte, p *plan, ptr unsafe.Pointer) bool {
	d := decoder{data: data}
	d.ws()
	if !d.value(p, ptr, 0) {
		return false
	}
	d.ws()
	return d.i == len(d.data)
}

// sliceHeader is the layout of every Go slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

type decoder struct {
	data []byte
	i    int
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) literal(s string) bool {
	if len(d.data)-d.i < len(s) || string(d.data[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

func (d *decoder) value(p *plan, ptr unsafe.Pointer, depth int) bool {
	if d.i >= len(d.data) || depth > maxDepth {
		return false
	}
	c := d.data[d.i]
	if c == 'n' {
		if !d.literal("null") {
			return false
		}
		switch p.kind {
		case kPtr:
			*(*unsafe.Pointer)(ptr) = nil
		case kSlice:
			*(*sliceHeader)(ptr) = sliceHeader{}
		case kRaw:
			m := (*json.RawMessage)(ptr)
			*m = append((*m)[:0], "null"...)
		case kSlow:
			return false
		}
		return true
	}
	switch p.kind {
	case kString:
		if c != '"' {
			return false
		}
		s, ok := d.str()
		if ok {
			*(*string)(ptr) = s
		}
		return ok
	case kBool:
		switch {
		case c == 't' && d.literal("true"):
			*(*bool)(ptr) = true
		case c == 'f' && d.literal("false"):
			*(*bool)(ptr) = false
		default:
			return false
		}
		return true
	case kInt:
		return d.int(p, ptr)
	case kUint:
		return d.uint(p, ptr)
	case kFloat:
		return d.float(p, ptr)
	case kRaw:
		start := d.i
		if !d.skip(depth) {
			return false
		}
		m := (*json.RawMessage)(ptr)
		*m = append((*m)[:0], d.data[start:d.i]...)
		return true
	case kPtr:
		pp := (*unsafe.Pointer)(ptr)
		if *pp == nil {
			*pp = reflect.New(p.elem.typ).UnsafePointer()
		}
		return d.value(p.elem, *pp, depth+1)
	case kSlice:
		if c != '[' {
			return false
		}
		return d.slice(p, ptr, depth)
	case kStruct:
		if c != '{' {
			return false
		}
		return d.object(p, ptr, depth)
	}
	return false
}

// slice mirrors encoding/json's array decoding, including its reuse of the
// existing backing array: elements within the old capacity are decoded into
// what is already there. It works on a heap copy of the slice header, put
// back at the end, rather than through reflect.NewAt on ptr: that would make
// the compiler move every value decoded by Into to the heap.
func (d *decoder) slice(p *plan, ptr unsafe.Pointer, depth int) bool {
	h := (*sliceHeader)(ptr)
	tmp := reflect.New(p.typ)
	*(*sliceHeader)(tmp.UnsafePointer()) = *h
	defer func() { *h = *(*sliceHeader)(tmp.UnsafePointer()) }()
	v := tmp.Elem()
	d.i++ // '['
	d.ws()
	n := 0
	if d.i < len(d.data) && d.data[d.i] == ']' {
		d.i++
	} else {
		for {
			if n >= v.Cap() {
				v.Grow(1)
			}
			if n >= v.Len() {
				v.SetLen(n + 1)
			}
			if !d.value(p.elem, v.Index(n).Addr().UnsafePointer(), depth+1) {
				return false
			}
			n++
			d.ws()
			if d.i >= len(d.data) {
				return false
			}
			c := d.data[d.i]
			d.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return false
			}
			d.ws()
		}
	}
	if n < v.Len() {
		v.SetLen(n)
	}
	if n == 0 {
		v.Set(reflect.MakeSlice(p.typ, 0, 0))
	}
	return true
}

func (d *decoder) object(p *plan, ptr unsafe.Pointer, depth int) bool {
	d.i++ // '{'
	d.ws()
	if d.i < len(d.data) && d.data[d.i] == '}' {
		d.i++
		return true
	}
	for {
		if d.i >= len(d.data) || d.data[d.i] != '"' {
			return false
		}
		key, ok := d.key()
		if !ok {
			return false
		}
		d.ws()
		if d.i >= len(d.data) || d.data[d.i] != ':' {
			return false
		}
		d.i++
		d.ws()
		var f *field
		for j := range p.fields {
			if p.fields[j].name == string(key) {
				f = &p.fields[j]
				break
			}
		}
		if f == nil {
			for j := range p.fields {
				if equalFoldASCII(p.fields[j].name, key) {
					return false // encoding/json would decode it; leave that to it
				}
			}
			if !d.skip(depth + 1) {
				return false
			}
		} else if !d.value(f.p, unsafe.Add(ptr, f.off), depth+1) {
			return false
		}
		d.ws()
		if d.i >= len(d.data) {
			return false
		}
		c := d.data[d.i]
		d.i++
		if c == '}' {
			return true
		}
		if c != ',' {
			return false
		}
		d.ws()
	}
}

// key reads an object key; keys with escapes or non-ASCII bytes are refused,
// as their matching would need encoding/json's own unescaping and folding.
func (d *decoder) key() ([]byte, bool) {
	start := d.i + 1
	for j := start; j < len(d.data); j++ {
		c := d.data[j]
		if c == '"' {
			d.i = j + 1
			return d.data[start:j], true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, false
		}
	}
	return nil, false
}

func equalFoldASCII(name string, key []byte) bool {
	if len(name) != len(key) {
		return false
	}
	for i := range len(key) {
		a, b := name[i], key[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// str reads a string value at d.i (a '"'). Invalid UTF-8 and lone
// surrogates, which encoding/json replaces by U+FFFD, are refused instead.
func (d *decoder) str() (string, bool) {
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.data); j++ {
		c := d.data[j]
		switch {
		case c == '"':
			s := d.data[start:j]
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			d.i = j + 1
			return string(s), true
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

func (d *decoder) unescape(start int) (string, bool) {
	b := make([]byte, 0, 32)
	j := start
	for j < len(d.data) {
		c := d.data[j]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", false
			}
			d.i = j + 1
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(d.data) {
			return "", false
		}
		switch e := d.data[j+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(d.data[j+2:])
			if r < 0 {
				return "", false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				if len(d.data)-j < 6 || d.data[j] != '\\' || d.data[j+1] != 'u' {
					return "", false
				}
				r2 := hex4(d.data[j+2:])
				dec := utf16.DecodeRune(r, r2)
				if r2 < 0 || dec == utf8.RuneError {
					return "", false
				}
				r = dec
				j += 6
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number reads a JSON number at d.i and reports whether it is an integer
// literal (no fraction or exponent).
func (d *decoder) number() (s []byte, integer, ok bool) {
	start := d.i
	j := d.i
	if j < len(d.data) && d.data[j] == '-' {
		j++
	}
	if j >= len(d.data) {
		return nil, false, false
	}
	switch c := d.data[j]; {
	case c == '0':
		j++
	case '1' <= c && c <= '9':
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
	default:
		return nil, false, false
	}
	integer = true
	if j < len(d.data) && d.data[j] == '.' {
		integer = false
		j++
		k := j
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	if j < len(d.data) && (d.data[j] == 'e' || d.data[j] == 'E') {
		integer = false
		j++
		if j < len(d.data) && (d.data[j] == '+' || d.data[j] == '-') {
			j++
		}
		k := j
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	d.i = j
	return d.data[start:j], integer, true
}

func (d *decoder) int(p *plan, ptr unsafe.Pointer) bool {
	s, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(s), len(s)), 10, 64)
	if err != nil {
		return false
	}
	if p.bits < 64 && (n < -1<<(p.bits-1) || n > 1<<(p.bits-1)-1) {
		return false
	}
	switch p.bits {
	case 8:
		*(*int8)(ptr) = int8(n)
	case 16:
		*(*int16)(ptr) = int16(n)
	case 32:
		*(*int32)(ptr) = int32(n)
	default:
		*(*int64)(ptr) = n
	}
	return true
}

func (d *decoder) uint(p *plan, ptr unsafe.Pointer) bool {
	s, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	n, err := strconv.ParseUint(unsafe.String(unsafe.SliceData(s), len(s)), 10, 64)
	if err != nil {
		return false
	}
	if p.bits < 64 && n > 1<<p.bits-1 {
		return false
	}
	switch p.bits {
	case 8:
		*(*uint8)(ptr) = uint8(n)
	case 16:
		*(*uint16)(ptr) = uint16(n)
	case 32:
		*(*uint32)(ptr) = uint32(n)
	default:
		*(*uint64)(ptr) = n
	}
	return true
}

func (d *decoder) float(p *plan, ptr unsafe.Pointer) bool {
	s, _, ok := d.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), p.bits)
	if err != nil {
		return false
	}
	if p.bits == 32 {
		*(*float32)(ptr) = float32(f)
	} else {
		*(*float64)(ptr) = f
	}
	return true
}

// skip moves past one value, checking its syntax as encoding/json would.
func (d *decoder) skip(depth int) bool {
	if d.i >= len(d.data) || depth > maxDepth {
		return false
	}
	switch c := d.data[d.i]; c {
	case '"':
		return d.skipString()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '[', '{':
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		d.i++
		d.ws()
		if d.i < len(d.data) && d.data[d.i] == end {
			d.i++
			return true
		}
		for {
			if c == '{' {
				if d.i >= len(d.data) || d.data[d.i] != '"' || !d.skipString() {
					return false
				}
				d.ws()
				if d.i >= len(d.data) || d.data[d.i] != ':' {
					return false
				}
				d.i++
				d.ws()
			}
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			if d.i >= len(d.data) {
				return false
			}
			n := d.data[d.i]
			d.i++
			if n == end {
				return true
			}
			if n != ',' {
				return false
			}
			d.ws()
		}
	default:
		_, _, ok := d.number()
		return ok
	}
}

// skipString moves past a string, checking escapes; like encoding/json's
// scanner it accepts any byte from 0x20 up, valid UTF-8 or not.
func (d *decoder) skipString() bool {
	for j := d.i + 1; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(d.data) {
				return false
			}
			switch d.data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if hex4(d.data[j+2:]) < 0 {
					return false
				}
				j += 5
			default:
				return false
			}
		}
	}
	return false
}
