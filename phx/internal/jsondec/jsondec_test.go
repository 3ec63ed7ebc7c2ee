package jsondec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

type blast struct {
	I     int    `json:"i"`
	Body  string `json:"body"`
	N     int    `json:"n"`
	Bytes int64  `json:"bytes"`
}

type inner struct {
	A  string  `json:"a"`
	B  *int    `json:"b,omitempty"`
	F  float32 `json:"f"`
	Ok bool    `json:"ok"`
}

type node struct {
	V    int   `json:"v"`
	Next *node `json:"next"`
}

type rich struct {
	S    string          `json:"s"`
	PS   *string         `json:"ps"`
	I8   int8            `json:"i8"`
	I16  int16           `json:"i16"`
	I32  int32           `json:"i32"`
	U    uint            `json:"u"`
	U8   uint8           `json:"u8"`
	U64  uint64          `json:"u64"`
	F    float64         `json:"f"`
	B    bool            `json:"b"`
	Raw  json.RawMessage `json:"raw"`
	PRaw *json.RawMessage
	In   inner    `json:"in"`
	PIn  *inner   `json:"pin"`
	Ins  []inner  `json:"ins"`
	PIns []*inner `json:"pins"`
	Strs []string `json:"strs"`
	PP   **int    `json:"pp"`
	Skip int      `json:"-"`
	//lint:ignore SA5008 a field named "-" (encoding/json's "-," form) is what this case checks
	Dash  int `json:"-,"`
	NoTag int
	Any   any            `json:"any"`
	Map   map[string]int `json:"map"`
	Bin   []byte         `json:"bin"`
	Arr   [2]int         `json:"arr"`
	Node  *node          `json:"node"`
	//lint:ignore U1000 unexported fields are never decoded: this one checks it
	hidden int
}

type embedded struct {
	inner
	X int `json:"x"`
}

type stringOpt struct {
	N int `json:"n,string"`
}

type folds struct {
	Name  string `json:"name"`
	Other int    `json:"Other"`
}

var payloads = []string{
	`{"i":12345,"body":"` + strings.Repeat("x", 80) + `","n":1,"bytes":100}`,
	`{}`, `null`, ` { } `, `[]`, `"x"`, `1`, `true`,
	`{"i":1,"i":2}`, `{"i":null}`, `{"I":3}`, `{"BODY":"x"}`, `{"unknown":{"a":[1,2,{"b":null}]},"i":7}`,
	`{"i":1.5}`, `{"i":1e2}`, `{"i":"1"}`, `{"i":-0}`, `{"i":9223372036854775807}`, `{"i":9223372036854775808}`,
	`{"i8":127,"i16":-32768,"i32":2147483647,"u":0,"u8":255,"u64":18446744073709551615}`,
	`{"i8":128}`, `{"u8":256}`, `{"u":-1}`, `{"u":-0}`, `{"u64":18446744073709551616}`,
	`{"f":1.5e300,"in":{"f":3.4e38}}`, `{"f":1e400}`, `{"in":{"f":1e39}}`, `{"f":-0.0}`, `{"f":0.1E-5}`,
	`{"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00"}`, `{"s":"\ud83d"}`, `{"s":"\ude00x"}`, `{"s":"é中"}`,
	"{\"s\":\"\xff\"}", `{"s":"\u0000"}`,
	`{"ps":"p","pp":5,"b":true}`, `{"ps":null,"pp":null}`,
	`{"raw":{"x": [1, 2]},"PRaw":[ 1 ]}`, `{"raw":null,"PRaw":null}`, `{"raw":"s"}`,
	`{"in":{"a":"x","b":2,"f":1.25,"ok":false}}`, `{"pin":{"a":"y"}}`, `{"pin":null}`,
	`{"ins":[{"a":"1"},{"a":"2","b":3}]}`, `{"ins":[]}`, `{"ins":null}`, `{"pins":[null,{"a":"z"}]}`,
	`{"strs":["a","b","c"]}`, `{"strs":["a"]}`, `{"strs":[1]}`,
	`{"Skip":1,"-":2,"NoTag":3,"notag":4,"hidden":5}`,
	`{"any":{"x":1}}`, `{"map":{"a":1}}`, `{"bin":"aGk="}`, `{"arr":[1,2]}`,
	`{"node":{"v":1,"next":{"v":2,"next":null}}}`,
	`{"x":1,"a":"e"}`, `{"n":"5"}`, `{"a":1}`, `{"name":"n","Other":1}`, `{"NAME":"n"}`, `{"other":2}`,
	`{"\u0069":5}`, `{"ſ":1}`, `{"b":"x"}`, `{"s":1}`, `{"b":1}`, `{"in":[]}`, `{"ins":{}}`,
}

