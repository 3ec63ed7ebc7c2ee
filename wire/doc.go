// Package wire encodes and decodes Phoenix Channels messages: the JSON
// array format of vsn 2.0.0, Phoenix's binary frames, and the JSON object
// format of vsn 1.0.0. It is made of pure functions: no goroutines, no
// state, safe for concurrent use.
//
// # Start here
//
// A client picks a [Serializer] with [SerializerFor] (or uses [V2]),
// encodes what it sends with EncodeClient and decodes what it receives
// with DecodeServer. A phx_reply message is read with [ParseReply]. A
// server (the test server) uses the mirror pair, EncodeServer and
// DecodeClient, and builds reply payloads with [AppendReplyPayload].
//
// # Messages and payloads
//
// A [Message] keeps its payload raw. Decoding reads only the envelope —
// join_ref, ref, topic and event — and slices the payload out of the frame
// without decoding it, so Message.Payload aliases the frame: copy it if the
// frame's buffer is reused while the message is still in use. The header
// strings are copied, all of them in a single allocation (a decoded
// message costs one allocation whatever its size, none when every header
// field is null or empty).
//
// A text payload is JSON (Message.JSON returns it as json.RawMessage); a
// binary payload (Message.Binary) is raw bytes. An empty text payload is
// sent as {}.
//
// # What decoding checks
//
// The envelope is checked completely: a V2 text frame must be one JSON
// array with at least five elements, refs must be strings, numbers or
// null, topic and event strings (or null), and nothing may follow the
// array. The payload, and any element after it, is checked against the
// whole JSON grammar (RFC 8259) by a hand-written scanner that builds no
// values: strings with valid escapes and no raw control characters,
// numbers, literals, commas and colons, nesting up to 10000 levels, and
// UTF-8 validity of every string. Lone surrogate escapes such as \ud800
// are accepted, as JSON's grammar allows. So a payload that decoding
// accepts is one encoding/json accepts too (the fuzz tests hold the two
// scanners to that). Binary payloads are not looked at.
//
// A reader that only routes messages can split the work: [DecodeEnvelope]
// checks the envelope alone (under a hundred nanoseconds on a 2-core
// server, whatever the payload's size) and [CheckPayload], run later by
// whoever consumes the payload, checks the rest. Together they accept
// exactly what DecodeServer accepts.
//
// Encoders check what they are given as well: text payloads must be one
// JSON value, header strings valid UTF-8, and binary header fields at most
// 255 bytes ([ErrTooLong]).
//
// # Choices where Phoenix leaves room
//
//   - Arity: Phoenix accepts a V2 array with more than five elements and
//     ignores the extra ones, and rejects four. So does this package: the
//     extra elements are checked as JSON and dropped; fewer than five is
//     [ErrArity].
//   - Refs are opaque strings. Phoenix accepts numeric refs and echoes them
//     as numbers; a numeric ref decodes to its literal text ("1", "2.5e3")
//     and is encoded back as a string. Null is distinct from "" in text
//     frames. Binary frames cannot carry null: a null ref is written with
//     length 0 and a zero-length ref decodes as null.
//   - A null topic or event decodes as "": Phoenix echoes a client's null
//     topic in its "unmatched topic" reply. Any other non-string topic or
//     event is [ErrFieldType].
//   - V1 objects need topic, event and payload; ref and join_ref may be
//     missing (null). Unknown keys are ignored. V1 servers never send a
//     join_ref, so EncodeServer of V1 leaves it out; EncodeClient of V1
//     leaves out a null join_ref, as the JavaScript client does for
//     heartbeats.
//
// # Binary frames
//
// Binary frames exist only in vsn 2.0.0 ([V1] returns [ErrUnsupported]).
// A client sends a push (kind 0, with ref). A server sends a push (kind 0,
// without ref), a reply (kind 1, whose status travels in the header and is
// decoded into Message.Status with Event "phx_reply") or a broadcast
// (kind 2, no refs). EncodeServer picks the kind from the message:
// phx_reply is a reply, a message without join_ref and ref is a broadcast,
// anything else is a push (whose ref, if any, cannot be sent). Every
// length field is one byte, so header fields are at most 255 bytes.
//
// # Compatibility with the JavaScript client
//
// EncodeClient writes exactly the bytes the official JavaScript client
// (npm phoenix) writes for the same message: JSON.stringify's escaping for
// topic, event and refs (only '"', '\\' and control characters are
// escaped; '<', '>', '&', U+2028 and non-ASCII text are written raw) and
// the payload as given. The golden vectors in testdata/golden, produced by
// testdata/js/golden_wire.mjs from the pinned npm package, hold the
// encoders to that. One deliberate difference: for a binary push whose
// join_ref is null the JavaScript client writes the four bytes "null";
// this package writes a zero-length join_ref.
//
// # Errors
//
// Decoding errors are [*Error] values: errors.Is(err, [ErrMalformed])
// holds for all of them, and the finer sentinels [ErrArity],
// [ErrFieldType], [ErrTruncated], [ErrUnknownKind] and [ErrInvalidUTF8]
// say why. Nothing panics on bad input; the decoders are fuzzed.
package wire
