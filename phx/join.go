package phx

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

func (ca *chanActor) join(timeout time.Duration, reply chan joinResult) {
	if ca.joinedOnce {
		ca.alreadyJoined(reply)
		return
	}
	ca.joinedOnce = true
	ca.joinCaller = reply
	ca.timeout = timeout
	ca.busy().joinWaiter = reply
	ca.rejoin()
}

func (ca *chanActor) alreadyJoined(reply chan joinResult) {
	err := error(ErrAlreadyJoined)
	if ca.final != nil {
		err = fmt.Errorf("%w: %w", ErrAlreadyJoined, ca.final)
	}
	reply <- joinResult{err: &JoinError{Topic: ca.ch.topic, Err: err}}
}

// joinCancel: the Join waiting on reply gave up and returned ctx.Err(),
// so the channel leaves, even when the join's outcome was handed to reply
// meanwhile (the caller saw its ctx end first and never took it). Only the
// Join that joined the channel can: a later Join's cancel is ignored.
func (ca *chanActor) joinCancel(reply chan joinResult) {
	if reply == nil || reply != ca.joinCaller {
		return
	}
	ca.joinCaller = nil
	if ca.b != nil && ca.b.joinWaiter == reply {
		ca.b.joinWaiter = nil
	}
	ca.leave(ca.s.cfg.Timeout, nil)
}

func (ca *chanActor) leaveReq(timeout time.Duration, reply chan error) {
	if !ca.joinedOnce {
		ca.joinedOnce = true // a left channel cannot join any more
		ca.closeChannel(ErrLeft)
		reply <- nil
		return
	}
	ca.leave(timeout, reply)
}

func (ca *chanActor) supersede(done chan struct{}) {
	if ca.state == ChannelJoined || ca.state == ChannelJoining || ca.state == ChannelErrored {
		ca.leave(ca.timeout, nil)
	}
	close(done)
}

// rejoin starts a join session: fresh join_ref, fresh join push.
func (ca *chanActor) rejoin() {
	if ca.state == ChannelLeaving || ca.final != nil {
		return
	}
	ca.cancelRejoin()
	if ca.joinPush != nil {
		ca.dropJoinPush()
	}
	p := &push{kind: kindJoin, event: wire.EventJoin, timeout: ca.timeout, start: time.Now(), rejoin: ca.firstDone}
	p.dl.p, p.dl.idx = p, -1
	ca.joinPush = p
	ca.setState(ChannelJoining)
	data, err := ca.joinParams()
	if err != nil {
		ca.joinFailed(err)
		return
	}
	p.payload = data
	ca.schedule(&p.dl, p.start.Add(p.timeout))
	// The join_ref is the join's own ref, assigned only when it is sent.
	ref := ""
	if ca.view.h != nil {
		ref = ca.nextRef()
	}
	if !ca.claim(ref) || ca.final != nil || ca.state != ChannelJoining {
		return
	}
	if ca.view.h == nil {
		return // sent when the socket (re)connects
	}
	p.ref = ref
	ca.joinRef = ref
	ca.in.Admit(ref)
	if err := ca.send(ref, ref, p.event, p.payload, false); err != nil {
		ca.in.Revoke(ref)
		return // the connection is going; the channel errors when it hears
	}
	p.joinRef = ref
	p.sent = true
}

func (ca *chanActor) joinFailed(err error) {
	ca.closeChannel(&JoinError{Topic: ca.ch.topic, Err: err})
}

// claim makes this channel the socket's route for its topic, with
// joinRef, and makes the channel that held the topic before leave first.
// It returns false when another channel has taken the topic from this one
// (which then leaves) or the socket is stopping.
func (ca *chanActor) claim(joinRef string) bool {
	r, err := actor.Ask(ca.ctx, ca.s.mb, func(r chan<- claimResult) sockMsg {
		return claimMsg{ca: ca, joinRef: joinRef, reply: r}
	})
	if err != nil {
		return false
	}
	if !r.ok {
		ca.leave(ca.timeout, nil)
		return false
	}
	if r.prev != nil {
		ca.supersedes(r.prev)
	}
	return true
}

// supersedes makes prev, which held the topic before, leave first.
func (ca *chanActor) supersedes(prev *chanActor) {
	done := make(chan struct{})
	if prev.mb.Tell(ca.ctx, supersedeReq{done: done}) == nil {
		select {
		case <-done:
		case <-prev.done:
		case <-ca.ctx.Done():
		}
	}
}