// fills give a pre-filled value for each target type, so that merging into
// existing values (which encoding/json does) is compared too.
func prefilled[T any]() T {
	var v T
	switch p := any(&v).(type) {
	case *blast:
		*p = blast{I: 1, Body: "old", N: 2, Bytes: 3}
	case *rich:
		n := 9
		pn := &n
		s := "old"
		raw := json.RawMessage(`"old"`)
		*p = rich{S: "s", PS: &s, I8: 1, Raw: json.RawMessage(`[0]`), PRaw: &raw, PIn: &inner{A: "old", F: 2},
			Ins: append(make([]inner, 1, 4), inner{A: "x"}), PIns: []*inner{{A: "q"}}, Strs: []string{"o1", "o2", "o3"},
			PP: &pn, Any: 1, Map: map[string]int{"k": 1}, Node: &node{V: 8}}
	case *inner:
		n := 4
		*p = inner{A: "a", B: &n, F: 1}
	case *[]inner:
		*p = []inner{{A: "1"}, {A: "2"}}
	case *map[string]int:
		*p = map[string]int{"z": 1}
	}
	return v
}

func compare[T any](t testing.TB, data []byte) (fresh, filled bool) {
	t.Helper()
	for i, fill := range []bool{false, true} {
		var a, b T
		if fill {
			a, b = prefilled[T](), prefilled[T]()
		}
		ok := Unmarshal(data, &a)
		err := json.Unmarshal(data, &b)
		if ok {
			if err != nil {
				t.Fatalf("%T from %q (prefilled %v): fast path succeeded, encoding/json says %v", a, data, fill, err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%T from %q (prefilled %v):\nfast  %#v\njson  %#v", a, data, fill, a, b)
			}
		}
		if i == 0 {
			fresh = ok
		} else {
			filled = ok
		}
	}
	return fresh, filled
}

func compareAll(t testing.TB, data []byte) {
	compare[blast](t, data)
	compare[rich](t, data)
	compare[inner](t, data)
	compare[[]inner](t, data)
	compare[*blast](t, data)
	compare[embedded](t, data)
	compare[stringOpt](t, data)
	compare[folds](t, data)
	compare[string](t, data)
	compare[*int](t, data)
	compare[json.RawMessage](t, data)
	compare[map[string]int](t, data)
	compare[any](t, data)
	compare[[]float64](t, data)
}

func TestDifferential(t *testing.T) {
	t.Parallel()
	for _, p := range payloads {
		compareAll(t, []byte(p))
	}
}

// TestFastPathTaken pins the shapes that must not fall back to
// encoding/json: a fast path that silently gave up on them would still pass
// the differential test.
func TestFastPathTaken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		data string
		dec  func([]byte) (bool, bool)
	}{
		{payloads[0], func(b []byte) (bool, bool) { return compare[blast](t, b) }},
		{`{"in":{"a":"x","b":2,"f":1.25,"ok":true},"pin":{"a":"y"},"ins":[{"a":"1"},{"a":"2","b":3}],"pins":[null,{"a":"z"}],"ps":"p","pp":5,"raw":{"x":[1,2]},"PRaw":[1],"node":{"v":1,"next":{"v":2}},"unknown":[{"q":"\u00e9"}]}`,
			func(b []byte) (bool, bool) { return compare[rich](t, b) }},
		{`[{"a":"1"},{"a":"2","b":3}]`, func(b []byte) (bool, bool) { return compare[[]inner](t, b) }},
		{payloads[0], func(b []byte) (bool, bool) { return compare[*blast](t, b) }},
		{`{"x": [1, {"y": null}]}`, func(b []byte) (bool, bool) { return compare[json.RawMessage](t, b) }},
		{`{"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00"}`, func(b []byte) (bool, bool) { return compare[rich](t, b) }},
		{`null`, func(b []byte) (bool, bool) { return compare[blast](t, b) }},
	}
	for _, c := range cases {
		if fresh, filled := c.dec([]byte(c.data)); !fresh || !filled {
			t.Errorf("%s: fast path not taken (fresh %v, prefilled %v)", c.data, fresh, filled)
		}
	}
}

