package phx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

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
			reply: make(chan pushResult, 1), timeout: o.timeout, start: start}
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

// The channel actor's mailbox: a sealed sum of requests.
type chanMsg interface{ isChanMsg() }

type joinReq struct {
	timeout time.Duration
	reply   chan joinResult
}
type joinCancelReq struct{} // Join's ctx ended first
type pushReq struct{ p *push }
type cancelReq struct{ p *push } // the caller gave up on p
type leaveReq struct {
	timeout time.Duration
	reply   chan error
}
type subscribeReq struct {
	sub *Subscription
	ack chan struct{}
}
type unsubscribeReq struct {
	sub  *Subscription
	done chan struct{}
}

// supersedeReq: another channel of the socket is joining this one's topic;
// this one leaves first (phoenix.js leaveOpenTopic). Answered once the
// phx_leave is written, so that it goes out before the other's phx_join.
type supersedeReq struct{ done chan struct{} }

// chanDebugReq asks for the sizes of the actor's bookkeeping (tests).
type chanDebugReq struct{ reply chan debugInfo }

// chanFuncReq runs f on the actor (tests).
type chanFuncReq struct{ f func(*chanActor) }

func (joinReq) isChanMsg()        {}
func (joinCancelReq) isChanMsg()  {}
func (pushReq) isChanMsg()        {}
func (cancelReq) isChanMsg()      {}
func (leaveReq) isChanMsg()       {}
func (subscribeReq) isChanMsg()   {}
func (unsubscribeReq) isChanMsg() {}
func (supersedeReq) isChanMsg()   {}
func (chanDebugReq) isChanMsg()   {}
func (chanFuncReq) isChanMsg()    {}

// inItem is one inbound frame for a channel, stamped with the connection
// that read it.
type inItem struct {
	h *connHandle
	m wire.Message
}

// chanMailbox bounds the requests waiting for a channel actor. Each caller
// waits for its answer anyway, so the bound is on callers rather than
// memory (16 bytes a request, and none while the queue is empty); it is
// high because callers waiting for room all wake when the actor drains
// the queue, as many pushing goroutines at once would.
const chanMailbox = 1024

// chanBox is a channel actor's request queue. It shares its wake token
// with the actor's inbox, so that an idle actor waits on one channel (and
// its context) only.
type chanBox struct{ q *actor.Queue[chanMsg] }

// Tell queues m, waiting for room while neither ctx is done nor the actor
// has stopped (ErrStopped).
func (b chanBox) Tell(ctx context.Context, m chanMsg) error { return b.q.Put(ctx, m) }

// chanInbox bounds the broadcasts queued for a channel actor that has not
// taken them yet; see Socket.handleFrame for what happens beyond.
const chanInbox = 1024

// chanActor is a channel's actor. Every field below ch is owned by its
// goroutine, except: stateA, blocking (written by the actor, read by
// anyone), retired and final (written before done is closed, read after),
// and mb, done, in (shared by construction).
type chanActor struct {
	s    *Socket
	g    *actor.Group // the socket's, which runs the actor's goroutine
	ch   *Channel
	ctx  context.Context
	mb   chanBox
	done chan struct{}
	in   *actor.Queue[inItem]

	stateA   atomic.Int32
	tidyAt   uint32                     // the clock second after the last tidy
	on       atomic.Pointer[connHandle] // the connection stateA was set on
	blocking atomic.Bool                // a subscription uses the Block policy
	retired  atomic.Bool                // stopped because it was idle: callers start a new one
	final    error                      // why it closed for good

	view       *connState // the connection this actor knows of
	inbuf      []inItem
	state      ChannelState
	joinedOnce bool // Join was called
	firstDone  bool // the first Join has its outcome
	stopping   bool // the socket is stopping: no status events
	timeout    time.Duration
	joinRef    string
	joinPush   *push
	subs       []*Subscription
	b          *chanBusy // nil while the channel has nothing in flight
}

