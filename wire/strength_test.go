package wire_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// Header fields of the wrong JSON type, in every field and through every
// decoder: refs may be numbers, topic and event may not.
func TestHeaderFieldTypes(t *testing.T) {
	t.Parallel()
	v2 := []struct {
		name, frame string
		kind        error // nil: accepted
	}{
		{"numeric topic", `[null,null,1,"e",{}]`, wire.ErrFieldType},
		{"negative topic", `[null,null,-1,"e",{}]`, wire.ErrFieldType},
		{"numeric event", `[null,null,"t",1,{}]`, wire.ErrFieldType},
		{"bool topic", `[null,null,true,"e",{}]`, wire.ErrFieldType},
		{"array topic", `[null,null,[],"e",{}]`, wire.ErrFieldType},
		{"object event", `[null,null,"t",{},{}]`, wire.ErrFieldType},
		{"numeric join_ref", `[7,null,"t","e",{}]`, nil},
		{"numeric ref", `[null,7,"t","e",{}]`, nil},
		{"object join_ref", `[{},null,"t","e",{}]`, wire.ErrFieldType},
		{"array ref", `[null,[],"t","e",{}]`, wire.ErrFieldType},
	}
	decoders := []struct {
		name string
		f    func([]byte) (wire.Message, error)
	}{
		{"DecodeServer", func(b []byte) (wire.Message, error) { return wire.V2.DecodeServer(wire.Text, b) }},
		{"DecodeClient", func(b []byte) (wire.Message, error) { return wire.V2.DecodeClient(wire.Text, b) }},
		{"DecodeEnvelope", func(b []byte) (wire.Message, error) { return wire.DecodeEnvelope(wire.Text, b) }},
	}
	for _, tc := range v2 {
		for _, d := range decoders {
			_, err := d.f([]byte(tc.frame))
			checkKind(t, d.name+" "+tc.name, err, tc.kind)
		}
	}
	v1 := []struct {
		name, frame string
		kind        error
	}{
		{"numeric topic", `{"topic":1,"event":"e","payload":{}}`, wire.ErrFieldType},
		{"numeric event", `{"topic":"t","event":2,"payload":{}}`, wire.ErrFieldType},
		{"object topic", `{"topic":{},"event":"e","payload":{}}`, wire.ErrFieldType},
		{"numeric ref", `{"topic":"t","event":"e","payload":{},"ref":3}`, nil},
		{"numeric join_ref", `{"topic":"t","event":"e","payload":{},"join_ref":3}`, nil},
		{"bool ref", `{"topic":"t","event":"e","payload":{},"ref":false}`, wire.ErrFieldType},
	}
	for _, tc := range v1 {
		_, err := wire.V1.DecodeServer(wire.Text, []byte(tc.frame))
		checkKind(t, "V1 "+tc.name, err, tc.kind)
	}
}

func checkKind(t *testing.T, name string, err, kind error) {
	t.Helper()
	switch {
	case kind == nil && err != nil:
		t.Errorf("%s: %v, want accepted", name, err)
	case kind != nil && (!errors.Is(err, kind) || !errors.Is(err, wire.ErrMalformed)):
		t.Errorf("%s: err = %v, want %v and ErrMalformed", name, err, kind)
	}
}

