package phxtest

import (
	"encoding/json"
	"testing"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`{"b":1,"a":[1, 2]}`, `{"a":[1,2],"b":1}`},
		{`{"a":1,"b":{"d":null,"c":"x"}}`, `{"a":1,"b":{"c":"x","d":null}}`},
		{`"\u00e9 \ud83c\udf89 \n\t\"\\\/ \u0000 end"`, `"é 🎉 \n\t\"\\/ \u0000 end"`},
		{"\"\u2028\u2029 </script> & <b>\"", "\"\u2028\u2029 </script> & <b>\""},
		{`"\u2028"`, "\"\u2028\""},
		{`"\\u2028"`, `"\\u2028"`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`12345678901234567890`, `12345678901234567890`},
		{`{"n":1.50}`, `{"n":1.50}`},
		{`not json`, `not json`},
		{`[{"k":"v"},{"b":[],"a":{}}]`, `[{"k":"v"},{"a":{},"b":[]}]`},
	} {
		if got := string(Canonical(json.RawMessage(tc.in))); got != tc.want {
			t.Errorf("Canonical(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestIsCanonicalAgreesWithReencoding(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{}`, `[]`, `{"a":1,"b":2}`, `{"b":1,"a":2}`, `{"a":{"z":1,"y":2}}`,
		`["x","y"]`, `{"a":"\n"}`, `{"a" :1}`, `{"a":1,"a":1}`, `{"ab":1,"b":2}`, `{"b":1,"ab":2}`, `"é"`} {
		fast := isCanonical([]byte(in))
		slow := string(Canonical(json.RawMessage(in+" "))) == in // the space defeats the fast path
		if fast && !slow {
			t.Errorf("%s: fast path says canonical, re-encoding changes it", in)
		}
	}
}

func TestDecodeTextV2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		ok   bool
		want [5]string
	}{
		{`["1","2","room:a","echo",{"a":[1,"]"]}]`, true, [5]string{`"1"`, `"2"`, `"room:a"`, `"echo"`, `{"a":[1,"]"]}`}},
		{` [ 1 , null , null , 123 , "x\"]" , "extra" ] `, true, [5]string{`1`, `null`, `null`, `123`, `"x\"]"`}},
		{`["1","2","t","e"]`, false, [5]string{}},
		{`["1","2","t","e",{]`, false, [5]string{}},
		{`["1","2","t","e",{}] x`, false, [5]string{}},
		{`["1","2","t","e",{},]`, false, [5]string{}},
		{`{"topic":"t"}`, false, [5]string{}},
		{``, false, [5]string{}},
		{`[tru,"2","t","e",{}]`, false, [5]string{}},
	} {
		f, err := decodeText(vsn2, []byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		got := [5]string{string(f.joinRef), string(f.ref), string(f.topic), string(f.event), string(f.payload)}
		if got != tc.want {
			t.Errorf("%s: got %q", tc.in, got)
		}
	}
}
