package wire

// decodeObject decodes a V1 text frame: a JSON object with the keys topic,
// event and payload (required), ref and join_ref (optional, null when
// absent). Other keys are checked and ignored; a repeated key counts once,
// the last occurrence winning, as in Phoenix's JSON library.
func decodeObject(b []byte) (Message, error) {
	i := skipWS(b, 0)
	if i >= len(b) {
		return Message{}, malformedAt(i, "empty frame")
	}
	if b[i] != '{' {
		if _, err := skipValue(b, i); err != nil {
			return Message{}, err
		}
		return Message{}, errAt(ErrFieldType, i, "V1 frame must be a JSON object")
	}
	// fs order matches Message: join_ref, ref, topic, event.
	var fs [4]field
	pstart, pend := -1, -1
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return Message{}, malformedAt(i, "expected object key")
			}
			kend, kesc, err := scanString(b, i)
			if err != nil {
				return Message{}, err
			}
			key := b[i+1 : kend-1]
			if kesc {
				key = appendUnquoted(nil, b[i:kend])
			}
			i = skipWS(b, kend)
			if i >= len(b) || b[i] != ':' {
				return Message{}, malformedAt(i, "expected ':'")
			}
			i = skipWS(b, i+1)
			slot := -1
			switch string(key) {
			case "join_ref":
				slot = 0
			case "ref":
				slot = 1
			case "topic":
				slot = 2
			case "event":
				slot = 3
			case "payload":
				pstart = i
				if i, err = skipValue(b, i); err != nil {
					return Message{}, err
				}
				pend = i
			default:
				if i, err = skipValue(b, i); err != nil {
					return Message{}, err
				}
			}
			if slot >= 0 {
				ref := slot < 2
				if fs[slot], i, err = scanField(b, i, ref, fieldNames[slot]); err != nil {
					return Message{}, err
				}
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return Message{}, malformedAt(i, "expected ',' or '}'")
		}
	}
	if i = skipWS(b, i); i != len(b) {
		return Message{}, malformedAt(i, "data after the message object")
	}
	switch {
	case fs[2].kind == fAbsent:
		return Message{}, errAt(ErrArity, 0, "no topic")
	case fs[3].kind == fAbsent:
		return Message{}, errAt(ErrArity, 0, "no event")
	case pstart < 0:
		return Message{}, errAt(ErrArity, 0, "no payload")
	}
	return messageOf(b, &fs, b[pstart:pend:pend]), nil
}

// encodeObjectClient appends the object the JavaScript client sends on a
// vsn=1.0.0 socket: JSON.stringify of {topic, event, payload, ref, join_ref}
// in that key order. A null join_ref is left out, as JSON.stringify leaves
// out the undefined join_ref of a heartbeat; a null ref is written as null.
func encodeObjectClient(dst []byte, m *Message) ([]byte, error) {
	if m.Binary {
		return dst, encodeErr(ErrUnsupported, "binary payloads need vsn 2.0.0")
	}
	payload, err := textPayload(m)
	if err != nil {
		return dst, err
	}
	n := len(dst)
	dst = append(dst, `{"topic":`...)
	if dst, err = appendField(dst, m.Topic, "topic"); err != nil {
		return dst[:n], err
	}
	dst = append(dst, `,"event":`...)
	if dst, err = appendField(dst, m.Event, "event"); err != nil {
		return dst[:n], err
	}
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	dst = append(dst, `,"ref":`...)
	if dst, err = appendRef(dst, m.Ref); err != nil {
		return dst[:n], err
	}
	if !m.JoinRef.IsNull() {
		dst = append(dst, `,"join_ref":`...)
		if dst, err = appendRef(dst, m.JoinRef); err != nil {
			return dst[:n], err
		}
	}
	return append(dst, '}'), nil
}

// encodeObjectServer appends the object Phoenix's V1 serializer sends:
// keys event, payload, ref, topic in that (sorted) order and no join_ref,
// which V1 never carries from server to client.
func encodeObjectServer(dst []byte, m *Message) ([]byte, error) {
	if m.Binary {
		return dst, encodeErr(ErrUnsupported, "binary payloads need vsn 2.0.0")
	}
	payload, err := textPayload(m)
	if err != nil {
		return dst, err
	}
	n := len(dst)
	dst = append(dst, `{"event":`...)
	if dst, err = appendField(dst, m.Event, "event"); err != nil {
		return dst[:n], err
	}
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	dst = append(dst, `,"ref":`...)
	if dst, err = appendRef(dst, m.Ref); err != nil {
		return dst[:n], err
	}
	dst = append(dst, `,"topic":`...)
	if dst, err = appendField(dst, m.Topic, "topic"); err != nil {
		return dst[:n], err
	}
	return append(dst, '}'), nil
}
