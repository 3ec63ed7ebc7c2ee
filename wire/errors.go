package wire

import (
	"errors"
	"strconv"
)

// Finer decoding errors. Each is reported together with ErrMalformed, so
// errors.Is(err, ErrMalformed) holds for every decoding error.
var (
	ErrArity     = errors.New("wire: wrong number of message elements")
	ErrFieldType = errors.New("wire: header field of the wrong JSON type")
	ErrTruncated = errors.New("wire: binary frame shorter than its header says")
	// ErrInvalid is returned by encoders for a message that cannot be put on
	// the wire: a text payload that is not one JSON value, or a binary reply
	// without a status.
	ErrInvalid = errors.New("wire: invalid message")
)

// Error describes why a frame could not be decoded or a message encoded.
// It matches (errors.Is) its Kind, and also ErrMalformed when it comes from
// a decoder.
type Error struct {
	Kind   error  // the finest sentinel: ErrMalformed, ErrArity, ErrInvalidUTF8, ...
	Offset int    // byte offset in the frame, or -1
	Detail string // human-readable detail
	decode bool
}

func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Offset >= 0 {
		s += " at offset " + strconv.Itoa(e.Offset)
	}
	return s
}

// Unwrap returns Kind, plus ErrMalformed for decoding errors.
func (e *Error) Unwrap() []error {
	if e.decode && e.Kind != ErrMalformed {
		return []error{e.Kind, ErrMalformed}
	}
	return []error{e.Kind}
}

func errAt(kind error, off int, detail string) error {
	return &Error{Kind: kind, Offset: off, Detail: detail, decode: true}
}

func malformedAt(off int, detail string) error { return errAt(ErrMalformed, off, detail) }

func encodeErr(kind error, detail string) error {
	return &Error{Kind: kind, Offset: -1, Detail: detail}
}
