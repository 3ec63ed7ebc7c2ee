package phxtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/phxgo/phxgo/wire"
)

// The server keeps refs, join refs and topics as the raw JSON the client
// sent. Phoenix echoes them as terms, so a numeric ref comes back as a
// number and a null topic as null; a string type would lose both.
var jsonNull = json.RawMessage("null")

// errFrame is the socket-crashing decode error (close 1011).
var errFrame = errors.New("phxtest: malformed client frame")

// inFrame is one decoded client frame.
type inFrame struct {
	joinRef json.RawMessage // raw JSON, never nil
	ref     json.RawMessage
	topic   json.RawMessage
	event   json.RawMessage
	payload []byte // JSON text, or raw bytes when binary
	binary  bool
	data    []byte // the frame as received
}

func (f *inFrame) topicString() (string, bool) { return rawString(f.topic) }
func (f *inFrame) eventString() (string, bool) { return rawString(f.event) }

// rawString returns the Go string of a raw JSON string.
func rawString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// quote encodes s as a JSON string without HTML escaping, as Jason does.
func quote(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return unescapeSeparators(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// refText is the text of a raw ref for binary frames, whose fields are
// bytes: a string ref gives its content, a number its literal, null "".
func refText(raw json.RawMessage) string {
	if s, ok := rawString(raw); ok {
		return s
	}
	if len(raw) == 0 || bytes.Equal(raw, jsonNull) {
		return ""
	}
	return string(raw)
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return jsonNull
	}
	return raw
}

// decodeText decodes a text frame for serializer vsn.
func decodeText(vsn string, data []byte) (inFrame, error) {
	f := inFrame{data: data}
	if vsn == vsn1 {
		var obj struct {
			Topic   json.RawMessage `json:"topic"`
			Event   json.RawMessage `json:"event"`
			Payload json.RawMessage `json:"payload"`
			Ref     json.RawMessage `json:"ref"`
			JoinRef json.RawMessage `json:"join_ref"`
		}
		if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
			return f, errFrame
		}
		if err := json.Unmarshal(data, &obj); err != nil {
			return f, fmt.Errorf("%w: %v", errFrame, err)
		}
		f.topic, f.event, f.payload = orNull(obj.Topic), orNull(obj.Event), orNull(obj.Payload)
		f.ref, f.joinRef = orNull(obj.Ref), orNull(obj.JoinRef)
		return f, nil
	}
	// Phoenix matches [join_ref, ref, topic, event, payload | _]: extra
	// elements are ignored, fewer crash the socket. The four header
	// elements are small and checked here; the payload and whatever
	// follows it are checked by the wire package's scanner, which is far
	// faster than encoding/json on large payloads.
	var head [4]json.RawMessage
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '[' {
		return f, errFrame
	}
	i++
	for k := range head {
		i = skipWS(data, i)
		end := skipValue(data, i)
		if end < 0 || !json.Valid(data[i:end]) {
			return f, errFrame
		}
		head[k] = data[i:end]
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ',' {
			return f, errFrame
		}
		i++
	}
	rest := data[i:]
	check := append(append(make([]byte, 0, len(v2CheckPrefix)+len(rest)), v2CheckPrefix...), rest...)
	if _, err := wire.V2.DecodeClient(wire.Text, check); err != nil {
		return f, fmt.Errorf("%w: %v", errFrame, err)
	}
	ps := skipWS(data, i)
	pe := skipValue(data, ps)
	if pe < 0 {
		return f, errFrame
	}
	f.joinRef, f.ref, f.topic, f.event, f.payload = head[0], head[1], head[2], head[3], data[ps:pe]
	return f, nil
}

var v2CheckPrefix = []byte(`[null,null,"t","e",`)

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i], or -1. It
// only finds the end; validity is checked elsewhere.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '[', '{':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != ']' && b[j] != '}' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// decodeBinary decodes a V2 binary client push (kind 0):
// kind, len(join_ref), len(ref), len(topic), len(event), fields, data.
func decodeBinary(vsn string, data []byte) (inFrame, error) {
	f := inFrame{data: data, binary: true}
	if vsn == vsn1 || len(data) < 5 || data[0] != 0 {
		return f, errFrame
	}
	n := 5 + int(data[1]) + int(data[2]) + int(data[3]) + int(data[4])
	if len(data) < n {
		return f, errFrame
	}
	p := 5
	field := func(l byte) []byte { s := data[p : p+int(l)]; p += int(l); return s }
	f.joinRef = quote(string(field(data[1])))
	f.ref = quote(string(field(data[2])))
	f.topic = quote(string(field(data[3])))
	f.event = quote(string(field(data[4])))
	f.payload = data[n:]
	return f, nil
}

// outFrame is one server frame before serialisation.
type outFrame struct {
	joinRef, ref, topic json.RawMessage
	event               string
	payload             []byte // JSON, or bytes when binary
	binary              bool
	status              string // binary replies only

	// raw frames bypass the serializer
	raw     bool
	rawOp   int
	rawData []byte
}

