package phx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
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
// Concurrency: every method is safe for concurrent use. The channel's state
// lives in the socket's actor; a Channel is a handle to it.
type Channel struct {
	s  *Socket
	cs *chanState
}

// Topic is the channel's topic.
func (ch *Channel) Topic() string { return ch.cs.topic }

// State is the channel's current state.
func (ch *Channel) State() ChannelState { return ChannelState(ch.cs.stateA.Load()) }

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
	reply := make(chan joinResult, 1)
	if err := ch.s.mb.Tell(ctx, joinMsg{cs: ch.cs, timeout: o.timeout, reply: reply}); err != nil {
		return nil, ch.s.stoppedErr(err)
	}
	select {
	case r := <-reply:
		return r.resp, r.err
	case <-ctx.Done():
		_ = ch.s.mb.Tell(context.Background(), joinCancelMsg{cs: ch.cs})
		return nil, ctx.Err()
	case <-ch.s.proc.Done():
		select {
		case r := <-reply:
			return r.resp, r.err
		default:
			return nil, &JoinError{Topic: ch.cs.topic, Err: ch.s.stoppedErr(errStopped)}
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
	p := &push{kind: kindUser, cs: ch.cs, event: event, payload: data, binary: bin,
		reply: make(chan pushResult, 1), timeout: o.timeout, start: time.Now()}
	r, err := ch.s.await(ctx, p)
	return r.reply, err
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
	reply := make(chan error, 1)
	if err := ch.s.mb.Tell(ctx, leaveMsg{cs: ch.cs, timeout: o.timeout, reply: reply}); err != nil {
		if errors.Is(err, errStopped) {
			return nil // the socket is closed, and so is the channel
		}
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-ch.s.proc.Done():
		return nil
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
	return ch.s.subscribe(ch.cs, ch.cs.topic, opts, events)
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

// chanState is a channel's state, owned by the socket actor except for
// topic, params and s (immutable) and stateA (written by the actor, read by
// Channel.State).
type chanState struct {
	topic  string
	params any
	s      *Socket
	stateA atomic.Int32

	registered bool
	state      ChannelState
	joinedOnce bool // Join was called
	firstDone  bool // the first Join has its outcome
	timeout    time.Duration
	joinRef    string
	joinPush   *push
	joinWaiter chan joinResult
	leavePush  *push
	leaveWait  []chan error
	buf        []*push // waiting for the join
	inflight   *push   // sent pushes of this join session (linked list)
	subs       []*Subscription
	final      error // why it closed for good

	rejoinBo      backoff.BackOff
	rejoinAttempt int
	rejoinDL      deadline
}

func (cs *chanState) setState(st ChannelState) {
	cs.state = st
	cs.stateA.Store(int32(st))
}

func (cs *chanState) link(p *push) {
	p.prev, p.next = nil, cs.inflight
	if cs.inflight != nil {
		cs.inflight.prev = p
	}
	cs.inflight = p
}

func (cs *chanState) unlink(p *push) {
	if p.prev != nil {
		p.prev.next = p.next
	} else if cs.inflight == p {
		cs.inflight = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	}
	p.prev, p.next = nil, nil
}

func (cs *chanState) unbuffer(p *push) {
	if i := slices.Index(cs.buf, p); i >= 0 {
		cs.buf = slices.Delete(cs.buf, i, i+1)
	}
}

func (cs *chanState) rejoinBoReset() {
	if cs.rejoinBo != nil {
		cs.rejoinBo.Reset()
	}
	cs.rejoinAttempt = 0
}

// errStopped is what the mailbox returns once the socket actor stopped.
var errStopped = actor.ErrStopped

// register makes the actor aware of cs (channels are created without
// asking it).
func (a *sockActor) register(cs *chanState) {
	if !cs.registered && cs.final == nil {
		cs.registered = true
		a.chans[cs] = struct{}{}
	}
}

func (a *sockActor) handleJoin(m joinMsg) {
	cs := m.cs
	a.register(cs)
	if cs.joinedOnce {
		err := error(ErrAlreadyJoined)
		if cs.final != nil {
			err = fmt.Errorf("%w: %w", ErrAlreadyJoined, cs.final)
		}
		m.reply <- joinResult{err: &JoinError{Topic: cs.topic, Err: err}}
		return
	}
	cs.joinedOnce = true
	cs.timeout = m.timeout
	cs.joinWaiter = m.reply
	a.rejoin(cs)
}

// rejoin starts a join session: fresh join_ref, fresh join push.
func (a *sockActor) rejoin(cs *chanState) {
	if cs.state == ChannelLeaving || cs.final != nil {
		return
	}
	a.dls.cancel(&cs.rejoinDL)
	// phoenix.js leaveOpenTopic: a different channel on the same topic that
	// is joined or joining is left first.
	if other := a.topics[cs.topic]; other != nil && other != cs &&
		(other.state == ChannelJoined || other.state == ChannelJoining || other.state == ChannelErrored) {
		a.leave(other, other.timeout, nil)
	}
	a.topics[cs.topic] = cs
	if cs.joinPush != nil {
		a.dropJoinPush(cs)
	}
	p := &push{kind: kindJoin, cs: cs, event: wire.EventJoin, timeout: cs.timeout, start: time.Now()}
	p.dl.p, p.dl.idx = p, -1
	cs.joinPush = p
	cs.setState(ChannelJoining)
	data, err := a.joinParams(cs)
	if err != nil {
		a.closeChannel(cs, &JoinError{Topic: cs.topic, Err: err})
		return
	}
	p.payload = data
	a.dls.schedule(&p.dl, p.start.Add(p.timeout))
	if !a.open {
		// Sent when the socket (re)connects.
		return
	}
	// The join_ref is the join's own ref, so it is assigned here.
	p.ref = a.nextRef()
	cs.joinRef = p.ref
	m := wire.Message{JoinRef: wire.NewRef(p.ref), Ref: wire.NewRef(p.ref), Topic: cs.topic, Event: p.event, Payload: p.payload}
	if err := a.write(&m); err != nil {
		return // the connection is going; onLost errors the channel
	}
	p.joinRef = p.ref
	p.sent = true
	a.pending[p.ref] = p
}

func (a *sockActor) joinParams(cs *chanState) ([]byte, error) {
	params := cs.params
	if f, ok := params.(func() any); ok {
		params = f()
	}
	data, bin, err := encodePayload(params)
	if err != nil {
		return nil, err
	}
	if bin {
		return nil, errors.New("phx: join params must be JSON")
	}
	if data == nil {
		data = emptyObject
	}
	return data, nil
}

// dropJoinPush forgets the current join push (phoenix.js joinPush.reset).
func (a *sockActor) dropJoinPush(cs *chanState) {
	p := cs.joinPush
	cs.joinPush = nil
	if p == nil {
		return
	}
	p.done = true
	a.dls.cancel(&p.dl)
	a.unpend(p)
}

func (a *sockActor) joinReply(p *push, r Reply) {
	cs := p.cs
	if p != cs.joinPush {
		a.unpend(p)
		a.s.nStale.Add(1)
		return
	}
	a.dropJoinPush(cs)
	if r.Status == "ok" {
		cs.setState(ChannelJoined)
		cs.rejoinBoReset()
		a.dls.cancel(&cs.rejoinDL)
		if !a.stopping {
			a.emit(Joined{Topic: cs.topic, JoinRef: cs.joinRef})
		}
		a.firstOutcome(cs, joinResult{resp: r.Response})
		buf := cs.buf
		cs.buf = nil
		for _, bp := range buf {
			a.sendPush(bp)
		}
		return
	}
	rerr := &ReplyError{Status: r.Status, Response: r.Response}
	if !cs.firstDone {
		// §6: the first join refused ends the channel; no retry loop.
		a.closeChannel(cs, &JoinError{Topic: cs.topic, Err: rerr})
		return
	}
	// A rejoin refused (e.g. a token expired while offline) is retried on
	// the rejoin schedule and reported.
	cs.setState(ChannelErrored)
	a.scheduleRejoin(cs, rerr)
}

func (a *sockActor) firstOutcome(cs *chanState, r joinResult) {
	if cs.firstDone {
		return
	}
	cs.firstDone = true
	if cs.joinWaiter != nil {
		var je *JoinError
		if r.err != nil && !errors.As(r.err, &je) {
			r.err = &JoinError{Topic: cs.topic, Err: r.err}
		}
		cs.joinWaiter <- r
		cs.joinWaiter = nil
	}
}

func (a *sockActor) joinTimeout(p *push) {
	cs := p.cs
	if p != cs.joinPush {
		return
	}
	a.dropJoinPush(cs)
	if p.sent && a.open {
		// phoenix.js: tell the server to drop the join that may still come.
		lp := &push{kind: kindLeave, cs: cs, event: wire.EventLeave}
		m := wire.Message{JoinRef: wire.NewRef(cs.joinRef), Ref: wire.NewRef(a.nextRef()), Topic: cs.topic, Event: lp.event, Payload: emptyObject}
		_ = a.write(&m)
	}
	cs.setState(ChannelErrored)
	a.failSession(cs, ErrDisconnected)
	a.firstOutcome(cs, joinResult{err: ErrTimeout})
	a.scheduleRejoin(cs, ErrTimeout)
}

// scheduleRejoin arms the channel's rejoin timer if the socket is connected;
// otherwise the channel rejoins when it reconnects.
func (a *sockActor) scheduleRejoin(cs *chanState, reason error) {
	if !a.open {
		return
	}
	if cs.rejoinBo == nil {
		cs.rejoinBo = a.s.cfg.Rejoin()
	}
	d := cs.rejoinBo.NextBackOff()
	if d == backoff.Stop {
		a.closeChannel(cs, fmt.Errorf("phx: rejoin backoff gave up: %w", reason))
		return
	}
	cs.rejoinAttempt++
	a.dls.schedule(&cs.rejoinDL, time.Now().Add(d))
	if !a.stopping {
		a.emit(Rejoining{Topic: cs.topic, Attempt: cs.rejoinAttempt, Delay: d, Err: reason})
	}
}

// failSession resolves the pushes sent in the ending join session: their
// replies cannot come any more.
func (a *sockActor) failSession(cs *chanState, err error) {
	for cs.inflight != nil {
		a.resolve(cs.inflight, pushResult{err: err})
	}
}

// chanErrored: phx_error from the server (rejoin scheduled) or the
// connection lost (rejoin when it reopens).
func (a *sockActor) chanErrored(cs *chanState, reason error, server bool) {
	if cs.state != ChannelJoined && cs.state != ChannelJoining {
		return
	}
	if cs.joinPush != nil {
		a.dropJoinPush(cs)
		defer a.firstOutcome(cs, joinResult{err: ErrDisconnected})
	}
	cs.setState(ChannelErrored)
	a.failSession(cs, ErrDisconnected)
	if server {
		a.scheduleRejoin(cs, reason)
	} else {
		a.dls.cancel(&cs.rejoinDL)
		cs.rejoinBoReset()
	}
}

// leave sends phx_leave; the channel closes on the reply or the timeout,
// or at once when no joined session exists on an open connection.
func (a *sockActor) leave(cs *chanState, timeout time.Duration, reply chan error) {
	if cs.final != nil {
		if reply != nil {
			reply <- nil
		}
		return
	}
	if reply != nil {
		cs.leaveWait = append(cs.leaveWait, reply)
	}
	if cs.state == ChannelLeaving {
		return
	}
	wasInSession := cs.state == ChannelJoined || (cs.state == ChannelJoining && cs.joinPush != nil && cs.joinPush.sent)
	a.dls.cancel(&cs.rejoinDL)
	a.dropJoinPush(cs)
	cs.setState(ChannelLeaving)
	if a.topics[cs.topic] == cs {
		delete(a.topics, cs.topic)
	}
	if !a.open || !wasInSession {
		a.closeChannel(cs, ErrLeft)
		return
	}
	p := &push{kind: kindLeave, cs: cs, event: wire.EventLeave, timeout: timeout, start: time.Now()}
	p.dl.p, p.dl.idx = p, -1
	if err := a.sendRaw(p, cs.topic, cs.joinRef); err != nil {
		a.closeChannel(cs, ErrLeft)
		return
	}
	cs.leavePush = p
	a.dls.schedule(&p.dl, p.start.Add(timeout))
}

// closeChannel closes cs for good with err: pushes, subscriptions and
// waiters all end with it.
func (a *sockActor) closeChannel(cs *chanState, err error) {
	if cs.final != nil {
		return
	}
	cs.final = err
	cs.joinedOnce = true
	cs.setState(ChannelClosed)
	a.dls.cancel(&cs.rejoinDL)
	a.dropJoinPush(cs)
	if p := cs.leavePush; p != nil {
		cs.leavePush = nil
		p.done = true
		a.dls.cancel(&p.dl)
		a.unpend(p)
	}
	if a.topics[cs.topic] == cs {
		delete(a.topics, cs.topic)
	}
	for len(cs.buf) > 0 {
		a.resolve(cs.buf[0], pushResult{err: err})
	}
	a.failSession(cs, err)
	for _, sub := range cs.subs {
		sub.finish(err)
	}
	cs.subs = nil
	a.firstOutcome(cs, joinResult{err: err})
	for _, w := range cs.leaveWait {
		w <- nil
	}
	cs.leaveWait = nil
	delete(a.chans, cs)
	if !a.stopping {
		a.emit(ChannelEnded{Topic: cs.topic, Err: err})
	}
}
