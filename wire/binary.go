package wire

import (
	"strconv"
	"unicode/utf8"
)

// Binary frame kinds (the first byte of a binary frame).
const (
	KindPush      byte = 0
	KindReply     byte = 1
	KindBroadcast byte = 2
)

// decodeBinary reads a binary frame. fromClient selects the client push
// layout for kind 0 (with a ref) and rejects the kinds only a server sends.
//
// Layouts (every length is one byte, every field raw bytes):
//
//	client push: 0, len(join_ref), len(ref), len(topic), len(event), join_ref, ref, topic, event, data
//	server push: 0, len(join_ref), len(topic), len(event), join_ref, topic, event, data
//	reply:       1, len(join_ref), len(ref), len(topic), len(status), join_ref, ref, topic, status, data
//	broadcast:   2, len(topic), len(event), topic, event, data
func decodeBinary(b []byte, fromClient bool) (Message, error) {
	if len(b) == 0 {
		return Message{}, errAt(ErrTruncated, 0, "empty binary frame")
	}
	kind := b[0]
	// which header fields are present, in order: join_ref, ref, topic, event
	var has [4]bool
	switch {
	case kind == KindPush && fromClient, kind == KindReply && !fromClient:
		has = [4]bool{true, true, true, true}
	case kind == KindPush:
		has = [4]bool{true, false, true, true}
	case kind == KindBroadcast && !fromClient:
		has = [4]bool{false, false, true, true}
	default:
		return Message{}, errAt(ErrUnknownKind, 0, "kind "+strconv.Itoa(int(kind)))
	}
	var lens [4]int
	i := 1
	for k := range has {
		if !has[k] {
			continue
		}
		if i >= len(b) {
			return Message{}, errAt(ErrTruncated, i, "header lengths cut short")
		}
		lens[k] = int(b[i])
		i++
	}
	start := i
	total := lens[0] + lens[1] + lens[2] + lens[3]
	if len(b)-start < total {
		return Message{}, errAt(ErrTruncated, start, "header fields run past the end")
	}
	// Each field on its own: the concatenation can be valid UTF-8 when a
	// character is split across two fields.
	off := start
	for _, n := range lens {
		if !utf8.Valid(b[off : off+n]) {
			return Message{}, errAt(ErrInvalidUTF8, off, "header field is not UTF-8")
		}
		off += n
	}
	// One allocation for all four fields, which are contiguous.
	span := string(b[start : start+total])
	var s [4]string
	off = 0
	for k, n := range lens {
		s[k] = span[off : off+n]
		off += n
	}
	end := start + total
	m := Message{Payload: b[end:len(b):len(b)], Binary: true, Topic: s[2]}
	if has[0] {
		m.JoinRef = binRef(s[0])
	}
	if has[1] {
		m.Ref = binRef(s[1])
	}
	if kind == KindReply {
		if s[3] == "" {
			return Message{}, malformedAt(4, "binary reply without a status")
		}
		m.Event = EventReply
		m.Status = s[3]
	} else {
		m.Event = s[3]
	}
	return m, nil
}

// binRef maps a zero-length ref to null: the binary layout has no null, and
// a zero length is what a missing ref is written as.
func binRef(s string) Ref {
	if s == "" {
		return Ref{}
	}
	return NewRef(s)
}

// encodeBinary appends a binary frame. fromClient selects the client push
// layout; otherwise the kind follows from the message (see EncodeServer).
func encodeBinary(dst []byte, m *Message, fromClient bool) ([]byte, error) {
	var fields [4]string
	var has [4]bool
	var kind byte
	jr, _ := m.JoinRef.Get()
	ref, _ := m.Ref.Get()
	switch {
	case fromClient:
		kind, has, fields = KindPush, [4]bool{true, true, true, true}, [4]string{jr, ref, m.Topic, m.Event}
	case m.Event == EventReply:
		if m.Status == "" {
			return dst, encodeErr(ErrInvalid, "binary reply without a status")
		}
		kind, has, fields = KindReply, [4]bool{true, true, true, true}, [4]string{jr, ref, m.Topic, m.Status}
	case m.JoinRef.IsNull() && m.Ref.IsNull():
		kind, has, fields = KindBroadcast, [4]bool{false, false, true, true}, [4]string{"", "", m.Topic, m.Event}
	default:
		kind, has, fields = KindPush, [4]bool{true, false, true, true}, [4]string{jr, "", m.Topic, m.Event}
	}
	for k, f := range fields {
		if !has[k] {
			continue
		}
		if len(f) > 255 {
			return dst, encodeErr(ErrTooLong, fieldNames[k]+" is "+strconv.Itoa(len(f))+" bytes")
		}
		if !utf8.ValidString(f) {
			return dst, encodeErr(ErrInvalidUTF8, fieldNames[k]+" is not valid UTF-8")
		}
	}
	dst = append(dst, kind)
	for k, f := range fields {
		if has[k] {
			dst = append(dst, byte(len(f)))
		}
	}
	for k, f := range fields {
		if has[k] {
			dst = append(dst, f...)
		}
	}
	return append(dst, m.Payload...), nil
}