// A raw control byte (below 0x20) inside a JSON string is refused wherever
// the string is, and wherever in the string it lies: the scanners read 16
// and 8 bytes at a time and then byte by byte, so the byte is put at every
// offset from 0 to 40. 0x1f, the highest control byte, is the boundary; 0x20
// and 0x7f are plain and accepted at the same offsets.
func TestControlBytesInStrings(t *testing.T) {
	t.Parallel()
	type place struct {
		name  string
		frame func(s string) string // s is the string's raw contents
		dec   func([]byte) error
	}
	server := func(b []byte) error { _, err := wire.V2.DecodeServer(wire.Text, b); return err }
	v1 := func(b []byte) error { _, err := wire.V1.DecodeServer(wire.Text, b); return err }
	envelope := func(b []byte) error { _, err := wire.DecodeEnvelope(wire.Text, b); return err }
	checked := func(b []byte) error {
		m, err := wire.DecodeEnvelope(wire.Text, b)
		if err != nil {
			return err
		}
		_, err = wire.CheckPayload(m.Payload)
		return err
	}
	encode := func(b []byte) error {
		_, _, err := wire.V2.EncodeClient(nil, &wire.Message{Topic: "t", Event: "e", Payload: b})
		return err
	}
	places := []place{
		{"topic", func(s string) string { return `[null,null,"` + s + `","e",{}]` }, server},
		{"event", func(s string) string { return `[null,null,"t","` + s + `",{}]` }, server},
		{"ref", func(s string) string { return `[null,"` + s + `","t","e",{}]` }, server},
		{"envelope topic", func(s string) string { return `[null,null,"` + s + `","e",{}]` }, envelope},
		{"payload string", func(s string) string { return `[null,null,"t","e","` + s + `"]` }, server},
		{"payload value", func(s string) string { return `[null,null,"t","e",{"k":"` + s + `","n":[1,"x"]}]` }, server},
		{"payload key", func(s string) string { return `[null,null,"t","e",{"` + s + `":1}]` }, server},
		{"nested value", func(s string) string { return `[null,null,"t","e",[{"a":[{"b":"` + s + `"}]}]]` }, server},
		{"CheckPayload", func(s string) string { return `[null,null,"t","e",{"k":["` + s + `"]}]` }, checked},
		{"v1 topic", func(s string) string { return `{"topic":"` + s + `","event":"e","payload":{}}` }, v1},
		{"v1 key", func(s string) string { return `{"` + s + `":1,"topic":"t","event":"e","payload":{}}` }, v1},
		{"v1 payload", func(s string) string { return `{"topic":"t","event":"e","payload":{"k":"` + s + `"}}` }, v1},
		{"encoded payload", func(s string) string { return `{"k":"` + s + `"}` }, encode},
	}
	for _, p := range places {
		for off := 0; off <= 40; off++ {
			for _, c := range []byte{0x00, 0x0a, 0x1f, 0x20, 0x7f} {
				s := strings.Repeat("a", off) + string(c) + strings.Repeat("b", 40-off)
				err := p.dec([]byte(p.frame(s)))
				switch {
				case c < 0x20 && err == nil:
					t.Fatalf("%s: byte %#x at offset %d accepted", p.name, c, off)
				case c < 0x20 && !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrInvalid):
					t.Fatalf("%s: byte %#x at offset %d: %v", p.name, c, off, err)
				case c >= 0x20 && err != nil:
					t.Fatalf("%s: byte %#x at offset %d refused: %v", p.name, c, off, err)
				}
			}
		}
	}
}

// Encoding escapes exactly the control bytes, as JSON.stringify does: 0x1f
// as \u001f, 0x20 and 0x7f as they are.
func TestEncodeEscapesControlBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ topic, want string }{
		{"a\x1fb", `[null,null,"a\u001fb","e",{}]`},
		{"a\x00b", `[null,null,"a\u0000b","e",{}]`},
		{"a\tb", `[null,null,"a\tb","e",{}]`},
		{"a b\x7f", "[null,null,\"a b\x7f\",\"e\",{}]"},
	} {
		out, _, err := wire.V2.EncodeClient(nil, &wire.Message{Topic: tc.topic, Event: "e"})
		if err != nil || string(out) != tc.want {
			t.Errorf("topic %q encoded as %s (%v), want %s", tc.topic, out, err, tc.want)
		}
		if _, err := wire.V2.DecodeServer(wire.Text, out); err != nil {
			t.Errorf("topic %q: own encoding refused: %v", tc.topic, err)
		}
	}
}

// Every proper prefix of a valid frame is refused with ErrMalformed, by
// every decoder, and nothing panics: each bound the scanners check before
// reading a byte is reached by some prefix.
func TestEveryPrefixRefused(t *testing.T) {
	t.Parallel()
	v2 := []string{
		`["1","2","room:lobby","phx_reply",{"response":{"a":[1,2.5e3,-0.1,true,false,null,"x\"\\\u00e9"]},"status":"ok"}]`,
		` [ null , 7 , "t" , "e" , [ {} , [] , "" , 0 ] ] `,
		`[null,null,"t","e","s"]`,
		`[null,null,"t","e",-12.5E+3]`,
		`[null,null,"t","e",true]`,
	}
	for _, f := range v2 {
		for n := range len(f) {
			p := []byte(f[:n])
			if strings.TrimSpace(f[n:]) == "" {
				continue // only whitespace cut: still whole
			}
			if _, err := wire.V2.DecodeServer(wire.Text, p); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("DecodeServer(%q) = %v", p, err)
			}
			if _, err := wire.V2.DecodeClient(wire.Text, p); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("DecodeClient(%q) = %v", p, err)
			}
			m, err := wire.DecodeEnvelope(wire.Text, p)
			if err == nil {
				_, err = wire.CheckPayload(m.Payload)
			}
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("DecodeEnvelope+CheckPayload(%q) = %v", p, err)
			}
		}
	}
	v1 := `{"topic":"t","event":"e","payload":{"k":[1,"v"]},"ref":"1","join_ref":null}`
	for n := range len(v1) {
		if _, err := wire.V1.DecodeServer(wire.Text, []byte(v1[:n])); !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("V1 DecodeServer(%q) = %v", v1[:n], err)
		}
	}
	reply := `{"status":"ok","response":{"k":[1,"v"]}}`
	for n := range len(reply) {
		m := wire.Message{Topic: "t", Event: wire.EventReply, Payload: []byte(reply[:n])}
		if _, err := wire.ParseReply(&m); err == nil {
			t.Fatalf("ParseReply(%q) accepted", reply[:n])
		}
	}
}