func (ca *chanActor) joinParams() ([]byte, error) {
	params := ca.ch.params
	if f, ok := params.(ParamsFunc); ok {
		params = f()
	}
	data, bin, err := encodePayload(params)
	if err != nil {
		return nil, err
	}
	if bin {
		return nil, errors.New("phx: join params must be JSON, not Binary")
	}
	if data == nil {
		data = emptyObject
	}
	return data, nil
}

// dropJoinPush forgets the current join push (phoenix.js joinPush.reset).
func (ca *chanActor) dropJoinPush() {
	p := ca.joinPush
	ca.joinPush = nil
	if p == nil {
		return
	}
	ca.observeJoin(p, "", ca.abandonedJoin())
	p.done = true
	if p.sent {
		ca.in.Revoke(p.ref)
	}
	ca.cancel(&p.dl)
}

func (ca *chanActor) joinReply(r Reply) {
	var err error
	if r.Status != "ok" {
		err = &ReplyError{Status: r.Status, Response: r.Response}
	}
	ca.observeJoin(ca.joinPush, r.Status, err)
	ca.dropJoinPush()
	if r.Status == "ok" {
		ca.joined(r.Response)
		return
	}
	ca.joinRefused(r)
}

func (ca *chanActor) joined(resp json.RawMessage) {
	if ca.firstDone {
		ca.s.stats.rejoins.Add(1)
	} else {
		ca.s.stats.joins.Add(1)
	}
	ca.setState(ChannelJoined)
	ca.rejoinBoReset()
	ca.cancelRejoin()
	ca.s.emit(Joined{Topic: ca.ch.topic, JoinRef: ca.joinRef})
	ca.firstOutcome(joinResult{resp: resp})
	var buf []*push
	if ca.b != nil {
		buf, ca.b.buf = ca.b.buf, nil
	}
	for _, bp := range buf {
		ca.sendPush(bp)
	}
}

func (ca *chanActor) joinRefused(r Reply) {
	rerr := &ReplyError{Status: r.Status, Response: r.Response}
	if !ca.firstDone {
		// §6: the first join refused ends the channel; no retry loop.
		ca.closeChannel(&JoinError{Topic: ca.ch.topic, Err: rerr})
		return
	}
	// A rejoin refused (e.g. a token expired while offline) is retried on
	// the rejoin schedule and reported.
	ca.setState(ChannelErrored)
	ca.scheduleRejoin(rerr)
}

func (ca *chanActor) firstOutcome(r joinResult) {
	if ca.firstDone {
		return
	}
	ca.firstDone = true
	if b := ca.b; b != nil && b.joinWaiter != nil {
		var je *JoinError
		if r.err != nil && !errors.As(r.err, &je) {
			r.err = &JoinError{Topic: ca.ch.topic, Err: r.err}
		}
		b.joinWaiter <- r
		b.joinWaiter = nil
	}
}

func (ca *chanActor) joinTimeout(p *push) {
	if p != ca.joinPush {
		return
	}
	ca.observeJoin(p, "", ErrTimeout)
	ca.dropJoinPush()
	if p.sent && ca.view.h != nil {
		// phoenix.js: tell the server to drop the join that may still come.
		_ = ca.send(ca.joinRef, ca.nextRef(), wire.EventLeave, emptyObject, false)
	}
	ca.setState(ChannelErrored)
	ca.failSession(ErrDisconnected)
	ca.firstOutcome(joinResult{err: ErrTimeout})
	ca.scheduleRejoin(ErrTimeout)
}

// scheduleRejoin arms the rejoin deadline if the socket is connected;
// otherwise the channel rejoins when it reconnects.
func (ca *chanActor) scheduleRejoin(reason error) {
	if ca.view.h == nil {
		return
	}
	b := ca.busy()
	if b.rejoinBo == nil {
		b.rejoinBo = ca.s.cfg.Rejoin()
	}
	d := b.rejoinBo.NextBackOff()
	if d == backoff.Stop {
		ca.closeChannel(fmt.Errorf("phx: rejoin backoff gave up: %w", reason))
		return
	}
	b.rejoinAttempt++
	b.dls.schedule(&b.rejoinDL, time.Now().Add(d))
	ca.s.emit(Rejoining{Topic: ca.ch.topic, Attempt: b.rejoinAttempt, Delay: d, Err: reason})
}

