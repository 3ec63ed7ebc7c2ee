package phx

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeFallsBack covers payloads the fast path starts on and then
// leaves to encoding/json: the result must be encoding/json's alone, with no
// trace of what the fast path wrote before giving up.
func TestDecodeFallsBack(t *testing.T) {
	t.Parallel()
	type target struct {
		A int
		P *int
		S []string
		B any
	}
	for _, c := range []struct {
		payload string
		err     bool
	}{
		{`{"A":1,"P":2,"S":["x"],"B":{"x":1}}`, false}, // B is left to encoding/json
		{`{"A":1,"P":2,"S":["x"],"a":3}`, false},       // a case-folded key
		{`{"A":1,"P":2,"S":["x","y"],"A":"no"}`, true}, // a type mismatch
		{`{"A":1,"P":2`, true},                         // a user-built Message, not JSON
		{`{"A":1} {}`, true},
	} {
		m := Message{Topic: "t", Event: "e", Payload: json.RawMessage(c.payload)}
		got, err := Decode[target](m)
		var want target
		wantErr := json.Unmarshal([]byte(c.payload), &want)
		if (err != nil) != c.err || (wantErr != nil) != c.err {
			t.Fatalf("%s: err %v, encoding/json %v", c.payload, err, wantErr)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Topic != "t" || de.Event != "e" || de.Err.Error() != wantErr.Error() {
				t.Fatalf("%s: %#v, want a DecodeError around %v", c.payload, err, wantErr)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %+v, encoding/json %+v", c.payload, got, want)
		}
	}
}

type blastMsg struct {
	I     int    `json:"i"`
	Body  string `json:"body"`
	N     int    `json:"n"`
	Bytes int64  `json:"bytes"`
}

func BenchmarkDecode100B(b *testing.B) {
	m := Message{Topic: "t", Event: "blast", Payload: json.RawMessage(`{"i":12345,"body":"` + strings.Repeat("x", 80) + `","n":1,"bytes":100}`)}
	b.ReportAllocs()
	for b.Loop() {
		v, err := Decode[blastMsg](m)
		if err != nil || v.I != 12345 {
			b.Fatal(v, err)
		}
	}
}
