package wire

import (
	"encoding/json"
	"errors"
)

// Ref is an opaque message reference. Phoenix sends refs as strings, or as
// null on broadcasts and server pushes; the zero Ref is null. Refs are never
// interpreted as numbers: a numeric ref read from a frame keeps its literal
// text (see Message).
type Ref struct {
	s     string
	valid bool
}

// NewRef returns a non-null Ref holding s.
func NewRef(s string) Ref { return Ref{s: s, valid: true} }

// IsNull reports whether r is null.
func (r Ref) IsNull() bool { return !r.valid }

// String returns the ref's text, or "" when r is null.
func (r Ref) String() string { return r.s }

// Get returns the ref's text and whether it is non-null.
func (r Ref) Get() (string, bool) { return r.s, r.valid }

// Opcode is the kind of WebSocket data frame a message travels in. Its values
// equal gorilla/websocket's TextMessage and BinaryMessage.
type Opcode int

// The two data-frame opcodes.
const (
	Text   Opcode = 1
	Binary Opcode = 2
)

// Well-known event names.
const (
	EventJoin      = "phx_join"
	EventLeave     = "phx_leave"
	EventReply     = "phx_reply"
	EventError     = "phx_error"
	EventClose     = "phx_close"
	EventHeartbeat = "heartbeat"
	TopicPhoenix   = "phoenix"
)

// Message is one Phoenix Channels message in either direction.
//
// Payload holds the raw payload: JSON text when Binary is false, arbitrary
// bytes when Binary is true (a binary frame). Decoders slice Payload out of the
// frame without copying or decoding it, so it aliases the decoded buffer.
//
// Status is set only for messages decoded from a binary reply frame (kind 1),
// whose status travels in the frame header rather than in the payload; for
// such a message Event is "phx_reply" and Payload is the response bytes.
// When encoding a binary reply, Status must be set likewise.
type Message struct {
	JoinRef Ref
	Ref     Ref
	Topic   string
	Event   string
	Payload []byte
	Binary  bool
	Status  string
}

// JSON returns the payload as raw JSON, or nil when the payload is binary.
func (m *Message) JSON() json.RawMessage {
	if m.Binary {
		return nil
	}
	return json.RawMessage(m.Payload)
}

// Reply is the view of a phx_reply payload: a status ("ok", "error", or
// anything a server chooses) and the raw response, which may be any JSON
// value (object, string, array, null) or, for a binary reply, raw bytes.
type Reply struct {
	Status   string
	Response json.RawMessage
	Binary   bool
}

// Errors. Every decoding error wraps ErrMalformed; finer sentinels say why.
var (
	ErrMalformed   = errors.New("wire: malformed frame")
	ErrTooLong     = errors.New("wire: field longer than 255 bytes")
	ErrUnknownKind = errors.New("wire: unknown binary message kind")
	ErrInvalidUTF8 = errors.New("wire: invalid UTF-8")
	ErrNotReply    = errors.New("wire: not a phx_reply message")
	ErrUnsupported = errors.New("wire: unsupported by this serializer")
)
