package wire

import "strconv"

// Serializer encodes and decodes the frames of one protocol version. The
// client side uses EncodeClient and DecodeServer; a server (such as the test
// server) uses the mirror pair. All methods are pure and safe for
// concurrent use.
//
// Decoders slice Message.Payload out of frame without copying it: the
// payload aliases frame, so the caller must not reuse frame's memory while
// the message is in use (copy the payload first if it must outlive the
// buffer). Header strings (topic, event, refs, status) are copied.
//
// Encoders append to dst and return the extended slice together with the
// opcode of the WebSocket frame to send it in. On error dst is returned
// unchanged in length.
type Serializer interface {
	// Vsn is the value of the vsn connect parameter: "2.0.0" or "1.0.0".
	Vsn() string
	// EncodeClient appends the frame a client sends for m.
	EncodeClient(dst []byte, m *Message) ([]byte, Opcode, error)
	// DecodeServer decodes a frame received from a server.
	DecodeServer(op Opcode, frame []byte) (Message, error)
	// EncodeServer appends the frame a server sends for m.
	EncodeServer(dst []byte, m *Message) ([]byte, Opcode, error)
	// DecodeClient decodes a frame received from a client.
	DecodeClient(op Opcode, frame []byte) (Message, error)
}

// The two serializers Phoenix speaks.
var (
	// V2 is vsn 2.0.0: JSON arrays in text frames and Phoenix's binary
	// frames for binary payloads.
	V2 Serializer = v2{}
	// V1 is vsn 1.0.0: JSON objects in text frames; no binary payloads.
	V1 Serializer = v1{}
)

// SerializerFor returns the serializer for a vsn value. "" and "2.0.0" give
// V2 (the JavaScript client's default; note that a Phoenix server that
// receives no vsn at all speaks 1.0.0, so a client always sends vsn);
// "1.0.0" gives V1. Anything else is ErrUnsupported.
func SerializerFor(vsn string) (Serializer, error) {
	switch vsn {
	case "", "2.0.0":
		return V2, nil
	case "1.0.0":
		return V1, nil
	}
	return nil, encodeErr(ErrUnsupported, "vsn "+vsn)
}

type v2 struct{}

func (v2) Vsn() string { return "2.0.0" }

func (v2) EncodeClient(dst []byte, m *Message) ([]byte, Opcode, error) {
	if m.Binary {
		out, err := encodeBinary(dst, m, true)
		return out, Binary, err
	}
	out, err := encodeArray(dst, m)
	return out, Text, err
}

func (v2) EncodeServer(dst []byte, m *Message) ([]byte, Opcode, error) {
	if m.Binary {
		out, err := encodeBinary(dst, m, false)
		return out, Binary, err
	}
	out, err := encodeArray(dst, m)
	return out, Text, err
}

func (v2) DecodeServer(op Opcode, frame []byte) (Message, error) {
	return decodeV2(op, frame, false)
}

func (v2) DecodeClient(op Opcode, frame []byte) (Message, error) {
	return decodeV2(op, frame, true)
}

func decodeV2(op Opcode, frame []byte, fromClient bool) (Message, error) {
	switch op {
	case Text:
		return decodeArray(frame)
	case Binary:
		return decodeBinary(frame, fromClient)
	}
	return Message{}, errAt(ErrUnsupported, -1, "opcode "+opName(op))
}

type v1 struct{}

func (v1) Vsn() string { return "1.0.0" }

func (v1) EncodeClient(dst []byte, m *Message) ([]byte, Opcode, error) {
	out, err := encodeObjectClient(dst, m)
	return out, Text, err
}

func (v1) EncodeServer(dst []byte, m *Message) ([]byte, Opcode, error) {
	out, err := encodeObjectServer(dst, m)
	return out, Text, err
}

func (v1) DecodeServer(op Opcode, frame []byte) (Message, error) { return decodeV1(op, frame) }

func (v1) DecodeClient(op Opcode, frame []byte) (Message, error) { return decodeV1(op, frame) }

func decodeV1(op Opcode, frame []byte) (Message, error) {
	if op != Text {
		return Message{}, errAt(ErrUnsupported, -1, "opcode "+opName(op)+" on vsn 1.0.0")
	}
	return decodeObject(frame)
}

func opName(op Opcode) string {
	switch op {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return strconv.Itoa(int(op))
}
