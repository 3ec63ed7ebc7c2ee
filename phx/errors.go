package phx

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Test for them with errors.Is; the errors the library
// returns often wrap them with more detail.
var (
	// ErrClosed: the socket was closed (Close, a fatal disconnect) or the
	// channel was closed by the server (phx_close) before the call completed.
	ErrClosed = errors.New("phx: closed")
	// ErrTimeout: no reply arrived within the push, join or leave timeout.
	ErrTimeout = errors.New("phx: timeout")
	// ErrLeft: the channel was left with Leave.
	ErrLeft = errors.New("phx: channel left")
	// ErrSlowConsumer: a subscription's buffer overflowed. It ends a
	// subscription whose policy is CloseWithError and is the Err of the
	// SlowConsumer status event.
	ErrSlowConsumer = errors.New("phx: slow consumer")
	// ErrPushBufferFull: too many pushes are waiting for the channel to join
	// (Config.PushBuffer).
	ErrPushBufferFull = errors.New("phx: push buffer full")
	// ErrDisconnected: the push was sent, but the connection dropped or the
	// channel's server process ended (phx_error) before the reply arrived, so
	// no reply can come any more. The server may or may not have handled it.
	// When the channel crashed on the server, a *ServerError is in the
	// error's chain too.
	ErrDisconnected = errors.New("phx: disconnected before reply")
	// ErrNotJoined: Push or Leave on a channel that Join was never called on.
	ErrNotJoined = errors.New("phx: channel not joined")
	// ErrAlreadyJoined: Join on a channel that was joined before. A Channel
	// joins once; make a new one with Socket.Channel to join again.
	ErrAlreadyJoined = errors.New("phx: channel already joined")
	// ErrHeartbeatTimeout: the server did not answer a heartbeat in time;
	// the connection was presumed dead, closed and reconnected.
	ErrHeartbeatTimeout = errors.New("phx: heartbeat timeout")
	// ErrProtocol: the server sent a frame the client could not decode; the
	// connection is closed and reconnected. The wire error is wrapped.
	ErrProtocol = errors.New("phx: protocol error")
	// ErrInvalidArgument: a call was given a value it cannot use (a close
	// code outside 1000 and 3000 to 4999, for example); nothing was done.
	ErrInvalidArgument = errors.New("phx: invalid argument")
)

// ReplyError is a reply whose status is not "ok" (Phoenix's {:error, resp}).
// Response is the server's response, raw.
type ReplyError struct {
	Status   string
	Response []byte
}

func (e *ReplyError) Error() string {
	return "phx: reply " + strconv.Quote(e.Status) + ": " + string(e.Response)
}

// AsReplyError returns the ReplyError in err's chain, if any.
func AsReplyError(err error) (*ReplyError, bool) {
	var re *ReplyError
	ok := errors.As(err, &re)
	return re, ok
}

// JoinError is returned by Join: the join was refused (Err is a *ReplyError
// holding the server's response), timed out (ErrTimeout), or the socket
// closed (ErrClosed).
type JoinError struct {
	Topic string
	Err   error
}

func (e *JoinError) Error() string { return "phx: join " + e.Topic + ": " + e.Err.Error() }
func (e *JoinError) Unwrap() error { return e.Err }

// DialError is a failed connection attempt. Status is the HTTP status of a
// refused WebSocket upgrade (401, 403, 400...) or 0 when there was no HTTP
// response (DNS, TCP, TLS errors). Body holds the start of the response body.
//
// URL is the URL dialled with its query values (tokens, other connect
// params) and any password redacted, as it appears in Error, so that
// printing or logging the error or its fields leaks no secret; FullURL
// returns it as dialled.
type DialError struct {
	URL    string
	Status int
	Body   []byte
	Err    error

	full string
}

// GoString keeps %#v from printing the full URL.
func (e *DialError) GoString() string {
	return fmt.Sprintf("&phx.DialError{URL:%q, Status:%d, Body:%q, Err:%v}", e.URL, e.Status, e.Body, e.Err)
}

// FullURL is the URL as dialled, secrets included.
func (e *DialError) FullURL() string {
	if e.full == "" {
		return e.URL
	}
	return e.full
}

func (e *DialError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("phx: dial %s: HTTP %d: %v", e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("phx: dial %s: %v", e.URL, e.Err)
}
func (e *DialError) Unwrap() error { return e.Err }

// newDialError makes a DialError for the URL u, redacted.
func newDialError(u string, err error) *DialError {
	return &DialError{URL: redactURL(u), full: u, Err: redactErr(err)}
}

// Unauthorized reports whether the server refused the upgrade with 401 or 403.
func (e *DialError) Unauthorized() bool { return e.Status == 401 || e.Status == 403 }

// CloseError is a connection closed with a WebSocket close frame (or 1006 when
// the connection ended without one).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return "phx: connection closed with code " + strconv.Itoa(e.Code)
	}
	return "phx: connection closed with code " + strconv.Itoa(e.Code) + ": " + e.Reason
}

// CloseCode returns the close code in err's chain, or 0.
func CloseCode(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// DecodeError is a payload that could not be decoded into the requested type.
type DecodeError struct {
	Topic, Event string
	Err          error
}

func (e *DecodeError) Error() string {
	return "phx: decode " + e.Topic + " " + e.Event + ": " + e.Err.Error()
}
func (e *DecodeError) Unwrap() error { return e.Err }

// ServerError is the reason a channel errored when the server sent
// phx_error (the channel process crashed). Payload is its raw payload ({}
// on Phoenix 1.7, {"reason": ...} on 1.8).
type ServerError struct {
	Topic   string
	Event   string
	Payload []byte
}

func (e *ServerError) Error() string {
	return "phx: channel " + e.Topic + " errored on the server: " + string(e.Payload)
}