// encode serialises f for vsn; it returns the opcode and bytes.
func encode(vsn string, f *outFrame) (int, []byte) {
	if f.raw {
		return f.rawOp, f.rawData
	}
	if f.binary {
		return opBinary, encodeBinary(f)
	}
	var b bytes.Buffer
	if vsn == vsn1 {
		b.WriteString(`{"event":`)
		b.Write(quote(f.event))
		b.WriteString(`,"payload":`)
		b.Write(orNull(f.payload))
		b.WriteString(`,"ref":`)
		b.Write(orNull(f.ref))
		b.WriteString(`,"topic":`)
		b.Write(orNull(f.topic))
		b.WriteByte('}')
		return opText, b.Bytes()
	}
	b.WriteByte('[')
	b.Write(orNull(f.joinRef))
	b.WriteByte(',')
	b.Write(orNull(f.ref))
	b.WriteByte(',')
	b.Write(orNull(f.topic))
	b.WriteByte(',')
	b.Write(quote(f.event))
	b.WriteByte(',')
	b.Write(orNull(f.payload))
	b.WriteByte(']')
	return opText, b.Bytes()
}

// encodeBinary writes the three server kinds: push (0, no ref field),
// reply (1, status in the header) and broadcast (2, no refs at all).
func encodeBinary(f *outFrame) []byte {
	topic := refText(f.topic)
	var b []byte
	short := func(s string) string {
		if len(s) > 255 {
			return s[:255] // Phoenix would raise; a test server truncates
		}
		return s
	}
	switch {
	case f.event == eventReply:
		jr, ref, st := short(refText(f.joinRef)), short(refText(f.ref)), short(f.status)
		topic = short(topic)
		b = append(b, 1, byte(len(jr)), byte(len(ref)), byte(len(topic)), byte(len(st)))
		b = append(b, jr...)
		b = append(b, ref...)
		b = append(b, topic...)
		b = append(b, st...)
	case len(f.joinRef) == 0 || bytes.Equal(f.joinRef, jsonNull):
		ev := short(f.event)
		topic = short(topic)
		b = append(b, 2, byte(len(topic)), byte(len(ev)))
		b = append(b, topic...)
		b = append(b, ev...)
	default:
		jr, ev := short(refText(f.joinRef)), short(f.event)
		topic = short(topic)
		b = append(b, 0, byte(len(jr)), byte(len(topic)), byte(len(ev)))
		b = append(b, jr...)
		b = append(b, topic...)
		b = append(b, ev...)
	}
	return append(b, f.payload...)
}

// replyPayload builds {"response":R,"status":S}; keys sorted as Jason's.
func replyPayload(status string, response json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString(`{"response":`)
	b.Write(orNull(response))
	b.WriteString(`,"status":`)
	b.Write(quote(status))
	b.WriteByte('}')
	return b.Bytes()
}

// marshal encodes v the way Phoenix's Jason would: no HTML escaping and
// U+2028/U+2029 raw. json.RawMessage values pass through compacted.
func marshal(v any) (json.RawMessage, error) {
	if v == nil {
		return jsonNull, nil
	}
	if raw, ok := v.(json.RawMessage); ok && len(raw) > 0 && isCanonical(raw) {
		return raw, nil // already as Jason would write it; sent as it is
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeSeparators(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}

// Canonical re-encodes a JSON value the way a Phoenix server does when it
// echoes a decoded payload: object keys sorted, escapes such as \u00e9 and
// \/ written as plain UTF-8, HTML characters and U+2028/U+2029 unescaped,
// number literals kept. Invalid JSON is returned unchanged.
func Canonical(raw json.RawMessage) json.RawMessage {
	if isCanonical(raw) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return raw
	}
	out, err := marshal(v)
	if err != nil {
		return raw
	}
	return out
}

// unescapeSeparators turns encoding/json's \u2028 and \u2029 escapes back
// into raw characters, skipping escaped backslashes.
func unescapeSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) && (string(b[i+2:i+6]) == "2028" || string(b[i+2:i+6]) == "2029") {
			r, _ := strconv.ParseUint(string(b[i+2:i+6]), 16, 32)
			out = utf8.AppendRune(out, rune(r))
			i += 5
			continue
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}

// isCanonical is Canonical's fast path: it reports whether raw has no
// whitespace between tokens, no escapes in strings and every object's keys
// in strictly increasing order, so that re-encoding would not change it.
// It answers false whenever unsure.
func isCanonical(raw []byte) bool {
	type frame struct {
		object, wantKey bool
		last            []byte
		hasLast         bool
	}
	var stack []frame
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case ' ', '\t', '\n', '\r':
			return false
		case '{':
			stack = append(stack, frame{object: true, wantKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if len(stack) == 0 {
				return false
			}
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].wantKey = true
			}
		case '"':
			j := i + 1
			for j < len(raw) && raw[j] != '"' {
				if raw[j] == '\\' {
					return false
				}
				j++
			}
			if j == len(raw) {
				return false
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				f := &stack[n-1]
				key := raw[i+1 : j]
				if f.hasLast && bytes.Compare(key, f.last) <= 0 {
					return false
				}
				f.last, f.hasLast, f.wantKey = key, true, false
			}
			i = j
		}
	}
	return len(stack) == 0
}