// chanBusy is the part of a channel actor's state that only a channel
// with something in flight needs: pushes, deadlines and their timer, a
// leave, a rejoin schedule. An idle joined channel keeps none of it.
type chanBusy struct {
	joinWaiter chan joinResult // the first Join, until its outcome
	leavePush  *push
	leaveWait  []chan error
	reqbuf     []chanMsg        // the request queue's next array, when busy
	buf        []*push          // waiting for the join
	pending    map[string]*push // sent pushes of this join session, by ref

	rejoinBo      backoff.BackOff
	rejoinAttempt int
	rejoinDL      deadline
	tidyDL        deadline // wakes the actor to tidy up (see tidy)

	dls     deadlines
	timer   *time.Timer // only while dls is not empty
	timerAt time.Time
}

// busy returns the channel's in-flight state, made when needed.
func (ca *chanActor) busy() *chanBusy {
	if ca.b == nil {
		ca.b = &chanBusy{}
		ca.b.rejoinDL.ca, ca.b.rejoinDL.idx = ca, -1
		ca.b.tidyDL.idx = -1
	}
	return ca.b
}

// settled: nothing is left in the in-flight state, which may go. A rejoin
// schedule that was reset (attempt 0) starts over from a fresh backoff
// the same way.
func (ca *chanActor) settled() bool {
	b := ca.b
	return b == nil || len(b.dls) == 0 && b.timer == nil && len(b.pending) == 0 && len(b.buf) == 0 &&
		b.leavePush == nil && len(b.leaveWait) == 0 && b.rejoinAttempt == 0 && b.joinWaiter == nil
}

// tidy, once the channel has nothing in flight, drops its in-flight state
// and, when moved says its stack has grown, respawns the actor (see Run).
// It does so at most once a clock second, so that a channel busy with one
// push after another neither remakes that state nor pays a new goroutine
// and a stack growth (some microseconds) for each. It reports whether
// this goroutine must end.
func (ca *chanActor) tidy(moved bool) bool {
	if !ca.settled() {
		return false
	}
	now := clockSecond()
	if now < ca.tidyAt {
		// Too soon after the last: the channel tidies up when a second
		// has gone by, unless it is busy again by then.
		b := ca.busy()
		b.dls.schedule(&b.tidyDL, time.Now().Add(time.Second))
		ca.armTimer()
		return false
	}
	ca.tidyAt = now + 1
	ca.b = nil
	if moved {
		ca.g.Spawn(ca.ctx, ca)
		return true
	}
	return false
}

// nDeadlines is the number of deadlines scheduled.
func (ca *chanActor) nDeadlines() int {
	if ca.b == nil {
		return 0
	}
	return len(ca.b.dls)
}

// schedule (re)arms d at t.
func (ca *chanActor) schedule(d *deadline, t time.Time) { ca.busy().dls.schedule(d, t) }

// cancel unschedules d.
func (ca *chanActor) cancel(d *deadline) {
	if ca.b == nil {
		d.idx = -1
		return
	}
	ca.b.dls.cancel(d)
}

// cancelRejoin unschedules the rejoin.
func (ca *chanActor) cancelRejoin() {
	if ca.b != nil {
		ca.b.dls.cancel(&ca.b.rejoinDL)
	}
}

// leavePush is the phx_leave in flight, if any.
func (ca *chanActor) leavePush() *push {
	if ca.b == nil {
		return nil
	}
	return ca.b.leavePush
}

// sent is the push of this join session waiting for its reply with ref.
func (ca *chanActor) sent(ref string) *push {
	if ca.b == nil {
		return nil
	}
	return ca.b.pending[ref]
}

var noConn = &connState{}

func newChanActor(s *Socket, ch *Channel, g *actor.Group) *chanActor {
	ca := &chanActor{s: s, g: g, ch: ch, done: make(chan struct{}), in: actor.NewQueue[inItem](chanInbox), view: noConn}
	ca.mb = chanBox{actor.NewQueueSharing[chanMsg](chanMailbox, ca.in)}
	return ca
}

// joinEnded is Join's error once the actor has stopped.
func (ca *chanActor) joinEnded() error {
	if ca.stopping {
		return &JoinError{Topic: ca.ch.topic, Err: ca.final}
	}
	return &JoinError{Topic: ca.ch.topic, Err: fmt.Errorf("%w: %w", ErrAlreadyJoined, ca.final)}
}

