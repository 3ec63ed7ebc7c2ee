package wire

import (
	"encoding/json"
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
