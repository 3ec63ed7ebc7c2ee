package wire_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// goldenVector is one client message and the frames the official
// JavaScript client produces for it (testdata/js/golden_wire.mjs).
type goldenVector struct {
	Name         string
	JoinRef      *string `json:"join_ref"`
	Ref          *string
	Topic, Event string
	Payload      string // JSON text of a text payload
	PayloadHex   string `json:"payload_hex"` // binary payload
	V2Text       string `json:"v2_text"`
	V2BinaryHex  string `json:"v2_binary_hex"`
	V2Error      string `json:"v2_error"`
	V1Text       string `json:"v1_text"`
}

func loadGolden(t testing.TB) []goldenVector {
	t.Helper()
	raw, err := os.ReadFile("../testdata/golden/wire_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		PhoenixJSVersion string `json:"phoenix_js_version"`
		Vectors          []goldenVector
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.PhoenixJSVersion == "" || len(doc.Vectors) == 0 {
		t.Fatal("golden file has no vectors")
	}
	return doc.Vectors
}

func (v goldenVector) message(t testing.TB) wire.Message {
	ref := func(p *string) wire.Ref {
		if p == nil {
			return wire.Ref{}
		}
		return wire.NewRef(*p)
	}
	m := wire.Message{JoinRef: ref(v.JoinRef), Ref: ref(v.Ref), Topic: v.Topic, Event: v.Event, Payload: []byte(v.Payload)}
	if v.PayloadHex != "" || v.V2BinaryHex != "" || v.V2Error != "" {
		var err error
		if m.Payload, err = hex.DecodeString(v.PayloadHex); err != nil {
			t.Fatal(err)
		}
		m.Binary = true
	}
	return m
}

func TestGoldenClientFrames(t *testing.T) {
	t.Parallel()
	for _, v := range loadGolden(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			m := v.message(t)
			got, op, err := wire.V2.EncodeClient(nil, &m)
			switch {
			case v.V2Error != "":
				if !errors.Is(err, wire.ErrTooLong) {
					t.Fatalf("V2 error = %v, want ErrTooLong (JS: %s)", err, v.V2Error)
				}
				return
			case m.Binary:
				if err != nil || op != wire.Binary || hex.EncodeToString(got) != v.V2BinaryHex {
					t.Fatalf("V2 binary %v %v\n got %x\nwant %s", op, err, got, v.V2BinaryHex)
				}
			default:
				if err != nil || op != wire.Text || string(got) != v.V2Text {
					t.Fatalf("V2 text %v %v\n got %s\nwant %s", op, err, got, v.V2Text)
				}
			}
			back, err := wire.V2.DecodeClient(op, got)
			if err != nil || !sameMessage(back, m) {
				t.Fatalf("V2 decode of own frame: %+v %v", back, err)
			}
			if m.Binary {
				return
			}
			got, op, err = wire.V1.EncodeClient(nil, &m)
			if err != nil || op != wire.Text || string(got) != v.V1Text {
				t.Fatalf("V1 %v %v\n got %s\nwant %s", op, err, got, v.V1Text)
			}
			back, err = wire.V1.DecodeClient(op, got)
			if err != nil || !sameMessage(back, m) {
				t.Fatalf("V1 decode of own frame: %+v %v", back, err)
			}
		})
	}
}

// sameMessage compares messages, reading a zero-length binary ref as null
// since the binary layout cannot tell them apart.
func sameMessage(a, b wire.Message) bool {
	norm := func(r wire.Ref, bin bool) wire.Ref {
		if bin && r.String() == "" {
			return wire.Ref{}
		}
		return r
	}
	return norm(a.JoinRef, a.Binary) == norm(b.JoinRef, b.Binary) && norm(a.Ref, a.Binary) == norm(b.Ref, b.Binary) &&
		a.Topic == b.Topic && a.Event == b.Event && string(a.Payload) == string(b.Payload) &&
		a.Binary == b.Binary && a.Status == b.Status
}