// Run is the channel's actor loop. It returns when the channel closes for
// good, when it retires idle, or when the socket cancels ctx (the cause is
// the error the channel closes with).
//
// An idle joined channel is parked here for most of its life, on its wake
// token and ctx alone, and its goroutine's stack is most of what it costs.
// A stack grows (doubles) when a call chain comes within about 900 bytes
// of its end, and joining alone goes deeper than the 2 KiB a goroutine
// starts with (encoding, JSON params, waiting on the socket); Go never
// shrinks it back while the goroutine waits in a select, since it would
// have to use less than a quarter of it. So once the channel has nothing
// in flight and its stack has grown, the actor goes on in a fresh
// goroutine of the socket's group and this one ends (tidy, at most once a
// second): still one goroutine per channel, owned by the socket, and idle
// channels keep small stacks.
func (ca *chanActor) Run(ctx context.Context) error {
	if ca.ctx == nil {
		ca.ctx = ctx
		ca.pump() // the connection state, before any request
	}
	var mark byte
	base := stackAddr(&mark)
	for ca.final == nil {
		if moved := stackAddr(&mark) != base; (moved || ca.b != nil) && ca.tidy(moved) {
			return nil // a fresh stack goes on; see above
		}
		ca.park()
		// Control before data: the socket's stop, the connection state
		// and the frames read (pump), due deadlines, then requests.
		if ctx.Err() != nil {
			ca.stop()
			break
		}
		ca.pump()
		if ca.nDeadlines() > 0 && ca.final == nil {
			ca.fireDue()
		}
		// Requests left unhandled when the channel closes stay so: their
		// callers see done and the channel's final error.
		var buf []chanMsg
		if ca.b != nil {
			buf, ca.b.reqbuf = ca.b.reqbuf, nil
		}
		reqs := ca.mb.q.Drain(buf)
		for i := 0; i < len(reqs) && ca.final == nil; i++ {
			ca.handleReq(reqs[i])
			if ca.idle() && ca.retire() {
				ca.exit()
				return nil
			}
		}
		if ca.b != nil && cap(reqs) >= 64 {
			ca.b.reqbuf = reqs // many callers at once: reuse the batches' arrays
		}
		if ca.idle() && ca.retire() {
			break
		}
		ca.armTimer()
	}
	ca.exit()
	return nil
}

var clockStart = time.Now()

// clockSecond counts seconds on the monotonic clock.
func clockSecond() uint32 { return uint32(time.Since(clockStart) / time.Second) }

// stackAddr is where p, a local of the caller, is: it changes when the
// goroutine's stack is copied to a larger (or smaller) one.
func stackAddr(p *byte) uintptr { return uintptr(unsafe.Pointer(p)) }

// park waits for a wake token (requests, frames, a new connection state),
// the socket's stop, or the channel's timer when it is armed.
func (ca *chanActor) park() {
	var tc <-chan time.Time
	if ca.b != nil && ca.b.timer != nil {
		tc = ca.b.timer.C
	}
	select {
	case <-ca.in.Ready():
	case <-ca.ctx.Done():
	case <-tc:
		ca.b.timerAt = time.Time{}
	}
}

// stop closes the channel as the socket stops.
func (ca *chanActor) stop() {
	ca.stopping = true
	ca.closeChannel(context.Cause(ca.ctx))
}

// idle: never joined and no subscription, the actor need not run.
func (ca *chanActor) idle() bool {
	return ca.final == nil && !ca.joinedOnce && len(ca.subs) == 0
}

func (ca *chanActor) fireDue() {
	now := time.Now()
	b := ca.b // dropped only by Run, between wakes
	for d := b.dls.popDue(now); d != nil; d = b.dls.popDue(now) {
		ca.fire(d)
	}
}

// retire asks the socket to forget this idle actor (never joined, no
// subscription), so that an unused Channel keeps no goroutine.
func (ca *chanActor) retire() bool {
	ok, err := actor.Ask(ca.ctx, ca.s.mb, func(r chan<- bool) sockMsg { return retireMsg{ca: ca, reply: r} })
	if err != nil || !ok {
		return false
	}
	ca.retired.Store(true)
	return true
}