// TestGivesUp pins inputs whose meaning is left to encoding/json.
func TestGivesUp(t *testing.T) {
	t.Parallel()
	var r rich
	var e embedded
	for _, c := range []struct {
		data string
		v    any
	}{
		{`{"I":1}`, new(blast)},
		{`{"i":1.0}`, new(blast)},
		{`{"i":"1"}`, new(blast)},
		{`{"any":1}`, &r},
		{`{"x":1}`, &e},
		{`{"i":1`, new(blast)},
		{`{"i":1}x`, new(blast)},
		{`{"i":01}`, new(blast)},
		{`{"body":"\ud83d"}`, new(blast)},
		{`{"i":1}`, blast{}},
		{`{"i":1}`, (*blast)(nil)},
		{`{"a":1}`, clashing()},
		{strings.Repeat(`[`, 1000) + strings.Repeat(`]`, 1000), new(json.RawMessage)},
	} {
		if Unmarshal([]byte(c.data), c.v) {
			t.Errorf("%s into %T: fast path taken", c.data, c.v)
		}
	}
}

func TestConcurrentPlans(t *testing.T) {
	t.Parallel()
	done := make(chan error, 8)
	for range 8 {
		go func() {
			var r rich
			if !Unmarshal([]byte(`{"node":{"v":1},"ins":[{"a":"x"}]}`), &r) || r.Node.V != 1 || r.Ins[0].A != "x" {
				done <- fmt.Errorf("decoded %+v", r)
				return
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, p := range payloads {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			// Malformed input must be refused, never half-accepted.
			for _, v := range []any{new(blast), new(rich), new(json.RawMessage), new([]inner), new(string)} {
				if Unmarshal(data, v) {
					t.Fatalf("invalid JSON %q accepted into %T", data, v)
				}
			}
			return
		}
		compareAll(t, data)
	})
}

var blastPayload = []byte(`{"i":12345,"body":"` + strings.Repeat("x", 80) + `","n":1,"bytes":100}`)

func BenchmarkBlast(b *testing.B) {
	b.Run("jsondec", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(blastPayload)))
		for b.Loop() {
			var v blast
			if !Unmarshal(blastPayload, &v) {
				b.Fatal("fast path not taken")
			}
		}
	})
	b.Run("jsondec-Into", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(blastPayload)))
		for b.Loop() {
			var v blast
			if !Into(blastPayload, &v) {
				b.Fatal("fast path not taken")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(blastPayload)))
		for b.Loop() {
			var v blast
			if err := json.Unmarshal(blastPayload, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// clashing returns a pointer to a struct with two fields of JSON name "a",
// built at run time since vet rightly refuses such a declaration.
func clashing() any {
	it := reflect.TypeFor[int]()
	t := reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: it, Tag: `json:"a"`},
		{Name: "B", Type: it, Tag: `json:"a"`},
	})
	return reflect.New(t).Interface()
}

// TestOwnsResult: nothing decoded may alias the input, whose buffer a lent
// subscription reuses once the consumer moves on.
func TestOwnsResult(t *testing.T) {
	t.Parallel()
	data := []byte(`{"s":"abc","raw":{"x":1},"strs":["def"],"in":{"a":"ghi"}}`)
	var r rich
	if !Unmarshal(data, &r) {
		t.Fatal("fast path not taken")
	}
	for i := range data {
		data[i] = '#'
	}
	if r.S != "abc" || string(r.Raw) != `{"x":1}` || r.Strs[0] != "def" || r.In.A != "ghi" {
		t.Fatalf("result changed with its input: %+v", r)
	}
}
