package wire

import (
	"encoding/json"
	"strings"
)

// ParseReply reads a phx_reply message as status and response. For a text
// message the payload must be a JSON object with a string "status"; its
// "response" may be any JSON value and is returned raw (nil when the key is
// absent). Other keys are ignored. For a binary reply the status comes from
// the frame header (Message.Status) and the response is the raw payload.
// Response aliases m.Payload.
func ParseReply(m *Message) (Reply, error) {
	if m.Event != EventReply {
		return Reply{}, encodeErr(ErrNotReply, "event "+m.Event)
	}
	if m.Binary {
		return Reply{Status: m.Status, Response: m.Payload, Binary: true}, nil
	}
	b := m.Payload
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Reply{}, errAt(ErrFieldType, i, "reply payload must be a JSON object")
	}
	var status field
	var resp json.RawMessage
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return Reply{}, malformedAt(i, "expected object key")
			}
			kend, kesc, err := scanString(b, i)
			if err != nil {
				return Reply{}, err
			}
			key := b[i+1 : kend-1]
			if kesc {
				key = appendUnquoted(nil, b[i:kend])
			}
			i = skipWS(b, kend)
			if i >= len(b) || b[i] != ':' {
				return Reply{}, malformedAt(i, "expected ':'")
			}
			i = skipWS(b, i+1)
			switch string(key) {
			case "status":
				if status, i, err = scanField(b, i, false, "status"); err != nil {
					return Reply{}, err
				}
			case "response":
				start := i
				if i, err = skipValue(b, i); err != nil {
					return Reply{}, err
				}
				resp = json.RawMessage(b[start:i:i])
			default:
				if i, err = skipValue(b, i); err != nil {
					return Reply{}, err
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
			return Reply{}, malformedAt(i, "expected ',' or '}'")
		}
	}
	if i = skipWS(b, i); i != len(b) {
		return Reply{}, malformedAt(i, "data after the reply object")
	}
	if status.kind == fAbsent {
		return Reply{}, errAt(ErrArity, 0, "reply without status")
	}
	return Reply{Status: statusString(b, status), Response: resp}, nil
}

// statusString avoids an allocation for the two statuses Phoenix uses.
func statusString(b []byte, f field) string {
	if !f.escaped {
		switch s := b[f.start+1 : f.end-1]; string(s) {
		case "ok":
			return "ok"
		case "error":
			return "error"
		default:
			return string(s)
		}
	}
	return string(appendUnquoted(nil, b[f.start:f.end]))
}

// AppendReplyPayload appends a phx_reply payload as Phoenix writes it:
// {"response":R,"status":S}, keys in that order. An empty response is
// written as {}, which is what Phoenix sends for {:reply, :ok, socket}.
// response is copied as given; it should be one JSON value.
func AppendReplyPayload(dst []byte, status string, response json.RawMessage) []byte {
	if len(response) == 0 {
		response = emptyPayload
	}
	dst = append(dst, `{"response":`...)
	dst = append(dst, response...)
	dst = append(dst, `,"status":`...)
	out, err := appendQuoted(dst, status)
	if err != nil {
		// Invalid UTF-8 cannot be written as a JSON string; replace it.
		out, _ = appendQuoted(dst, strings.ToValidUTF8(status, "\uFFFD"))
	}
	return append(out, '}')
}
