package phx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/actor"
)

// Channel is one topic on a socket, with phoenix.js's state machine:
// closed → joining → joined, errored → joining again (rejoin), leaving →
// closed.
//
// A Channel joins once. After a refused first join, a Leave, or a phx_close
// from the server it is closed for good; make a new one with Socket.Channel.
// Errors (phx_error, a lost connection, a join timeout) do not close it: it
// rejoins by itself on Config.Rejoin's schedule, and at once when the socket
// reconnects, each time with a fresh join_ref.
//
// Concurrency: every method is safe for concurrent use. A Channel is a
// handle: its state lives in an actor (one goroutine) that the socket starts
// on the first Join, Push, Send, Leave or Subscribe and that stops when the
// channel closes for good, when it was never joined and its last
// subscription closes, or when the socket stops.
type Channel struct {
	s      *Socket
	topic  string
	params any
	a      atomic.Pointer[chanActor] // the running actor; stored by the socket actor only
}

// Topic is the channel's topic.
func (ch *Channel) Topic() string { return ch.topic }

// State is the channel's current state. A joined channel whose connection
// the socket has lost is errored at once, even before its actor has
// handled the loss.
func (ch *Channel) State() ChannelState {
	ca := ch.a.Load()
	if ca == nil {
		return ChannelClosed
	}
	st := ChannelState(ca.stateA.Load())
	if st == ChannelJoined && ca.on.Load() != ch.s.conn.Load().h {
		return ChannelErrored
	}
	return st
}

// actor returns the channel's actor, asking the socket to start one when
// there is none.
func (ch *Channel) actor(ctx context.Context) (*chanActor, error) {
	if ca := ch.a.Load(); ca != nil {
		return ca, nil
	}
	ca, err := actor.Ask(ctx, ch.s.mb, func(r chan<- *chanActor) sockMsg { return startMsg{ch: ch, reply: r} })
	if err != nil {
		return nil, ch.s.stoppedErr(err)
	}
	return ca, nil
}

// Join joins the channel and returns the server's join response.
//
// Errors: a *JoinError wrapping a *ReplyError with the server's response
// when the server refuses the join (the channel is then closed and will not
// retry); wrapping ErrTimeout when no reply came within the timeout
// (WithTimeout, Config.Timeout), or ErrDisconnected when the connection
// dropped first — in those two cases the channel stays errored and keeps
// rejoining in the background, and a Joined status event tells when it
// succeeds; ErrAlreadyJoined when Join was called before; ErrClosed when the
// socket is closed. If ctx ends first, Join returns ctx.Err() and the channel
// is left.
//
// Subscribe before Join to see every message of the first join session.
func (ch *Channel) Join(ctx context.Context, opts ...JoinOption) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := ch.s.joinOpts(opts)
	for {
		ca, err := ch.actor(ctx)
		if err != nil {
			return nil, err
		}
		reply := make(chan joinResult, 1)
		if err := ca.mb.Tell(ctx, joinReq{timeout: o.timeout, reply: reply}); err != nil {
			if !errors.Is(err, actor.ErrStopped) {
				return nil, err
			}
			if ca.retired.Load() {
				continue
			}
			return nil, ca.joinEnded()
		}
		select {
		case r := <-reply:
			return r.resp, r.err
		case <-ctx.Done():
			_ = ca.mb.q.Force(joinCancelReq{reply: reply}) // one per caller: never waits
			return nil, ctx.Err()
		case <-ca.done:
			select {
			case r := <-reply:
				return r.resp, r.err
			default:
			}
			if ca.retired.Load() {
				continue
			}
			return nil, ca.joinEnded()
		}
	}
}

// Push sends event with payload and waits for the reply.
//
// payload is any JSON-marshalable value (nil sends {}), a json.RawMessage
// sent as is, or a Binary sent as a binary frame (vsn 2.0.0 only). A plain
// []byte is a JSON value like any other: encoding/json makes it a base64
// string.
//
// Before the channel has joined (and while it rejoins) the push waits in a
// bounded buffer (Config.PushBuffer, else ErrPushBufferFull) and is sent in
// order once joined. The timeout (WithTimeout, default Config.Timeout)
// counts from the call; a buffered push that times out is never sent.
//
// Every push has exactly one outcome: the reply (status "ok"); the reply with
// a *ReplyError for any other status; ErrTimeout; ErrDisconnected (sent, but
// the connection or the server's channel went away before a reply); ErrLeft
// or ErrClosed; ErrNotJoined before Join; or ctx.Err().
//
// For an event the server does not answer (a handle_in returning
// {:noreply, socket}) use Send: a Push would wait for its timeout.
func (ch *Channel) Push(ctx context.Context, event string, payload any, opts ...PushOption) (Reply, error) {
	r, err := ch.push(ctx, kindUser, event, payload, opts)
	return r.reply, err
}