func (ca *chanActor) exit() {
	defer close(ca.done)
	ca.mb.q.Close()
	ca.in.Close()
	ca.setState(ChannelClosed)
	if ca.b != nil && ca.b.timer != nil {
		ca.b.timer.Stop()
	}
	if !ca.retired.Load() && ca.ctx.Err() == nil {
		_ = ca.s.mb.Tell(ca.ctx, goneMsg{ca: ca})
	}
}

func (ca *chanActor) armTimer() {
	b := ca.b
	if b == nil {
		return
	}
	if len(b.dls) == 0 {
		b.dls = nil // its array too
		if b.timer != nil {
			// Idle channels keep no timer.
			b.timer.Stop()
			b.timer = nil
			b.timerAt = time.Time{}
		}
		return
	}
	at := b.dls[0].at
	if b.timer == nil {
		b.timer = time.NewTimer(time.Until(at))
		b.timerAt = at
		return
	}
	if !at.Equal(b.timerAt) {
		b.timerAt = at
		b.timer.Reset(time.Until(at))
	}
}

func (ca *chanActor) fire(d *deadline) {
	switch {
	case d.p != nil:
		ca.pushTimeout(d.p)
	case d == &ca.b.tidyDL:
		// Run tidies up once nothing else is in flight.
	case d.ca != nil:
		if ca.view.h != nil && ca.state == ChannelErrored {
			ca.rejoin()
		}
	}
}

func (ca *chanActor) setState(st ChannelState) {
	ca.state = st
	ca.on.Store(ca.view.h)
	ca.stateA.Store(int32(st))
}

// ---- connection state and inbound frames ----

// pump takes the socket's connection state, then every frame queued for
// the channel, and applies them in the order the socket saw them: a frame
// read on a newer connection first moves the channel to it, a frame of a
// connection the channel already saw end is dropped, and the connection
// state taken first is applied last, so that a reply read before a
// connection dropped still resolves its push.
func (ca *chanActor) pump() {
	cur := ca.s.conn.Load()
	items := ca.in.Drain(ca.inbuf)
	for i := range items {
		it := &items[i]
		if st := it.h.st; st != nil && st.gen > ca.view.gen {
			ca.sync(st)
		}
		if it.h != ca.view.h || ca.final != nil {
			continue // read on a connection that has gone
		}
		ca.handleFrame(&it.m)
	}
	if cap(items) >= 64 {
		ca.inbuf = items // busy channels reuse their buffers
	} else {
		clear(items)
		ca.inbuf = nil // idle ones keep none
	}
	if ca.final == nil {
		ca.sync(cur)
	}
}

// sync moves the channel's view of the connection to st.
func (ca *chanActor) sync(st *connState) {
	if st.gen <= ca.view.gen {
		return
	}
	from := ca.view
	if from.h != nil && from.h != st.h {
		ca.lost()
	}
	ca.view = st
	if st.h != nil && st.h != from.h && ca.final == nil {
		ca.opened()
	}
}

// lost: the connection the channel used is gone. Sent pushes can no longer
// be answered; a leave completes locally (the server drops the channel with
// the connection); a joined or joining channel errors and rejoins when the
// socket reconnects.
func (ca *chanActor) lost() {
	if ca.leavePush() != nil {
		ca.closeChannel(ErrLeft)
		return
	}
	ca.failSession(ErrDisconnected)
	ca.chanErrored(nil, false)
}

// opened: phoenix.js rejoins every errored channel at once when the socket
// opens, and the rejoin timers start over. Joins that were waiting for a
// connection are sent too.
func (ca *chanActor) opened() {
	ca.rejoinBoReset()
	ca.cancelRejoin()
	if ca.state == ChannelErrored || (ca.state == ChannelJoining && ca.joinPush != nil && !ca.joinPush.sent) {
		ca.rejoin()
	}
}

