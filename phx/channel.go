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
// on the first Join, Push, Leave or Subscribe and that stops when the
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
func (ch *Channel) Join(ctx context.Context, opts ...Option) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := ch.s.callOpts(opts)
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
			_ = ca.mb.Tell(context.Background(), joinCancelReq{})
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
// sent as is, or a []byte sent as a binary frame (vsn 2.0.0 only).
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
func (ch *Channel) Push(ctx context.Context, event string, payload any, opts ...Option) (Reply, error) {
	o := ch.s.callOpts(opts)
	data, bin, err := encodePayload(payload)
	if err != nil {
		return Reply{}, err
	}
	start := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return Reply{}, err
		}
		ca, err := ch.actor(ctx)
		if err != nil {
			return Reply{}, err
		}
		p := &push{kind: kindUser, event: event, payload: data, binary: bin,
			reply: make(chan pushResult, 1), timeout: o.timeout, start: start, ctx: ctx}
		if err := ca.mb.Tell(ctx, pushReq{p: p}); err != nil {
			if !errors.Is(err, actor.ErrStopped) {
				return Reply{}, err
			}
			if ca.retired.Load() {
				continue
			}
			return Reply{}, ca.final
		}
		select {
		case r := <-p.reply:
			return r.reply, r.err
		case <-ctx.Done():
			// The actor drops the push: a buffered push is then never sent.
			_ = ca.mb.Tell(context.Background(), cancelReq{p: p})
			return Reply{}, ctx.Err()
		case <-ca.done:
			select {
			case r := <-p.reply:
				return r.reply, r.err
			default:
			}
			if ca.retired.Load() {
				continue
			}
			return Reply{}, ca.final
		}
	}
}

// Leave sends phx_leave and waits for the server's ok (or the timeout);
// the channel is then closed and its subscriptions end with ErrLeft. When
// the socket is not connected the leave completes at once. Pending pushes
// end with ErrLeft. Leave on a closed channel returns nil.
func (ch *Channel) Leave(ctx context.Context, opts ...Option) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := ch.s.callOpts(opts)
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

// Subscribe returns a subscription to the channel's messages whose event is
// one of events (all events when none are given). Control events (phx_reply,
// phx_error, phx_close) are not delivered. Each message's JoinRef is the join
// session it arrived in.
func (ch *Channel) Subscribe(events ...string) *Subscription {
	return ch.SubscribeWith(nil, events...)
}

// SubscribeWith is Subscribe with options (WithBuffer, WithOverflow).
func (ch *Channel) SubscribeWith(opts []Option, events ...string) *Subscription {
	sub := ch.s.newSub(ch.topic, opts, events)
	for {
		ca, err := ch.actor(context.Background())
		if err != nil {
			sub.finish(err)
			return sub
		}
		sub.ca = ca // before the hand-off; the actor owns sub afterwards
		ack := make(chan struct{}, 1)
		if ca.mb.Tell(context.Background(), subscribeReq{sub: sub, ack: ack}) == nil {
			select {
			case <-ack:
				return sub
			case <-ca.done:
				select {
				case <-ack:
					return sub // the actor took it and finished it as it stopped
				default:
				}
			}
		}
		if ca.retired.Load() {
			continue
		}
		sub.finish(ca.final)
		return sub
	}
}

func encodePayload(payload any) ([]byte, bool, error) {
	switch v := payload.(type) {
	case nil:
		return nil, false, nil
	case json.RawMessage:
		if len(v) == 0 {
			return nil, false, nil
		}
		return v, false, nil
	case []byte:
		return v, true, nil
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, false, fmt.Errorf("phx: payload: %w", err)
	}
	return b, false, nil
}
