package phxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Handler is the server side of a channel, Phoenix's Phoenix.Channel
// behaviour in Go. The server calls every method on the channel's own
// goroutine, one call at a time, so a handler needs no locking for state it
// keeps per channel (store it in ch.Assigns or in a map keyed by *Channel).
// A panic in any method crashes the channel exactly like an Elixir raise:
// the client gets phx_error and the socket stays up.
//
// ctx is cancelled when the channel stops (leave, crash, connection closed,
// server Close); a handler that blocks must return when it is done.
type Handler interface {
	// Join answers phx_join. Return a response (any JSON value, nil for
	// {}) to accept, or an error made by Refuse to reject with a response.
	// Any other error, or a panic, rejects with {"reason":"join crashed"}.
	Join(ctx context.Context, ch *Channel, payload json.RawMessage) (response any, err error)
	// HandleIn answers a client push. in.Payload is JSON, or raw bytes when
	// in.Binary.
	HandleIn(ctx context.Context, ch *Channel, in Inbound) Result
	// HandleInfo receives the values given to ch.Send, as handle_info does.
	// Its Result may stop or crash the channel; a reply is ignored.
	HandleInfo(ctx context.Context, ch *Channel, msg any) Result
	// Terminate runs once when the channel stops, with the reason.
	Terminate(ch *Channel, reason Reason)
}

// HandlerFuncs adapts functions to Handler. A nil JoinFunc accepts with {};
// a nil InFunc crashes the channel on every push, as a Phoenix channel with
// no matching handle_in clause does; nil InfoFunc and TerminateFunc do
// nothing.
type HandlerFuncs struct {
	JoinFunc      func(ctx context.Context, ch *Channel, payload json.RawMessage) (any, error)
	InFunc        func(ctx context.Context, ch *Channel, in Inbound) Result
	InfoFunc      func(ctx context.Context, ch *Channel, msg any) Result
	TerminateFunc func(ch *Channel, reason Reason)
}

// Join implements Handler.
func (h HandlerFuncs) Join(ctx context.Context, ch *Channel, p json.RawMessage) (any, error) {
	if h.JoinFunc == nil {
		return nil, nil
	}
	return h.JoinFunc(ctx, ch, p)
}

// HandleIn implements Handler.
func (h HandlerFuncs) HandleIn(ctx context.Context, ch *Channel, in Inbound) Result {
	if h.InFunc == nil {
		return Crash()
	}
	return h.InFunc(ctx, ch, in)
}

// HandleInfo implements Handler.
func (h HandlerFuncs) HandleInfo(ctx context.Context, ch *Channel, msg any) Result {
	if h.InfoFunc == nil {
		return NoReply()
	}
	return h.InfoFunc(ctx, ch, msg)
}

// Terminate implements Handler.
func (h HandlerFuncs) Terminate(ch *Channel, reason Reason) {
	if h.TerminateFunc != nil {
		h.TerminateFunc(ch, reason)
	}
}

// Reason says why a channel stopped.
type Reason string

// The reasons a channel stops.
const (
	ReasonLeft     Reason = "left"     // the client sent phx_leave
	ReasonStop     Reason = "stop"     // a handler returned Stop
	ReasonCrash    Reason = "crash"    // a handler crashed or CrashChannel was called
	ReasonReplaced Reason = "replaced" // a second phx_join for the same topic on the same socket
	ReasonClosed   Reason = "closed"   // the connection ended or the server closed
)

// Inbound is one client push delivered to HandleIn.
type Inbound struct {
	Event   string
	Payload json.RawMessage // JSON, or raw bytes when Binary
	Binary  bool
	// ref identifies the push for an asynchronous reply.
	ref ReplyRef
}

// ReplyRef returns a reference for answering this push later, from any
// goroutine, like Phoenix's socket_ref/1 with reply/2. Return NoReply from
// HandleIn and call ReplyRef().Reply when the answer is ready.
func (in Inbound) ReplyRef() ReplyRef { return in.ref }

// ReplyRef is an asynchronous reply target; see Inbound.ReplyRef. Its zero
// value is invalid. It is safe for concurrent use.
type ReplyRef struct {
	c                   *Conn
	joinRef, ref, topic json.RawMessage
}

// Reply sends a phx_reply with status and response (any JSON value). It
// fails with ErrConnClosed once the connection is gone; like Phoenix, it
// still sends after the channel itself has stopped.
func (r ReplyRef) Reply(status string, response any) error {
	if r.c == nil {
		return errors.New("phxtest: zero ReplyRef")
	}
	body, err := marshal(response)
	if err != nil {
		return err
	}
	return r.c.enqueue(context.Background(), &outFrame{joinRef: r.joinRef, ref: r.ref, topic: r.topic,
		event: eventReply, payload: replyPayload(status, body)})
}

// ReplyBinary sends a binary reply frame (V2 only) with data.
func (r ReplyRef) ReplyBinary(status string, data []byte) error {
	if r.c == nil {
		return errors.New("phxtest: zero ReplyRef")
	}
	return r.c.enqueue(context.Background(), &outFrame{joinRef: r.joinRef, ref: r.ref, topic: r.topic,
		event: eventReply, payload: data, binary: true, status: status})
}

// Result is what HandleIn and HandleInfo return. The zero Result is NoReply.
type Result struct {
	kind     resultKind
	status   string
	response any
	data     []byte
	binary   bool
}

type resultKind int

const (
	resNoReply resultKind = iota
	resReply
	resStop
	resStopReply
	resCrash
)

// Reply answers the push with status ("ok", "error" or any other) and a
// response that may be any JSON value; nil gives {} as {:reply, :ok, socket}
// does. json.RawMessage is sent as it is.
func Reply(status string, response any) Result {
	if response == nil {
		response = json.RawMessage("{}")
	}
	return Result{kind: resReply, status: status, response: response}
}

// ReplyBinary answers with a binary reply frame carrying data (V2 sockets).
func ReplyBinary(status string, data []byte) Result {
	return Result{kind: resReply, status: status, data: data, binary: true}
}

// NoReply sends nothing; the client's push times out unless it is answered
// later through a ReplyRef.
func NoReply() Result { return Result{} }

// Stop ends the channel normally ({:stop, :normal, socket}): the client
// gets phx_close and no reply.
func Stop() Result { return Result{kind: resStop} }

// StopReply replies, then stops the channel ({:stop, reason, reply, socket}).
func StopReply(status string, response any) Result {
	r := Reply(status, response)
	r.kind = resStopReply
	return r
}

// Crash crashes the channel as an exception would: phx_error, no reply.
func Crash() Result { return Result{kind: resCrash} }

// JoinRefused is the error Refuse returns; the client gets an error reply
// carrying Response.
type JoinRefused struct{ Response any }

func (e *JoinRefused) Error() string { return fmt.Sprintf("phxtest: join refused: %v", e.Response) }

// Refuse returns the error that makes Join reject with response, as
// {:error, response} does.
func Refuse(response any) error { return &JoinRefused{Response: response} }
