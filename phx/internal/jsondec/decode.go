package jsondec

import (
	"encoding/json"
	"reflect"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds nesting; deeper input is left to encoding/json, which has
// its own (larger) limit, so giving up here never changes a result.
const maxDepth = 512

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
