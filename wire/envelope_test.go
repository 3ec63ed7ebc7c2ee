package wire_test

import (
	"errors"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// sameAsDecodeServer checks DecodeEnvelope + CheckPayload against
// DecodeServer on one frame: the same verdict, the same message.
func sameAsDecodeServer(t *testing.T, op wire.Opcode, frame []byte) {
	t.Helper()
	want, wantErr := wire.V2.DecodeServer(op, frame)
	got, err := wire.DecodeEnvelope(op, frame)
	if err == nil && op == wire.Text {
		got.Payload, err = wire.CheckPayload(got.Payload)
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("frame %q: envelope+check says %v, DecodeServer says %v", frame, err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("frame %q: untyped error %v", frame, err)
		}
		return
	}
	if !sameMessage(got, want) {
		t.Fatalf("frame %q:\nenvelope %+v\ndecode   %+v", frame, got, want)
	}
}

func TestDecodeEnvelopeAgreesWithDecodeServer(t *testing.T) {
	t.Parallel()
	frames := []string{
		`[null,null,"room:1","new_msg",{"body":"hi"}]`,
		` [ "1" , "2" , "room:1" , "e" , [1,2,3] ] `,
		`["1","2","t","e",{},"extra",{"x":[1]}]`,
		`["1","2","t","e","abc]`,
		`["1","2","t","e",{]`,
		`["1","2","t","e", ]`,
		`["1","2","t","e",{}]x`,
		`["1","2","t","e",{},]`,
		`["1","2","t","e",{} {}]`,
		`["1","2","t","e"]`,
		`["1","2","t","e",`,
		`["1","2","t","e",{}`,
		`["1","2","t","e",{"a":"\u00zz"}]`,
		`["1","2","t","e",null]`,
		`{"topic":"t"}`,
		``,
	}
	for _, f := range frames {
		sameAsDecodeServer(t, wire.Text, []byte(f))
	}
	for _, fr := range loadTranscripts(t) {
		if fr.dir == "recv" && serializerOf(fr.file) != wire.V1 {
			sameAsDecodeServer(t, fr.op, fr.data)
		}
	}
}

// An unchecked payload keeps the elements after the fifth until
// CheckPayload drops them; a malformed payload is found by CheckPayload,
// at an offset in the frame when DecodeServer finds it.
func TestCheckPayload(t *testing.T) {
	t.Parallel()
	m, err := wire.DecodeEnvelope(wire.Text, []byte(`["1","2","t","e",{"a":1} , "x"]`))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != `{"a":1} , "x"` {
		t.Fatalf("unchecked payload %q", m.Payload)
	}
	p, err := wire.CheckPayload(m.Payload)
	if err != nil || string(p) != `{"a":1}` {
		t.Fatalf("checked payload %q, %v", p, err)
	}
	bad := []byte(`["1","2","t","e",{"a":tru}]`)
	m, err = wire.DecodeEnvelope(wire.Text, bad)
	if err != nil {
		t.Fatalf("envelope of a frame with a bad payload: %v", err)
	}
	_, err = wire.CheckPayload(m.Payload)
	var pe *wire.Error
	if !errors.As(err, &pe) || !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("CheckPayload: %v", err)
	}
	_, err = wire.V2.DecodeServer(wire.Text, bad)
	var fe *wire.Error
	if !errors.As(err, &fe) || fe.Offset != pe.Offset+len(`["1","2","t","e",`) {
		t.Fatalf("DecodeServer offset %v, CheckPayload offset %d", err, pe.Offset)
	}
}
