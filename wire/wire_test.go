package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

func TestDecodeServerV2Text(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, frame         string
		joinRef, ref        *string
		topic, event, paylo string
	}{
		{"broadcast", `[null,null,"room:lobby","new_msg",{"body":"hi"}]`, nil, nil, "room:lobby", "new_msg", `{"body":"hi"}`},
		{"reply", `["1","2","room:lobby","phx_reply",{"response":{},"status":"ok"}]`, sp("1"), sp("2"), "room:lobby", "phx_reply", `{"response":{},"status":"ok"}`},
		{"push", ` [ "1" , null , "t" , "e" , [1,2,3] ] `, sp("1"), nil, "t", "e", `[1,2,3]`},
		{"numeric refs", `[1,-2.5e3,"t","e",null]`, sp("1"), sp("-2.5e3"), "t", "e", `null`},
		{"escapes", `["\u0031","a\"b","r\u00e9\ud83d\ude00","\n",""]`, sp("1"), sp(`a"b`), "ré😀", "\n", `""`},
		{"six elements", `["1","1","t","e",{},"extra"]`, sp("1"), sp("1"), "t", "e", `{}`},
		{"empty strings", `["","","","",{}]`, sp(""), sp(""), "", "", `{}`},
		{"null topic", `[null,"1",null,null,{}]`, nil, sp("1"), "", "", `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := wire.V2.DecodeServer(wire.Text, []byte(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			checkRef(t, "join_ref", m.JoinRef, tc.joinRef)
			checkRef(t, "ref", m.Ref, tc.ref)
			if m.Topic != tc.topic || m.Event != tc.event || string(m.Payload) != tc.paylo || m.Binary {
				t.Errorf("got %q %q %q binary=%v", m.Topic, m.Event, m.Payload, m.Binary)
			}
		})
	}
}

func sp(s string) *string { return &s }

func checkRef(t *testing.T, name string, r wire.Ref, want *string) {
	t.Helper()
	s, ok := r.Get()
	switch {
	case want == nil && ok:
		t.Errorf("%s = %q, want null", name, s)
	case want != nil && (!ok || s != *want):
		t.Errorf("%s = %q (valid %v), want %q", name, s, ok, *want)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		s     wire.Serializer
		op    wire.Opcode
		frame string
		kind  error
	}{
		{"empty", wire.V2, wire.Text, ``, wire.ErrMalformed},
		{"not json", wire.V2, wire.Text, `this is not json`, wire.ErrMalformed},
		{"object on v2", wire.V2, wire.Text, `{"topic":"t"}`, wire.ErrFieldType},
		{"four elements", wire.V2, wire.Text, `["1","1","t","e"]`, wire.ErrArity},
		{"empty array", wire.V2, wire.Text, ` [ ] `, wire.ErrArity},
		{"one element", wire.V2, wire.Text, `[null]`, wire.ErrArity},
		{"object topic", wire.V2, wire.Text, `[null,"1",{},"e",{}]`, wire.ErrFieldType},
		{"numeric event", wire.V2, wire.Text, `[null,"1","t",123,{}]`, wire.ErrFieldType},
		{"bool ref", wire.V2, wire.Text, `[true,"1","t","e",{}]`, wire.ErrFieldType},
		{"invalid utf8", wire.V2, wire.Text, "[\"\xff\xfe\"]", wire.ErrInvalidUTF8},
		{"trailing", wire.V2, wire.Text, `[null,null,"t","e",{}] x`, wire.ErrMalformed},
		{"bad payload", wire.V2, wire.Text, `[null,null,"t","e",{"a":[}]`, wire.ErrMalformed},
		{"unterminated", wire.V2, wire.Text, `[null,null,"t","e",{}`, wire.ErrMalformed},
		{"unknown kind", wire.V2, wire.Binary, "\x09\x01\x02\x03", wire.ErrUnknownKind},
		{"truncated push", wire.V2, wire.Binary, "\x00\x05\x05\x32\x32ab", wire.ErrTruncated},
		{"empty binary", wire.V2, wire.Binary, "", wire.ErrTruncated},
		{"short header", wire.V2, wire.Binary, "\x01\x01\x01", wire.ErrTruncated},
		{"binary invalid utf8", wire.V2, wire.Binary, "\x02\x01\x01\xff" + "e", wire.ErrInvalidUTF8},
		{"utf8 split across fields", wire.V2, wire.Binary, "\x02\x01\x01\xc3\xa9", wire.ErrInvalidUTF8},
		{"binary on v1", wire.V1, wire.Binary, "\x02\x01\x01te", wire.ErrUnsupported},
		{"array on v1", wire.V1, wire.Text, `[null,null,"t","e",{}]`, wire.ErrFieldType},
		{"v1 no payload", wire.V1, wire.Text, `{"topic":"t","event":"e"}`, wire.ErrArity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.s.DecodeServer(tc.op, []byte(tc.frame))
			if !errors.Is(err, tc.kind) || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("err = %v, want %v and ErrMalformed", err, tc.kind)
			}
		})
	}
}

func TestBinaryServerFrames(t *testing.T) {
	t.Parallel()
	reply := []byte("\x01\x01\x01\x08\x0212room:binok\x00\x01\x02\xfe\xffhello")
	m, err := wire.V2.DecodeServer(wire.Binary, reply)
	if err != nil {
		t.Fatal(err)
	}
	if m.JoinRef.String() != "1" || m.Ref.String() != "2" || m.Topic != "room:bin" || m.Event != wire.EventReply ||
		m.Status != "ok" || !m.Binary || string(m.Payload) != "\x00\x01\x02\xfe\xffhello" {
		t.Fatalf("reply decoded as %+v", m)
	}
	out, op, err := wire.V2.EncodeServer(nil, &m)
	if err != nil || op != wire.Binary || !bytes.Equal(out, reply) {
		t.Fatalf("re-encoded %q %v %v", out, op, err)
	}
	bcast := []byte("\x02\x08\x09room:binbin_bcast\xca\xfe\x00\x01")
	m, err = wire.V2.DecodeServer(wire.Binary, bcast)
	if err != nil || !m.JoinRef.IsNull() || !m.Ref.IsNull() || m.Event != "bin_bcast" {
		t.Fatalf("broadcast %+v %v", m, err)
	}
	out, _, _ = wire.V2.EncodeServer(nil, &m)
	if !bytes.Equal(out, bcast) {
		t.Fatalf("broadcast re-encoded %q", out)
	}
	push := []byte("\x00\x01\x08\x061room:binbinary\x00\x01")
	m, err = wire.V2.DecodeServer(wire.Binary, push)
	if err != nil || m.JoinRef.String() != "1" || !m.Ref.IsNull() || m.Event != "binary" {
		t.Fatalf("push %+v %v", m, err)
	}
	out, _, _ = wire.V2.EncodeServer(nil, &m)
	if !bytes.Equal(out, push) {
		t.Fatalf("push re-encoded %q", out)
	}
}

func TestEncodeClient(t *testing.T) {
	t.Parallel()
	m := wire.Message{JoinRef: wire.NewRef("1"), Ref: wire.NewRef("2"), Topic: "room:<a&b>\u2028é", Event: "ev\"\n\x01", Payload: []byte(`{"x":1}`)}
	got, op, err := wire.V2.EncodeClient(nil, &m)
	want := "[\"1\",\"2\",\"room:<a&b>\u2028é\",\"ev\\\"\\n\\u0001\",{\"x\":1}]"
	if err != nil || op != wire.Text || string(got) != want {
		t.Fatalf("got %s %v, want %s", got, err, want)
	}
	hb := wire.Message{Ref: wire.NewRef("3"), Topic: "phoenix", Event: "heartbeat"}
	got, _, _ = wire.V1.EncodeClient(nil, &hb)
	if want := `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"3"}`; string(got) != want {
		t.Fatalf("V1 heartbeat %s, want %s", got, want)
	}
	long := wire.Message{Topic: string(make([]byte, 256)), Binary: true}
	if _, _, err := wire.V2.EncodeClient(nil, &long); !errors.Is(err, wire.ErrTooLong) {
		t.Fatalf("long topic: %v", err)
	}
	bad := wire.Message{Topic: "t", Event: "e", Payload: []byte(`{`)}
	if out, _, err := wire.V2.EncodeClient([]byte("x"), &bad); !errors.Is(err, wire.ErrInvalid) || string(out) != "x" {
		t.Fatalf("bad payload: %q %v", out, err)
	}
	bin := wire.Message{Topic: "t", Event: "e", Binary: true}
	if _, _, err := wire.V1.EncodeClient(nil, &bin); !errors.Is(err, wire.ErrUnsupported) {
		t.Fatalf("binary on V1: %v", err)
	}
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ payload, status, resp string }{
		{`{"response":{},"status":"ok"}`, "ok", `{}`},
		{`{"status":"error","response":{"reason":"nope"}}`, "error", `{"reason":"nope"}`},
		{`{"response":"a string","status":"ok"}`, "ok", `"a string"`},
		{`{"response":[1,2,3],"status":"ok"}`, "ok", `[1,2,3]`},
		{`{"response":null,"status":"ok"}`, "ok", `null`},
		{`{"status":"w\u00e9ird"}`, "wéird", ``},
	} {
		m := wire.Message{Event: wire.EventReply, Payload: []byte(tc.payload)}
		r, err := wire.ParseReply(&m)
		if err != nil || r.Status != tc.status || string(r.Response) != tc.resp {
			t.Errorf("%s: got %+v %v", tc.payload, r, err)
		}
		if tc.resp != "" {
			if p := wire.AppendReplyPayload(nil, r.Status, r.Response); !bytes.Contains([]byte(tc.payload), []byte(tc.resp)) || len(p) == 0 {
				t.Errorf("AppendReplyPayload %s", p)
			}
		}
	}
	if got := wire.AppendReplyPayload(nil, "ok", nil); string(got) != `{"response":{},"status":"ok"}` {
		t.Errorf("AppendReplyPayload = %s", got)
	}
	for _, p := range []string{`[]`, `{"response":{}}`, `{"status":1}`, `{"status":"ok"`} {
		m := wire.Message{Event: wire.EventReply, Payload: []byte(p)}
		if _, err := wire.ParseReply(&m); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: err %v", p, err)
		}
	}
	m := wire.Message{Event: "x"}
	if _, err := wire.ParseReply(&m); !errors.Is(err, wire.ErrNotReply) {
		t.Errorf("not a reply: %v", err)
	}
}

// TestDecodeAllocs holds decoding to one allocation per message, whatever
// the payload size and whether a header field has escapes. Not parallel:
// testing.AllocsPerRun refuses to run in a parallel test.
func TestDecodeAllocs(t *testing.T) {
	for _, tc := range []struct {
		s     wire.Serializer
		op    wire.Opcode
		frame string
		max   float64
	}{
		{wire.V2, wire.Text, `[null,null,"room:lobby","new_msg",{"body":"hello","user":"alice","n":[1,2,3]}]`, 1},
		{wire.V2, wire.Text, `["1","2","room:\u00e9","phx_reply",{"response":{},"status":"ok"}]`, 1},
		{wire.V2, wire.Text, `[null,null,null,null,{}]`, 0},
		{wire.V2, wire.Text, `["","","","",{}]`, 0},
		{wire.V2, wire.Binary, "\x02\x08\x09room:binbin_bcast\xca\xfe", 1},
		{wire.V1, wire.Text, `{"event":"new_msg","payload":{"body":"hi"},"ref":null,"topic":"room:lobby"}`, 1},
	} {
		frame := []byte(tc.frame)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := tc.s.DecodeServer(tc.op, frame); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.frame, allocs, tc.max)
		}
	}
	m := wire.Message{Event: wire.EventReply, Payload: []byte(`{"response":{"a":1},"status":"ok"}`)}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = wire.ParseReply(&m) }); allocs != 0 {
		t.Errorf("ParseReply: %v allocations, want 0", allocs)
	}
	buf := make([]byte, 0, 256)
	msg := wire.Message{JoinRef: wire.NewRef("1"), Ref: wire.NewRef("2"), Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"body":"hi"}`)}
	if allocs := testing.AllocsPerRun(100, func() { buf, _, _ = wire.V2.EncodeClient(buf[:0], &msg) }); allocs != 0 {
		t.Errorf("EncodeClient: %v allocations, want 0", allocs)
	}
}