// Send sends event with payload without waiting for a reply: it returns
// once the frame is written to the connection, as a phoenix.js push nobody
// waits on. It suits events the server handles with {:noreply, socket}.
//
// payload is as for Push. Before the channel has joined (and while it
// rejoins) the frame waits in the push buffer as a Push does, and is sent
// in order with them; the timeout (WithTimeout, default Config.Timeout)
// bounds that wait. A written frame is not retried: whether the server
// handled it is unknown, as with any message without a reply.
//
// Send returns nil once written; ErrTimeout when it could not be written in
// time; ErrDisconnected when the connection went away as it was written;
// ErrLeft or ErrClosed; ErrNotJoined before Join; or ctx.Err(). Its ref is
// fresh, as a Push's: a reply the server sends anyway is counted in
// Stats.Unrouted and otherwise ignored.
func (ch *Channel) Send(ctx context.Context, event string, payload any, opts ...PushOption) error {
	_, err := ch.push(ctx, kindSend, event, payload, opts)
	return err
}

// push hands a Push or Send to the channel's actor and waits for its
// outcome.
func (ch *Channel) push(ctx context.Context, kind pushKind, event string, payload any, opts []PushOption) (pushResult, error) {
	o := ch.s.pushOpts(opts)
	data, bin, err := encodePayload(payload)
	if err != nil {
		return pushResult{}, err
	}
	start := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return pushResult{}, err
		}
		ca, err := ch.actor(ctx)
		if err != nil {
			return pushResult{}, err
		}
		p := &push{kind: kind, event: event, payload: data, binary: bin,
			reply: make(chan pushResult, 1), timeout: o.timeout, start: start, ctx: ctx}
		if err := ca.mb.Tell(ctx, pushReq{p: p}); err != nil {
			if !errors.Is(err, actor.ErrStopped) {
				return pushResult{}, err
			}
			if ca.retired.Load() {
				continue
			}
			return pushResult{}, ca.final
		}
		select {
		case r := <-p.reply:
			return r, r.err
		case <-ctx.Done():
			// The actor drops the push: a buffered push is then never sent.
			_ = ca.mb.q.Force(cancelReq{p: p}) // one per caller: never waits
			return pushResult{}, ctx.Err()
		case <-ca.done:
			select {
			case r := <-p.reply:
				return r, r.err
			default:
			}
			if ca.retired.Load() {
				continue
			}
			return pushResult{}, ca.final
		}
	}
}

// Leave sends phx_leave and waits for the server's ok (or the timeout);
// the channel is then closed and its subscriptions end with ErrLeft. When
// the socket is not connected the leave completes at once. Pending pushes
// end with ErrLeft. Leave on a closed channel returns nil.
func (ch *Channel) Leave(ctx context.Context, opts ...LeaveOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := ch.s.leaveOpts(opts)
	for {
		ca, err := ch.actor(ctx)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return nil // the socket is closed, and so is the channel
			}
			return err
		}
		reply := make(chan error, 1)
		if err := ca.mb.Tell(ctx, leaveReq{timeout: o.timeout, reply: reply}); err != nil {
			if !errors.Is(err, actor.ErrStopped) {
				return err
			}
			if ca.retired.Load() {
				continue
			}
			return nil
		}
		select {
		case err := <-reply:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-ca.done:
			if ca.retired.Load() {
				select {
				case err := <-reply:
					return err
				default:
					continue
				}
			}
			return nil
		}
	}
}

// Subscribe returns a subscription to the channel's messages: every event,
// or those named with Events; WithBuffer and WithOverflow size it. Control
// events (phx_reply, phx_error, phx_close) are not delivered. Each
// message's JoinRef is the join session it arrived in.
//
// Subscribe before Join to see every message of the first join session.
// It returns once the channel's actor has the subscription, or with
// ctx.Err(), ErrClosed when the socket is closed, or the error the channel
// closed with (ErrLeft, a *JoinError) when it has closed for good.
func (ch *Channel) Subscribe(ctx context.Context, opts ...SubscribeOption) (*Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := ch.s.newSub(ch.topic, opts)
	for {
		ca, err := ch.actor(ctx)
		if err != nil {
			return nil, err
		}
		sub.ca = ca // before the hand-off; the actor owns sub afterwards
		ack := make(chan struct{}, 1)
		err = ca.mb.Tell(ctx, subscribeReq{sub: sub, ack: ack})
		if err != nil && !errors.Is(err, actor.ErrStopped) {
			return nil, err
		}
		if err == nil {
			select {
			case <-ack:
				return sub, nil
			case <-ctx.Done():
				sub.Close() // the actor may have taken it meanwhile
				return nil, ctx.Err()
			case <-ca.done:
				select {
				case <-ack:
					// The actor took it and finished it as it stopped.
					if err := sub.Err(); err != nil {
						return nil, err
					}
					return sub, nil
				default:
				}
			}
		}
		if ca.retired.Load() {
			continue
		}
		return nil, ca.final
	}
}

// ParamsFunc is a channel's join parameters computed before every join
// and rejoin (for a token that expires, or a last-seen id); pass it to
// Socket.Channel as params. Its result is as a params value: any
// JSON-marshalable value or a json.RawMessage.
type ParamsFunc func() any

func encodePayload(payload any) ([]byte, bool, error) {
	switch v := payload.(type) {
	case nil:
		return nil, false, nil
	case json.RawMessage:
		if len(v) == 0 {
			return nil, false, nil
		}
		return v, false, nil
	case Binary:
		return v, true, nil
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, false, fmt.Errorf("phx: payload: %w", err)
	}
	return b, false, nil
}
