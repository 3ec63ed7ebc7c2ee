package phx

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// The channel actor's mailbox: a sealed sum of requests.
type chanMsg interface{ isChanMsg() }

type joinReq struct {
	timeout time.Duration
	reply   chan joinResult
}

// joinCancelReq: the ctx of the Join waiting on reply ended first.
type joinCancelReq struct{ reply chan joinResult }

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

type unsubscribeReq struct{ sub *Subscription }

// supersedeReq: another channel of the socket is joining this one's topic;
// this one leaves first (phoenix.js leaveOpenTopic). Answered once the
// phx_leave is written, so that it goes out before the other's phx_join.
type supersedeReq struct{ done chan struct{} }

// chanRun is a request the actor carries out by running it on its own
// state, in order with the rest of its mailbox: a way to inspect or drive
// the actor that needs no message type of its own here.
type chanRun interface {
	chanMsg
	runOn(*chanActor)
}

func (joinReq) isChanMsg() {}

func (joinCancelReq) isChanMsg() {}

func (pushReq) isChanMsg() {}

func (cancelReq) isChanMsg() {}

func (leaveReq) isChanMsg() {}

func (subscribeReq) isChanMsg() {}

func (unsubscribeReq) isChanMsg() {}

func (supersedeReq) isChanMsg() {}

