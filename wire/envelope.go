package wire

// DecodeEnvelope decodes a frame received from a vsn 2.0.0 server as
// V2.DecodeServer does, except that a text frame's payload is not checked:
// only the envelope (join_ref, ref, topic and event) is scanned, and
// Message.Payload spans everything from the fifth element to the closing
// bracket, so it still contains any elements after the fifth. Checking a
// payload costs far more than reading an envelope (about 1 ns per byte against
// a constant), and a reader that routes messages by topic needs only the
// envelope: it can hand the payload to the goroutine that consumes it, which
// calls CheckPayload, and the two cores share the work.
//
// A text frame is accepted by DecodeServer exactly when DecodeEnvelope
// accepts it and CheckPayload accepts its payload; the payloads are then
// equal. Binary frames are decoded fully, as DecodeServer does (their
// payloads are bytes, not JSON, and need no check).
func DecodeEnvelope(op Opcode, frame []byte) (Message, error) {
	if op != Text {
		return decodeV2(op, frame, false)
	}
	m, _, err := decodeEnvelope(frame)
	return m, err
}

// decodeEnvelope reads a V2 text frame up to its payload, and takes the
// payload's end from the frame's end: nothing but whitespace may follow the
// array's closing bracket. It also returns the payload's offset.
func decodeEnvelope(b []byte) (Message, int, error) {
	var fs [4]field
	i := skipWS(b, 0)
	if i >= len(b) {
		return Message{}, 0, malformedAt(i, "empty frame")
	}
	if b[i] != '[' {
		if _, err := skipValue(b, i); err != nil {
			return Message{}, 0, err
		}
		return Message{}, 0, errAt(ErrFieldType, i, "V2 frame must be a JSON array")
	}
	i++
	var err error
	for k, name := range fieldNames {
		i = skipWS(b, i)
		if k == 0 && i < len(b) && b[i] == ']' {
			return Message{}, 0, errAt(ErrArity, i, "empty array")
		}
		if k > 0 {
			if i, err = expectComma(b, i); err != nil {
				return Message{}, 0, err
			}
		}
		if fs[k], i, err = scanField(b, i, k < 2, name); err != nil {
			return Message{}, 0, err
		}
	}
	i = skipWS(b, i)
	if i, err = expectComma(b, i); err != nil {
		return Message{}, 0, err
	}
	end := len(b)
	for end > i && isWS(b[end-1]) {
		end--
	}
	if end <= i || b[end-1] != ']' {
		return Message{}, 0, malformedAt(end, "unterminated array")
	}
	end--
	for end > i && isWS(b[end-1]) {
		end--
	}
	if end == i {
		return Message{}, 0, malformedAt(i, "missing payload")
	}
	return messageOf(b, &fs, b[i:end:end]), i, nil
}

// CheckPayload checks the payload of a message decoded by DecodeEnvelope
// against the whole JSON grammar, as DecodeServer checks it, and returns it
// without the elements after the fifth (checked, then dropped, as Phoenix
// ignores them). Offsets in its errors count from the payload's first byte.
// It must not be given a payload DecodeServer already checked and cut: it
// would accept it, but for nothing.
func CheckPayload(p []byte) ([]byte, error) { return checkPayload(p, 0) }

// checkPayload checks p, which starts at offset base of its frame.
func checkPayload(p []byte, base int) ([]byte, error) {
	i, err := skipValue(p, 0)
	if err != nil {
		return nil, shift(err, base)
	}
	pend := i
	// Phoenix ignores elements after the fifth; so do we, once checked.
	for {
		i = skipWS(p, i)
		if i >= len(p) {
			return p[:pend:pend], nil
		}
		if p[i] != ',' {
			return nil, malformedAt(base+i, "expected ',' or ']'")
		}
		if i, err = skipValue(p, skipWS(p, i+1)); err != nil {
			return nil, shift(err, base)
		}
	}
}

// shift moves a scanner error's offset from the payload to the frame.
func shift(err error, base int) error {
	if e, ok := err.(*Error); ok && e.Offset >= 0 {
		e.Offset += base
	}
	return err
}
