package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// Seeds come from the recorded transcripts and the golden vectors, so the
// fuzzers start from real Phoenix and JavaScript-client frames.

func seedFrames(f *testing.F, dir string, op wire.Opcode, v1 bool) {
	for _, fr := range loadTranscripts(f) {
		if fr.dir == dir && fr.op == op && (serializerOf(fr.file) == wire.V1) == v1 && len(fr.data) < 4096 {
			f.Add(fr.data)
		}
	}
	if dir == "send" {
		for _, v := range loadGolden(f) {
			m := v.message(f)
			s := wire.V2
			if v1 {
				s = wire.V1
			}
			if out, gotOp, err := s.EncodeClient(nil, &m); err == nil && gotOp == op {
				f.Add(out)
			}
		}
	}
}

// roundTrip checks that decode → encode → decode gives the same message,
// and that every error is a typed decoding error.
func roundTrip(t *testing.T, s wire.Serializer, op wire.Opcode, data []byte, server bool) {
	decode, encode := s.DecodeClient, s.EncodeClient
	if server {
		decode, encode = s.DecodeServer, s.EncodeServer
	}
	m, err := decode(op, data)
	if err != nil {
		if !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("untyped error %v", err)
		}
		return
	}
	if !m.Binary && !json.Valid(m.Payload) {
		t.Fatalf("accepted payload %q that encoding/json rejects", m.Payload)
	}
	out, gotOp, err := encode(nil, &m)
	if err != nil {
		t.Fatalf("re-encode of %+v: %v", m, err)
	}
	if gotOp != op {
		t.Fatalf("re-encoded as %v, decoded from %v", gotOp, op)
	}
	m2, err := decode(gotOp, out)
	if err != nil {
		t.Fatalf("decode of own frame %q: %v", out, err)
	}
	if s == wire.V1 && server {
		m.JoinRef = wire.Ref{} // V1 servers never send join_ref
	}
	if !sameMessage(m, m2) {
		t.Fatalf("round trip changed the message\n%+v\n%+v", m, m2)
	}
	// A second round is byte-stable.
	out2, _, err := encode(nil, &m2)
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("second encode differs: %q vs %q (%v)", out, out2, err)
	}
}

func FuzzDecodeServer(f *testing.F) {
	seedFrames(f, "recv", wire.Text, false)
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, wire.V2, wire.Text, data, true) })
}

func FuzzDecodeClient(f *testing.F) {
	seedFrames(f, "send", wire.Text, false)
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, wire.V2, wire.Text, data, false) })
}

func FuzzDecodeServerBinary(f *testing.F) {
	seedFrames(f, "recv", wire.Binary, false)
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, wire.V2, wire.Binary, data, true) })
}

func FuzzDecodeClientBinary(f *testing.F) {
	seedFrames(f, "send", wire.Binary, false)
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, wire.V2, wire.Binary, data, false) })
}

func FuzzDecodeServerV1(f *testing.F) {
	seedFrames(f, "recv", wire.Text, true)
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, wire.V1, wire.Text, data, true) })
}

func FuzzDecodeClientV1(f *testing.F) {
	seedFrames(f, "send", wire.Text, true)
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, wire.V1, wire.Text, data, false) })
}

func FuzzParseReply(f *testing.F) {
	for _, fr := range loadTranscripts(f) {
		if fr.dir != "recv" || fr.op != wire.Text || len(fr.data) > 4096 {
			continue
		}
		if m, err := serializerOf(fr.file).DecodeServer(fr.op, fr.data); err == nil && m.Event == wire.EventReply {
			f.Add(m.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m := wire.Message{Event: wire.EventReply, Payload: payload}
		r, err := wire.ParseReply(&m)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.Response != nil && !json.Valid(r.Response) {
			t.Fatalf("response %q is not JSON", r.Response)
		}
		m.Payload = wire.AppendReplyPayload(nil, r.Status, r.Response)
		r2, err := wire.ParseReply(&m)
		if err != nil || r2.Status != r.Status || (r.Response != nil && !bytes.Equal(r2.Response, r.Response)) {
			t.Fatalf("reply round trip: %+v -> %s -> %+v %v", r, m.Payload, r2, err)
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	seedFrames(f, "recv", wire.Text, false)
	f.Fuzz(func(t *testing.T, data []byte) { sameAsDecodeServer(t, wire.Text, data) })
}
