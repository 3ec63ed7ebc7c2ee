package wire

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidate compares the payload scanner with encoding/json: both must
// agree on every input that is valid UTF-8 (encoding/json does not check
// UTF-8, this package does).
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2.5e-3,-0,true,false,null,"x\u00e9\n"]}`, `"\ud800"`, `[1,]`,
		`{"a" : { "b" :[ ] } }`, `01`, `1.`, `-`, `"\x"`, `{"a":1}x`, "\"\x01\"", `[[[[[]]]]]`, `{"a":"b","c":{"d":[{}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := validJSON(b)
		std := json.Valid(b)
		if err == nil && !std {
			t.Fatalf("accepted %q, which encoding/json rejects", b)
		}
		if err != nil && std && utf8.Valid(b) {
			t.Fatalf("rejected %q (%v), which encoding/json accepts", b, err)
		}
	})
}

// FuzzQuote checks that strings are written as JSON that reads back as the
// same string.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "room:lobby", "a\"b\\c\n\t\x00\x1f\x7f", "é🎉\u2028<>&", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := appendQuoted(nil, s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("quoted invalid UTF-8 %q", s)
			}
			return
		}
		var back string
		if err != nil || json.Unmarshal(q, &back) != nil || back != s {
			t.Fatalf("%q -> %s -> %q (%v)", s, q, back, err)
		}
		if string(appendUnquoted(nil, q)) != s {
			t.Fatalf("appendUnquoted(%s) = %q", q, appendUnquoted(nil, q))
		}
	})
}

// TestMasks checks the word-at-a-time byte classes against byte-by-byte
// definitions, on words built from the bytes each class is sensitive to.
func TestMasks(t *testing.T) {
	t.Parallel()
	pool := []byte{0, 0x1f, ' ', '!', '"', '#', '/', '0', '5', '9', ':', '[', '\\', ']', 'a', 0x7f, 0x80, 0xb9, 0xba, 0xff}
	lowest := func(pred func(c byte) bool, w [8]byte) uint64 {
		for k, c := range w {
			if pred(c) {
				return 0x80 << (8 * k)
			}
		}
		return 0
	}
	var w [8]byte
	seed := uint32(1)
	for range 200000 {
		for k := range w {
			seed = seed*1664525 + 1013904223
			w[k] = pool[int(seed>>16)%len(pool)]
		}
		x := binary.LittleEndian.Uint64(w[:])
		if got, want := nonDigitMask(x)&-nonDigitMask(x), lowest(func(c byte) bool { return c < '0' || c > '9' }, w); got != want {
			t.Fatalf("nonDigitMask(%q) lowest bit %#x, want %#x", w, got, want)
		}
		if got, want := quoteMask(x)&-quoteMask(x), lowest(func(c byte) bool { return c == '"' }, w); got != want {
			t.Fatalf("quoteMask(%q) lowest bit %#x, want %#x", w, got, want)
		}
		if got, want := specialMask(x)&-specialMask(x), lowest(func(c byte) bool { return !strPlain[c] }, w); got != want {
			t.Fatalf("specialMask(%q) lowest bit %#x, want %#x", w, got, want)
		}
	}
}

// TestDeepNesting crosses the 64-level words of skipComposite's kind stack
// and the end of its fixed part, with objects and arrays mixed so that a
// level restored with the wrong kind is caught by the closing brackets.
func TestDeepNesting(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{1, 63, 64, 65, 127, 128, 129, 320, 321, 400, maxDepth} {
		var open, closeB []byte
		for d := range depth {
			if d%3 == 1 {
				open = append(open, `{"k":`...)
				closeB = append([]byte{'}'}, closeB...)
			} else {
				open = append(open, '[')
				closeB = append([]byte{']'}, closeB...)
			}
		}
		good := append(append(append([]byte{}, open...), '1'), closeB...)
		if err := validJSON(good); err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		// Swap the outermost closing bracket's kind at each depth word.
		for _, k := range []int{0, depth / 2, depth - 1} {
			bad := append([]byte{}, good...)
			p := len(bad) - 1 - k
			bad[p] ^= '}' ^ ']'
			if validJSON(bad) == nil || json.Valid(bad) {
				t.Fatalf("depth %d: accepted wrong bracket at %d", depth, p)
			}
		}
	}
	deep := []byte(strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1))
	if validJSON(deep) == nil {
		t.Fatalf("accepted nesting beyond %d", maxDepth)
	}
}