func (ca *chanActor) rejoinBoReset() {
	if b := ca.b; b != nil {
		if b.rejoinBo != nil {
			b.rejoinBo.Reset()
		}
		b.rejoinAttempt = 0
	}
}

// failSession resolves the pushes sent in the ending join session: their
// replies cannot come any more.
func (ca *chanActor) failSession(err error) {
	if ca.b == nil {
		return
	}
	for _, p := range ca.b.pending {
		ca.resolve(p, pushResult{err: err})
	}
}

// chanErrored: phx_error from the server (server, rejoin scheduled) or the
// connection lost (rejoin when it reopens).
func (ca *chanActor) chanErrored(reason error, server bool) {
	if ca.state != ChannelJoined && ca.state != ChannelJoining {
		return
	}
	hadJoin := ca.joinPush != nil
	ca.dropJoinPush()
	ca.setState(ChannelErrored)
	lost := ErrDisconnected
	if server {
		// The channel crashed on the server: its pushes say so, and the
		// *ServerError is in their error's chain for errors.As.
		lost = fmt.Errorf("%w: %w", ErrDisconnected, reason)
	}
	ca.failSession(lost)
	if server {
		ca.scheduleRejoin(reason)
	} else {
		ca.cancelRejoin()
		ca.rejoinBoReset()
	}
	if hadJoin {
		ca.firstOutcome(joinResult{err: ErrDisconnected})
	}
}

// leave sends phx_leave; the channel closes on the reply or the timeout,
// or at once when no joined session exists on an open connection.
func (ca *chanActor) leave(timeout time.Duration, reply chan error) {
	if ca.final != nil {
		if reply != nil {
			reply <- nil
		}
		return
	}
	if reply != nil {
		b := ca.busy()
		b.leaveWait = append(b.leaveWait, reply)
	}
	if ca.state == ChannelLeaving {
		return
	}
	wasInSession := ca.state == ChannelJoined || (ca.state == ChannelJoining && ca.joinPush != nil && ca.joinPush.sent)
	ca.cancelRejoin()
	ca.dropJoinPush()
	ca.setState(ChannelLeaving)
	// The frames already taken in were read before the leave: the
	// channel's subscribers get them, though a wait for a consumer may
	// hand them over after this (see handleFrame).
	ca.leaveMark = ca.seen + uint64(len(ca.batch)-ca.next) + uint64(ca.in.Len())
	if ca.view.h == nil || !wasInSession {
		ca.closeChannel(ErrLeft)
		return
	}
	p := &push{kind: kindLeave, event: wire.EventLeave, timeout: timeout, start: time.Now()}
	p.dl.p, p.dl.idx = p, -1
	p.ref = ca.nextRef()
	p.joinRef = ca.joinRef
	ca.in.Admit(p.ref)
	// Frames of the topic without a join_ref are no longer this channel's,
	// except the reply to this phx_leave (which has none on vsn 1.0.0).
	_ = ca.s.mb.Tell(ca.ctx, releaseMsg{ca: ca, leaveRef: p.ref})
	if err := ca.writePush(p); err != nil {
		ca.in.Revoke(p.ref)
		ca.closeChannel(ErrLeft)
		return
	}
	p.sent = true
	b := ca.busy()
	b.leavePush = p
	b.dls.schedule(&p.dl, p.start.Add(timeout))
}

// closeChannel closes the channel for good with err: pushes,
// subscriptions and waiters all end with it, and the actor stops.
func (ca *chanActor) closeChannel(err error) {
	if ca.final != nil {
		return
	}
	ca.final = err
	ca.joinedOnce = true
	ca.setState(ChannelClosed)
	ca.cancelRejoin()
	ca.dropJoinPush()
	if p := ca.leavePush(); p != nil {
		ca.b.leavePush = nil
		p.done = true
		ca.in.Revoke(p.ref)
		ca.cancel(&p.dl)
	}
	for ca.b != nil && len(ca.b.buf) > 0 {
		ca.resolve(ca.b.buf[0], pushResult{err: err})
	}
	ca.failSession(err)
	ca.f.endAll(err, !ca.stopping)
	ca.firstOutcome(joinResult{err: err})
	if b := ca.b; b != nil {
		for _, w := range b.leaveWait {
			w <- nil
		}
		b.leaveWait = nil
	}
	if !ca.stopping {
		ca.s.emit(ChannelEnded{Topic: ca.ch.topic, Err: err})
	}
}
