package phx

import (
	"encoding/json"
	"errors"

	"github.com/phxgo/phxgo/phx/internal/jsondec"
)

// Message is one message from the server delivered to a subscription.
//
// Payload is raw: JSON text, or arbitrary bytes when Binary is set (a binary
// frame). It is never decoded unless asked (Decode, EventsAs).
//
// Payload is read-only: every subscription that receives a message (those
// of its channel and the socket-wide ones) gets the same bytes, without a
// copy. The library never writes them or reuses them after delivery; a
// receiver that wants to modify them copies first (bytes.Clone). The
// exception is a subscription made with Lend, whose payloads are valid
// only until its consumer takes the next message.
type Message struct {
	Topic   string
	Event   string
	Payload json.RawMessage
	Binary  bool
	// JoinRef is the join_ref of the channel's join session the message was
	// received in, even for broadcasts, which carry none on the wire. A
	// change of JoinRef marks a rejoin: presence state starts over.
	JoinRef string
	// Ref is the frame's ref; set only on replies in the socket-wide stream.
	Ref string

	lease *frameBuf // the reusable buffer a lent Payload is in (Lend)
}

// Decode decodes the JSON payload of m into a T.
//
// Common shapes (structs of strings, numbers, bools, RawMessage, pointers and
// slices of those) take a one-pass decoder a few times faster than
// encoding/json; anything it does not reproduce exactly, including every
// error, is decoded by encoding/json, so the result is always the same.
func Decode[T any](m Message) (T, error) {
	var v T
	if m.Binary {
		return v, &DecodeError{Topic: m.Topic, Event: m.Event, Err: errors.New("binary payload")}
	}
	if jsondec.Into(m.Payload, &v) {
		return v, nil
	}
	// A fresh value: the fast path may have written part of v before giving
	// up. A separate variable also keeps v off the heap (encoding/json makes
	// what it is given escape).
	var w T
	if err := json.Unmarshal(m.Payload, &w); err != nil {
		return w, &DecodeError{Topic: m.Topic, Event: m.Event, Err: err}
	}
	return w, nil
}

// Reply is a push's reply: its status and the raw response (JSON, or bytes
// when Binary).
type Reply struct {
	Status   string
	Response json.RawMessage
	Binary   bool
}

// Typed is a message with its payload decoded into a T.
type Typed[T any] struct {
	Message
	Value T
}

// Binary is a payload sent as a binary frame (vsn 2.0.0 only) by Push and
// Send: phx.Binary(data). A plain []byte is not binary: it marshals as JSON
// (a base64 string), as encoding/json does.
type Binary []byte