// inItem is one inbound frame for a channel, stamped with the connection
// that read it.
type inItem struct {
	h        *connHandle
	m        wire.Message
	lent     *frameBuf // the reusable buffer m aliases, or nil (see fanout.deliver)
	answered bool      // a reply handled ahead of its turn (answerAhead)
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
// ctlOver (the socket actor's), and mb, done, in (shared by construction).
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
	ctlOver  uint8                      // socket actor only: control frames let past the full inbox

	view       *connState // the connection this actor knows of
	inbuf      []inItem
	ahead      []inItem // answerAhead's other array, while a wait lasts
	batch      []inItem // the frames pump is handling
	next       int      // batch[next:] is still to be handled
	state      ChannelState
	joinedOnce bool            // Join was called
	joinCaller chan joinResult // the reply channel of the Join that joined
	firstDone  bool            // the first Join has its outcome
	stopping   bool            // the socket is stopping: no status events
	timeout    time.Duration
	joinRef    string
	joinPush   *push
	f          fanout    // the subscriptions
	seen       uint64    // frames taken from the inbox so far
	leaveMark  uint64    // seen when the channel started leaving
	b          *chanBusy // nil while the channel has nothing in flight

	// waiting lists the user pushes sent and not resolved, by ref, for the
	// reader's deliverDirect; written by the actor alone, made at the
	// channel's first push (a channel that never pushes keeps 8 bytes).
	waiting atomic.Pointer[sync.Map]
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
// and respawns the actor in a fresh goroutine (see Run). It does so at
// most once a clock second, so that a channel busy with one push after
// another neither remakes that state nor pays a new goroutine and a stack
// growth (some microseconds) for each. It reports whether this goroutine
// must end.
func (ca *chanActor) tidy() bool {
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
	ca.f.stopTimer()
	ca.g.Spawn(ca.ctx, ca)
	return true
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
	ca.f.s = s
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
// have to use less than a quarter of it. So whenever the channel goes
// from busy to idle (nothing in flight any more), the actor goes on in a
// fresh goroutine of the socket's group and this one ends (tidy, at most
// once a second): still one goroutine per channel, owned by the socket,
// and idle channels keep small stacks. Whether the stack did grow is not
// asked: the runtime does not say without unsafe tricks, and a busy
// period deep enough to grow it is the usual case.
func (ca *chanActor) Run(ctx context.Context) error {
	if ca.ctx == nil {
		ca.ctx = ctx
		ca.pump() // the connection state, before any request
	}
	for ca.final == nil {
		if ca.b != nil && ca.tidy() {
			return nil // a fresh stack goes on; see above
		}
		took := ca.park()
		// Control before data: the socket's stop, the connection state
		// and the frames read (pump), due deadlines, then requests. While
		// a message waits for its consumer (fanout), frames wait too,
		// except the replies that can go ahead; requests do not.
		if ctx.Err() != nil {
			ca.stop()
			break
		}
		ca.f.flush()
		ca.f.expire()
		if ca.f.isHeld() {
			ca.answerAhead()
		} else {
			ca.pump()
		}
		if ca.nDeadlines() > 0 && ca.final == nil {
			ca.fireDue()
		}
		// Requests left unhandled when the channel closes stay so: their
		// callers see done and the channel's final error.
		var buf, reqs []chanMsg
		if ca.b != nil {
			buf, ca.b.reqbuf = ca.b.reqbuf, nil
		}
		if took {
			// Only a consumer woke the actor: a request queued since the
			// last drain left a token, and the next park returns at once.
			if ca.b != nil {
				ca.b.reqbuf = buf
			}
		} else {
			reqs = ca.mb.q.Drain(buf)
		}
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
		if len(reqs) > 0 && ca.f.isHeld() && ca.final == nil {
			// A push sent meanwhile waits for a reply: empty the inbox
			// so that the reply's arrival wakes the actor.
			ca.answerAhead()
		}
		if ca.idle() && ca.retire() {
			break
		}
		ca.armTimer()
	}
	ca.exit()
	ca.linger()
	return nil
}

// linger, once the channel has closed for good, gives its subscriptions'
// consumers what they still hold (ring) before their C closes, for as long
// as they take a message every Config.SlowConsumerTimeout; what is left
// then is dropped and counted. The socket's stop ends it at once.
func (ca *chanActor) linger() {
	f := &ca.f
	for f.pending() && ca.ctx.Err() == nil {
		f.pruneClosing()
		f.flush()
		if !f.pending() {
			break
		}
		if f.wait(nil, ca.ctx.Done(), nil, ca.s.cfg.SlowConsumerTimeout) == -2 {
			for _, sub := range f.subs {
				for range sub.n {
					f.s.dropped(sub)
				}
			}
			break
		}
	}
	for _, sub := range f.subs {
		err := context.Cause(ca.ctx)
		if sub.endErr != nil {
			err = *sub.endErr
		}
		sub.finish(err)
	}
	clear(f.subs)
	f.subs, f.pend = nil, nil
	if f.w != nil {
		f.w.held = nil
	}
	f.stopTimer()
}

var clockStart = time.Now()

// clockSecond counts seconds on the monotonic clock.
func clockSecond() uint32 { return uint32(time.Since(clockStart) / time.Second) }

// park waits for a wake token (requests, frames, a new connection state),
// the socket's stop, the channel's timer when it is armed, or, while
// consumers lag, one of them taking a message; it reports that last case
// (no token was taken).
func (ca *chanActor) park() bool {
	var tc <-chan time.Time
	if ca.b != nil && ca.b.timer != nil {
		tc = ca.b.timer.C
	}
	if ca.batch != nil && !ca.f.isHeld() {
		// A wait stopped pump: frames may be left in the batch, and the
		// inbox took more without a token.
		return false
	}
	if ca.f.pending() {
		switch ca.f.wait(ca.in.Ready(), ca.ctx.Done(), tc, 0) {
		case 2:
			ca.b.timerAt = time.Time{}
		case -1, -2:
			return true
		}
		return false
	}
	select {
	case <-ca.in.Ready():
	case <-ca.ctx.Done():
	case <-tc:
		ca.b.timerAt = time.Time{}
	case <-ca.f.releaseC():
		ca.f.release()
	}
	return false
}

// stop closes the channel as the socket stops.
func (ca *chanActor) stop() {
	ca.stopping = true
	ca.closeChannel(context.Cause(ca.ctx))
}

// idle: never joined and no subscription, the actor need not run.
func (ca *chanActor) idle() bool {
	return ca.final == nil && !ca.joinedOnce && len(ca.f.subs) == 0
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
	if !ca.f.pending() {
		ca.f.stopTimer()
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
	ca.s.stats.channelState(ca.state, st)
	ca.state = st
	ca.on.Store(ca.view.h)
	ca.stateA.Store(int32(st))
}

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
		ca.joinCancel(m.reply)
	case leaveReq:
		ca.leaveReq(m.timeout, m.reply)
	case subscribeReq:
		ca.subscribe(m.sub, m.ack)
	case unsubscribeReq:
		ca.unsubscribe(m.sub)
	case supersedeReq:
		ca.supersede(m.done)
	case chanRun:
		m.runOn(ca)
	}
}

func (ca *chanActor) subscribe(sub *Subscription, ack chan struct{}) {
	ca.f.add(sub)
	sub.taken()
	ca.subsChanged()
	ack <- struct{}{}
}

func (ca *chanActor) unsubscribe(sub *Subscription) {
	ca.f.discard(sub)
	ca.subsChanged()
}
