package wire

import "unsafe"

// field is one header field of a JSON frame, as found by the scanner:
// a span of the frame plus how to turn it into a Go string.
type field struct {
	start, end int  // the literal's bytes, quotes included for strings
	kind       byte // fNull, fString, fNumber; 0 = absent
	escaped    bool
}

const (
	fAbsent byte = iota
	fNull
	fString
	fNumber
)

// scanField checks the value at b[i] and records it as a header field.
// Strings and null are allowed, and numbers when numeric is true (refs).
func scanField(b []byte, i int, numeric bool, name string) (field, int, error) {
	if i >= len(b) {
		return field{}, 0, malformedAt(i, "missing "+name)
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, err := scanString(b, i)
		if err != nil {
			return field{}, 0, err
		}
		return field{start: i, end: end, kind: fString, escaped: esc}, end, nil
	case c == 'n':
		// A null topic or event is read as "": Phoenix echoes a client's
		// null topic in its "unmatched topic" reply.

		end, err := scanLiteral(b, i, "null")
		if err != nil {
			return field{}, 0, err
		}
		return field{start: i, end: end, kind: fNull}, end, nil
	case numeric && (c == '-' || ('0' <= c && c <= '9')):
		end, err := scanNumber(b, i)
		if err != nil {
			return field{}, 0, err
		}
		return field{start: i, end: end, kind: fNumber}, end, nil
	default:
		if _, err := skipValue(b, i); err != nil {
			return field{}, 0, err
		}
		return field{}, 0, errAt(ErrFieldType, i, name+" must be a string")
	}
}

// headerStrings turns the fields into strings with one allocation: the
// contents of every field (escapes resolved, which never makes a string
// longer) are appended to one buffer sized for all of them, and each field
// is a substring of it. The buffer is never written again once it becomes a
// string, which is what makes unsafe.String sound here.
func headerStrings(b []byte, fs *[4]field) (out [4]string) {
	total := 0
	for _, f := range fs {
		switch f.kind {
		case fString:
			total += f.end - f.start - 2 // escapes make this an upper bound
		case fNumber:
			total += f.end - f.start
		}
	}
	if total == 0 {
		return out
	}
	buf := make([]byte, 0, total)
	var offs [5]int
	for k, f := range fs {
		offs[k] = len(buf)
		switch {
		case f.kind == fString && f.escaped:
			buf = appendUnquoted(buf, b[f.start:f.end])
		case f.kind == fString:
			buf = append(buf, b[f.start+1:f.end-1]...)
		case f.kind == fNumber:
			buf = append(buf, b[f.start:f.end]...)
		}
	}
	offs[4] = len(buf)
	if len(buf) == 0 {
		return out
	}
	span := unsafe.String(unsafe.SliceData(buf), len(buf))
	for k := range fs {
		out[k] = span[offs[k]:offs[k+1]]
	}
	return out
}

func refOf(f field, s string) Ref {
	if f.kind == fString || f.kind == fNumber {
		return NewRef(s)
	}
	return Ref{}
}

// messageOf builds the message of a text frame b from its header fields fs
// and its payload (a slice of b).
func messageOf(b []byte, fs *[4]field, payload []byte) Message {
	s := headerStrings(b, fs)
	return Message{
		JoinRef: refOf(fs[0], s[0]),
		Ref:     refOf(fs[1], s[1]),
		Topic:   s[2],
		Event:   s[3],
		Payload: payload,
	}
}