// A decoding error says where it happened, offset 0 included; an encoding
// error, which has no offset, says none.
func TestErrorOffsets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		frame string
		off   int
	}{
		{`x`, 0},
		{`{}`, 0},
		{`[null,null,"t",1,{}]`, 15},
		{`["\x"]`, 2},
	} {
		_, err := wire.V2.DecodeServer(wire.Text, []byte(tc.frame))
		var we *wire.Error
		if !errors.As(err, &we) || we.Offset != tc.off {
			t.Fatalf("%s: %v, want offset %d", tc.frame, err, tc.off)
		}
		if want := " at offset " + strconv.Itoa(tc.off); !strings.HasSuffix(err.Error(), want) {
			t.Fatalf("%s: %q does not end with %q", tc.frame, err, want)
		}
	}
	_, _, err := wire.V2.EncodeClient(nil, &wire.Message{Topic: "t", Event: "e", Payload: []byte("{")})
	var we *wire.Error
	if !errors.As(err, &we) || we.Offset != -1 || strings.HasSuffix(err.Error(), "offset -1") || errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("encode error %v", err)
	}
}

// Numbers inside a payload's arrays and objects, where the scanner takes
// a fast path for plain integers and short fractions: malformed ones are
// refused whatever follows them, and well-formed ones accepted, also at
// the very end of the frame.
func TestNumbersInPayloads(t *testing.T) {
	t.Parallel()
	bad := []string{"1.", "1.e5", "01", "-", "-x", "1e", "1e+", ".5", "1.5.", "+1", "1x", "1.x", "12345678.", "1.23456789x", "-01", "1.5e"}
	good := []string{"0", "-0", "1.5", "1.25", "-0.5", "1e5", "1E+5", "1.5e-3", "12345678901234567890.5", "1.234567890123", "10", "123456789"}
	shapes := []string{
		`[%s]`, `[%s,"padding-padding"]`, `{"k":%s}`, `{"k":%s,"p":"padding-padding"}`, `[[%s] ]`, `{"a":[1,{"b":%s}]}`,
	}
	for _, sh := range shapes {
		for _, n := range append(bad, good...) {
			payload := strings.Replace(sh, "%s", n, 1)
			ok := !slices.Contains(bad, n)
			for _, frame := range []string{`[null,null,"t","e",` + payload + `]`, `[null,null,"t","e",` + payload + `]     `} {
				_, err := wire.V2.DecodeServer(wire.Text, []byte(frame))
				if ok != (err == nil) {
					t.Errorf("%s: %v", frame, err)
				}
			}
			if _, err := wire.CheckPayload([]byte(payload)); ok != (err == nil) {
				t.Errorf("CheckPayload(%s): %v", payload, err)
			}
		}
	}
}

// Errors inside the payload, or in an element after it, give their offset
// in the frame; a status that is not UTF-8 is written with U+FFFD.
func TestPayloadErrorOffsetsAndReplyStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		frame string
		off   int
	}{
		{`[null,null,"t","e",{"a":}]`, 24},
		{`[null,null,"t","e",}]`, 19},
		{`[null,null,"t","e",{},x]`, 22},
		{`[null,null,"t","e",{} x]`, 22},
		{`[null,null,"t","e",{},1,]`, 24},
	} {
		_, err := wire.V2.DecodeServer(wire.Text, []byte(tc.frame))
		var we *wire.Error
		if !errors.As(err, &we) || we.Offset != tc.off {
			t.Errorf("%s: %v, want offset %d", tc.frame, err, tc.off)
		}
	}
	got := string(wire.AppendReplyPayload(nil, "ok\xff", nil))
	if got != "{\"response\":{},\"status\":\"ok\uFFFD\"}" {
		t.Errorf("reply payload %q", got)
	}
}