func (ca *chanActor) handleFrame(m *wire.Message) {
	if m.Event == wire.EventReply {
		ca.handleReply(m)
		return
	}
	if jr, ok := m.JoinRef.Get(); ok && jr != ca.joinRef {
		ca.s.nStale.Add(1) // a frame of an earlier join session
		return
	}
	switch m.Event {
	case wire.EventError:
		if ca.state == ChannelJoined || ca.state == ChannelJoining {
			ca.serverError(m)
		}
	case wire.EventClose:
		ca.serverClose()
	default:
		if ca.state == ChannelErrored || ca.state == ChannelLeaving {
			// The session ended (phx_error, lost connection, leave);
			// whatever still arrives for it belongs to no session we can
			// stamp.
			ca.s.nStale.Add(1)
			return
		}
		if len(ca.subs) > 0 {
			ca.deliver(m)
		}
	}
}

func (ca *chanActor) serverError(m *wire.Message) {
	ca.chanErrored(&ServerError{Topic: ca.ch.topic, Event: m.Event, Payload: append([]byte(nil), m.Payload...)}, true)
}

func (ca *chanActor) serverClose() {
	if ca.state == ChannelLeaving {
		ca.closeChannel(ErrLeft)
	} else {
		ca.closeChannel(fmt.Errorf("%w: channel %s closed by the server", ErrClosed, ca.ch.topic))
	}
}

func (ca *chanActor) handleReply(m *wire.Message) {
	ref, ok := m.Ref.Get()
	var p *push
	switch {
	case !ok:
	case ca.joinPush != nil && ca.joinPush.sent && ca.joinPush.ref == ref:
		p = ca.joinPush
	case ca.leavePush() != nil && ca.b.leavePush.ref == ref:
		p = ca.b.leavePush
	default:
		p = ca.sent(ref)
	}
	if p == nil {
		ca.s.nUnrouted.Add(1)
		return
	}
	if jr, ok := m.JoinRef.Get(); ok && jr != p.joinRef {
		ca.s.nStale.Add(1)
		return
	}
	ca.replied(p, m)
}

// replied gives p its reply m.
func (ca *chanActor) replied(p *push, m *wire.Message) {
	r, err := wire.ParseReply(m)
	if err != nil {
		ca.badReply(p, err)
		return
	}
	switch p.kind {
	case kindUser:
		ca.userReply(p, Reply{Status: r.Status, Response: r.Response, Binary: r.Binary})
	case kindJoin:
		ca.joinReply(Reply{Status: r.Status, Response: r.Response, Binary: r.Binary})
	case kindLeave:
		ca.closeChannel(ErrLeft)
	}
}

func (ca *chanActor) badReply(p *push, err error) {
	ca.s.nMalformed.Add(1)
	if p.kind == kindUser {
		ca.resolve(p, pushResult{err: fmt.Errorf("%w: %w", ErrProtocol, err)})
	}
}

func (ca *chanActor) userReply(p *push, rep Reply) {
	res := pushResult{reply: rep}
	if rep.Status != "ok" {
		res.err = &ReplyError{Status: rep.Status, Response: rep.Response}
	}
	ca.resolve(p, res)
}

// deliver hands m to the channel's subscriptions.
func (ca *chanActor) deliver(m *wire.Message) {
	msg := Message{Topic: ca.ch.topic, Event: m.Event, Payload: m.Payload, Binary: m.Binary, JoinRef: ca.joinRef}
	ca.subs = deliver(ca.s, ca.subs, msg, ca.ctx.Done())
}

func (ca *chanActor) subsChanged() {
	b := false
	for _, sub := range ca.subs {
		b = b || sub.overflow == Block
	}
	if ca.blocking.Load() != b {
		ca.blocking.Store(b)
	}
}

// ---- requests ----

// handleReq dispatches a request.
func (ca *chanActor) handleReq(m chanMsg) {
	switch m := m.(type) {
	case pushReq:
		ca.handlePush(m.p)
	case cancelReq:
		ca.cancelPush(m.p)
	case joinReq:
		ca.join(m.timeout, m.reply)
	case joinCancelReq:
		ca.joinCancel()
	case leaveReq:
		ca.leaveReq(m.timeout, m.reply)
	case subscribeReq:
		ca.subscribe(m.sub, m.ack)
	case unsubscribeReq:
		ca.unsubscribe(m.sub, m.done)
	case supersedeReq:
		ca.supersede(m.done)
	case chanDebugReq:
		ca.debug(m.reply)
	case chanFuncReq:
		m.f(ca)
	}
}

