package wire

// decodeArray decodes a V2 text frame, [join_ref, ref, topic, event, payload].
// Both directions share it: the array form does not depend on who sent it.
func decodeArray(b []byte) (Message, error) {
	m, pstart, err := decodeEnvelope(b)
	if err != nil {
		return Message{}, err
	}
	if m.Payload, err = checkPayload(m.Payload, pstart); err != nil {
		return Message{}, err
	}
	return m, nil
}

// fieldNames names the header fields in frame order.
var fieldNames = [4]string{"join_ref", "ref", "topic", "event"}

// expectComma consumes the ',' between two elements; at a ']' it reports
// too few elements.
func expectComma(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == ',' {
		return skipWS(b, i+1), nil
	}
	if i < len(b) && b[i] == ']' {
		return 0, errAt(ErrArity, i, "fewer than 5 elements")
	}
	return 0, malformedAt(i, "expected ','")
}

// encodeArray appends [join_ref, ref, topic, event, payload] exactly as
// JSON.stringify writes the JavaScript client's array.
func encodeArray(dst []byte, m *Message) ([]byte, error) {
	payload, err := textPayload(m)
	if err != nil {
		return dst, err
	}
	n := len(dst)
	dst = append(dst, '[')
	if dst, err = appendRef(dst, m.JoinRef); err != nil {
		return dst[:n], err
	}
	dst = append(dst, ',')
	if dst, err = appendRef(dst, m.Ref); err != nil {
		return dst[:n], err
	}
	dst = append(dst, ',')
	if dst, err = appendField(dst, m.Topic, "topic"); err != nil {
		return dst[:n], err
	}
	dst = append(dst, ',')
	if dst, err = appendField(dst, m.Event, "event"); err != nil {
		return dst[:n], err
	}
	dst = append(dst, ',')
	dst = append(dst, payload...)
	return append(dst, ']'), nil
}

// emptyPayload is what an empty text payload is sent as: the empty object
// Phoenix uses when there is nothing to say.
var emptyPayload = []byte("{}")

func textPayload(m *Message) ([]byte, error) {
	if len(m.Payload) == 0 {
		return emptyPayload, nil
	}
	if err := validJSON(m.Payload); err != nil {
		return nil, encodeErr(ErrInvalid, "payload is not one JSON value: "+err.Error())
	}
	return m.Payload, nil
}

func appendRef(dst []byte, r Ref) ([]byte, error) {
	s, ok := r.Get()
	if !ok {
		return append(dst, "null"...), nil
	}
	return appendField(dst, s, "ref")
}

func appendField(dst []byte, s, name string) ([]byte, error) {
	out, err := appendQuoted(dst, s)
	if err != nil {
		return dst, encodeErr(ErrInvalidUTF8, name+" is not valid UTF-8")
	}
	return out, nil
}