func (ca *chanActor) debug(reply chan debugInfo) {
	var d debugInfo
	if b := ca.b; b != nil {
		d = debugInfo{pending: len(b.pending), deadlines: len(b.dls), buffered: len(b.buf)}
		if b.tidyDL.idx >= 0 {
			d.deadlines-- // housekeeping, not a timeout of the channel's
		}
	}
	reply <- d
}

func (ca *chanActor) cancelPush(p *push) {
	if !p.done {
		ca.resolve(p, pushResult{err: context.Canceled})
	}
}

func (ca *chanActor) join(timeout time.Duration, reply chan joinResult) {
	if ca.joinedOnce {
		ca.alreadyJoined(reply)
		return
	}
	ca.joinedOnce = true
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

func (ca *chanActor) joinCancel() {
	if ca.b != nil && ca.b.joinWaiter != nil {
		ca.b.joinWaiter = nil
		ca.leave(ca.s.cfg.Timeout, nil)
	}
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

func (ca *chanActor) subscribe(sub *Subscription, ack chan struct{}) {
	ca.subs = append(ca.subs, sub)
	ca.subsChanged()
	ack <- struct{}{}
}

func (ca *chanActor) unsubscribe(sub *Subscription, done chan struct{}) {
	ca.subs = removeSub(ca.subs, sub)
	ca.subsChanged()
	sub.finish(nil)
	done <- struct{}{}
}

func (ca *chanActor) supersede(done chan struct{}) {
	if ca.state == ChannelJoined || ca.state == ChannelJoining || ca.state == ChannelErrored {
		ca.leave(ca.timeout, nil)
	}
	close(done)
}

func (ca *chanActor) handlePush(p *push) {
	p.dl.idx = -1
	p.dl.p = p
	switch {
	case !ca.joinedOnce:
		ca.resolve(p, pushResult{err: ErrNotJoined})
		return
	case ca.state == ChannelLeaving:
		ca.resolve(p, pushResult{err: ErrLeft})
		return
	}
	b := ca.busy()
	b.dls.schedule(&p.dl, p.start.Add(p.timeout))
	if ca.view.h != nil && ca.state == ChannelJoined {
		ca.sendPush(p)
		return
	}
	if len(b.buf) >= ca.s.cfg.PushBuffer {
		ca.resolve(p, pushResult{err: ErrPushBufferFull})
		return
	}
	b.buf = append(b.buf, p)
}

// sendPush sends a push in the channel's current join session; it then
// waits in pending for its reply.
func (ca *chanActor) sendPush(p *push) {
	p.ref = ca.nextRef()
	p.joinRef = ca.joinRef
	if err := ca.writePush(p); err != nil {
		ca.resolve(p, pushResult{err: err})
		return
	}
	p.sent = true
	b := ca.busy()
	if b.pending == nil {
		b.pending = make(map[string]*push)
	}
	b.pending[p.ref] = p
}

func (ca *chanActor) writePush(p *push) error {
	return ca.send(p.joinRef, p.ref, p.event, p.payload, p.binary)
}

// send encodes a frame of the channel (joinRef "" sends null; a nil
// payload sends {}) and queues it for the connection the channel knows of.
// The frame's buffer is sized beforehand, so that the encoder need not
// grow it.
func (ca *chanActor) send(joinRef, ref, event string, payload []byte, binary bool) error {
	h := ca.view.h
	if h == nil {
		return ErrDisconnected
	}
	m := wire.Message{Ref: wire.NewRef(ref), Topic: ca.ch.topic, Event: event, Payload: payload, Binary: binary}
	if joinRef != "" {
		m.JoinRef = wire.NewRef(joinRef)
	}
	if m.Payload == nil {
		m.Payload = emptyObject
	}
	// Both encodings take less than this unless topic or event need
	// escapes, and then the encoder grows the buffer itself.
	buf := make([]byte, 0, len(m.Payload)+len(m.Topic)+len(event)+len(joinRef)+len(ref)+32)
	data, op, err := ca.s.ser.EncodeClient(buf, &m)
	if err != nil {
		return err
	}
	return ca.out(h, outFrame{op: op, data: data})
}

// out queues a frame for connection h through the socket's writer. It
// waits when the writer is behind (bounded by WriteTimeout, after which the
// writer drops the connection) and gives up when the connection or the
// socket stops.
func (ca *chanActor) out(h *connHandle, f outFrame) error {
	select {
	case h.out <- f:
		return nil
	default:
	}
	select {
	case h.out <- f:
		return nil
	case <-h.wdone:
		return ErrDisconnected
	case <-ca.ctx.Done():
		return ErrClosed
	}
}

// nextRef mints a ref from the socket's counter. Replies are routed by
// topic, so a ref need only be unique among this channel's waiting pushes,
// even after the counter wraps.
func (ca *chanActor) nextRef() string {
	for {
		n := ca.s.ref.Add(1)
		if n == 0 {
			continue
		}
		r := strconv.FormatUint(n, 10)
		if ca.sent(r) != nil {
			continue
		}
		if lp := ca.leavePush(); (ca.joinPush != nil && ca.joinPush.ref == r) || (lp != nil && lp.ref == r) {
			continue
		}
		return r
	}
}

var emptyObject = []byte("{}")

// resolve gives a user push its one outcome and forgets it everywhere.
func (ca *chanActor) resolve(p *push, r pushResult) {
	if p.done {
		return
	}
	p.done = true
	ca.cancel(&p.dl)
	if b := ca.b; b == nil {
		// nothing of it was kept
	} else if p.sent {
		if b.pending[p.ref] == p {
			delete(b.pending, p.ref) // the map goes with b once the channel is idle
		}
	} else if i := slices.Index(b.buf, p); i >= 0 {
		b.buf = slices.Delete(b.buf, i, i+1)
	}
	if p.reply != nil {
		p.reply <- r // capacity 1, sent once
	}
}

func (ca *chanActor) pushTimeout(p *push) {
	switch p.kind {
	case kindUser:
		ca.resolve(p, pushResult{err: ErrTimeout})
	case kindJoin:
		ca.joinTimeout(p)
	case kindLeave:
		ca.closeChannel(ErrLeft)
	}
}

// ---- join, rejoin, leave ----

// rejoin starts a join session: fresh join_ref, fresh join push.
func (ca *chanActor) rejoin() {
	if ca.state == ChannelLeaving || ca.final != nil {
		return
	}
	ca.cancelRejoin()
	if ca.joinPush != nil {
		ca.dropJoinPush()
	}
	p := &push{kind: kindJoin, event: wire.EventJoin, timeout: ca.timeout, start: time.Now()}
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
	if err := ca.send(ref, ref, p.event, p.payload, false); err != nil {
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
func (ca *chanActor) dropJoinPush() {
	p := ca.joinPush
	ca.joinPush = nil
	if p == nil {
		return
	}
	p.done = true
	ca.cancel(&p.dl)
}

func (ca *chanActor) joinReply(r Reply) {
	ca.dropJoinPush()
	if r.Status == "ok" {
		ca.joined(r.Response)
		return
	}
	ca.joinRefused(r)
}

func (ca *chanActor) joined(resp json.RawMessage) {
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
	ca.failSession(ErrDisconnected)
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
	if ca.view.h == nil || !wasInSession {
		ca.closeChannel(ErrLeft)
		return
	}
	// Frames of the topic without a join_ref are no longer this channel's.
	_ = ca.s.mb.Tell(ca.ctx, releaseMsg{ca: ca})
	p := &push{kind: kindLeave, event: wire.EventLeave, timeout: timeout, start: time.Now()}
	p.dl.p, p.dl.idx = p, -1
	p.ref = ca.nextRef()
	p.joinRef = ca.joinRef
	if err := ca.writePush(p); err != nil {
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
		ca.cancel(&p.dl)
	}
	for ca.b != nil && len(ca.b.buf) > 0 {
		ca.resolve(ca.b.buf[0], pushResult{err: err})
	}
	ca.failSession(err)
	for _, sub := range ca.subs {
		sub.finish(err)
	}
	ca.subs = nil
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
