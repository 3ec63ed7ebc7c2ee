package phx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// The socket actor's mailbox: a sealed sum of requests.
type sockMsg interface{ isSockMsg() }

type pushMsg struct{ p *push } // a ping

type cancelMsg struct{ p *push } // the caller gave up on p

type subscribeMsg struct {
	sub *Subscription
	ack chan struct{} // capacity 1
}

type unsubscribeMsg struct{ sub *Subscription }

// startMsg asks for the channel's actor, started if there is none.
type startMsg struct {
	ch    *Channel
	reply chan<- *chanActor
}

// retireMsg: an idle channel actor asks to be forgotten; the answer says
// whether it was (false when it is no longer the channel's actor).
type retireMsg struct {
	ca    *chanActor
	reply chan<- bool
}

// claimMsg: a channel starts a join session with joinRef ("" until it is
// sent) and becomes the route of its topic.
type claimMsg struct {
	ca      *chanActor
	joinRef string
	reply   chan<- claimResult
}

type claimResult struct {
	prev *chanActor // held the topic before and must leave first
	ok   bool       // false: another channel took the topic from ca
}

// releaseMsg: a leaving channel no longer takes its topic's frames that
// carry no join_ref; those of its own session still reach it, and so does
// the reply to its phx_leave (leaveRef).
type releaseMsg struct {
	ca       *chanActor
	leaveRef string
}

// goneMsg: a channel actor stopped.
type goneMsg struct{ ca *chanActor }

// sockRun is a request the actor carries out by running it on its own
// state, in order with the rest of its mailbox: a way to inspect or drive
// the actor that needs no message type of its own here.
type sockRun interface {
	sockMsg
	runOn(*sockActor)
}

func (pushMsg) isSockMsg() {}

func (cancelMsg) isSockMsg() {}

func (subscribeMsg) isSockMsg() {}

func (unsubscribeMsg) isSockMsg() {}

func (startMsg) isSockMsg() {}

func (retireMsg) isSockMsg() {}

func (claimMsg) isSockMsg() {}

func (releaseMsg) isSockMsg() {}

func (goneMsg) isSockMsg() {}

type joinResult struct {
	resp []byte
	err  error
}

// sockActor is the state of the socket actor; only its goroutine touches it.
type sockActor struct {
	s     *Socket
	ctx   context.Context
	g     actor.Group
	ready chan struct{}
	evq   *actor.Queue[connEvent] // from the connections' goroutines, in order
	evbuf []connEvent
	batch []connEvent // the batch being handled
	bi    int         // next event of batch
	stall *chanActor  // batch waits for room in this channel's inbox
	// tapStall: batch waits for room in the tapper's queue; routed: the
	// current event's frame reached its channel, only the tap is left.
	tapStall, routed bool
	// ownReply: the frame being routed was a heartbeat's reply, not tapped.
	ownReply bool
	// heldBack: the socket stopped taking frames since the last heartbeat
	// went out, so its reply may be waiting behind them; hbRecv is the
	// frames read by the last heartbeat deadline.
	heldBack bool
	hbRecv   uint64
	outq     []outFrame // frames of the socket waiting for room in the writer's queue

	conn    *connHandle // current attempt or open connection
	open    bool        // conn is open
	opened  bool        // a connection opened once
	gen     uint64
	closing map[*connHandle]struct{}

	bo      backoff.BackOff
	attempt int
	rcTimer *time.Timer
	rcArmed bool

	hbTimer *time.Timer
	hbPush  *push // heartbeat awaiting its reply

	dls     deadlines
	dlTimer *time.Timer
	dlAt    time.Time

	pending map[string]*push // sent heartbeats and pings by ref
	routes  map[string]*route
	chans   map[*chanActor]struct{}
	taps    []*Subscription // the socket-wide subscriptions, which tapper delivers to
	tapper  *tapper         // nil until the first socket-wide subscription
	tapSlow bool            // the tapper's queue overflowed, until it has room

	watchers []*statusWatch // the status streams

	// For the reader's routeDirect: the published routes (topic to
	// *routeView) and whether there are socket-wide subscriptions.
	direct sync.Map
	tapsOn atomic.Bool

	chCtx    context.Context // the channel actors' context
	chCancel context.CancelCauseFunc
}

func newSockActor(s *Socket, ready chan struct{}) *sockActor {
	return &sockActor{
		s:       s,
		ready:   ready,
		evq:     actor.NewQueue[connEvent](256),
		closing: make(map[*connHandle]struct{}),
		pending: make(map[string]*push),
		routes:  make(map[string]*route),
		chans:   make(map[*chanActor]struct{}),
	}
}

// initStatus makes the Status stream the first status stream.
func (a *sockActor) initStatus() {
	a.watchers = []*statusWatch{{c: a.s.status}}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (a *sockActor) run(ctx context.Context) (err error) {
	a.ctx = ctx
	a.initStatus()
	// Channels are stopped by the socket alone, with the reason it chooses,
	// once it stops itself.
	a.chCtx, a.chCancel = context.WithCancelCause(context.WithoutCancel(ctx))
	a.rcTimer, a.hbTimer, a.dlTimer = stoppedTimer(), stoppedTimer(), stoppedTimer()
	a.bo = a.s.cfg.Reconnect()
	a.s.state.Store(int32(StateConnecting))
	defer a.g.Wait()
	defer func() { err = a.shutdown(context.Cause(ctx), err) }()
	a.dial()
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		// Control before data: requests go before frames. Channels rely on
		// it: a claim or release they send before writing a frame is
		// handled before the server's answer to that frame.
		for range 256 {
			select {
			case m := <-a.s.mb.C():
				a.handleMsg(m)
				continue
			default:
			}
			break
		}
		if a.batch != nil && !a.stalled() {
			if err := a.runBatch(); err != nil {
				return err
			}
			a.armDeadlines()
			continue
		}
		var out chan outFrame
		var next outFrame
		var qh *connHandle
		if len(a.outq) > 0 && a.open {
			// Counted as queued before it may be (see connHandle), and
			// uncounted below unless it went. A return from the loop ends
			// the socket, and the count no longer matters.
			qh = a.conn
			out, next = qh.out, a.outq[0]
			qh.queued.Add(1)
		}
		var evReady, space <-chan struct{}
		switch {
		case a.stall != nil:
			space = a.stall.in.Space()
		case a.tapStall:
			space = a.tapper.in.Space()
		default:
			evReady = a.evq.Ready()
		}
		sent := false
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case m := <-a.s.mb.C():
			a.handleMsg(m)
		case <-evReady:
			// Everything the reader queued meanwhile, in one batch and in
			// order: one hand-off per batch rather than per frame.
			a.batch, a.bi = a.evq.Drain(a.evbuf), 0
			a.evbuf = nil
			if err := a.runBatch(); err != nil {
				return err
			}
		case <-space:
			a.stall, a.tapStall = nil, false
			if err := a.runBatch(); err != nil {
				return err
			}
		case out <- next:
			sent = true
			a.outq[0] = outFrame{}
			a.outq = a.outq[1:]
			if len(a.outq) == 0 {
				a.outq = nil
			}
		case <-a.hbTimer.C:
			if err := a.heartbeatTick(); err != nil {
				return err
			}
		case <-a.rcTimer.C:
			a.rcArmed = false
			a.dial()
		case <-a.s.statq.Ready():
			a.flushStatus()
		case <-a.dlTimer.C:
			a.dlAt = time.Time{}
			now := time.Now()
			for d := a.dls.popDue(now); d != nil; d = a.dls.popDue(now) {
				a.fire(d)
			}
		}
		if qh != nil {
			if sent {
				qh.kick()
			} else {
				qh.queued.Add(-1)
			}
		}
		a.armDeadlines()
	}
}

// runBatch handles the current batch of connection events from where it
// stopped; it stops early when a channel's inbox (or the tapper's queue) is
// full and a subscription there waits for its consumer (Backpressure,
// Block). The reader then fills the event queue and waits, and the server
// is pushed back.
func (a *sockActor) runBatch() error {
	for a.bi < len(a.batch) {
		if err := a.handleEv(&a.batch[a.bi]); err != nil {
			return err
		}
		if a.stalled() {
			a.heldBack = true
			return nil
		}
		if ev := &a.batch[a.bi]; ev.kind == evFrame {
			ev.h.inflight.Add(-1) // routed: see routeDirect
		}
		a.bi++
		a.routed = false
	}
	if cap(a.batch) >= 64 {
		a.evbuf = a.batch[:0] // a busy socket reuses its batches' arrays
	} else {
		a.evbuf = nil // an idle one keeps none
	}
	a.batch, a.bi = nil, 0
	return nil
}

// stalled: the batch waits for a consumer.
func (a *sockActor) stalled() bool { return a.stall != nil || a.tapStall }

func (a *sockActor) armDeadlines() {
	if len(a.dls) == 0 {
		if !a.dlAt.IsZero() {
			a.dlTimer.Stop()
			a.dlAt = time.Time{}
		}
		return
	}
	if at := a.dls[0].at; !at.Equal(a.dlAt) {
		a.dlAt = at
		a.dlTimer.Reset(time.Until(at))
	}
}

func (a *sockActor) fire(d *deadline) {
	switch {
	case d.p != nil:
		a.resolve(d.p, pushResult{err: ErrTimeout})
	case d.h != nil:
		delete(a.closing, d.h)
		if d.h.c != nil {
			_ = d.h.c.Close()
		}
	}
}

func (a *sockActor) setState(st State) { a.s.state.Store(int32(st)) }

func (a *sockActor) nextRef() string {
	for {
		n := a.s.ref.Add(1)
		if n == 0 {
			continue
		}
		r := strconv.FormatUint(n, 10)
		if _, busy := a.pending[r]; !busy {
			return r
		}
	}
}

// publish tells every channel the connection state changed (h: the open
// connection, nil for none).
func (a *sockActor) publish(h *connHandle) {
	a.gen++
	st := &connState{gen: a.gen, h: h}
	if h != nil {
		h.st = st
	}
	a.s.conn.Store(st)
	for ca := range a.chans {
		ca.in.Wake()
	}
}

func (a *sockActor) handleEv(ev *connEvent) error {
	if ev.h != a.conn {
		return nil // an old connection's late event
	}
	switch ev.kind {
	case evFrame:
		if a.s.ser == wire.V2 && !ev.msg.Binary { // see connLoop
			p, err := wire.CheckPayload(ev.msg.Payload)
			if err != nil {
				a.s.nMalformed.Add(1)
				return a.onLost(fmt.Errorf("%w: %w", ErrProtocol, err), &closeReq{code: 1002, reason: "protocol error"})
			}
			ev.msg.Payload = p
		}
		a.ownForTaps(ev)
		a.handleFrame(ev.h, &ev.msg, ev.lent)
	case evOpen:
		a.onOpen(ev.h, ev.c)
	case evClosed:
		return a.onLost(ev.err, &closeReq{})
	}
	return nil
}

func (a *sockActor) onOpen(h *connHandle, c Conn) {
	h.c = c
	a.open = true
	a.setState(StateConnected)
	// The reconnect backoff is not reset here but once the connection has
	// answered (proveHealthy): a server that accepts and fails at once
	// would otherwise be redialled at the first step forever.
	if a.opened {
		a.s.nReconnects.Add(1)
	} else {
		a.opened = true
		close(a.ready)
	}
	a.emit(Connected{URL: redactURL(a.s.endpoint)})
	a.resetHeartbeat()
	// Every channel hears of it and rejoins as phoenix.js does.
	a.publish(h)
}

// onLost handles the end of the current connection (or of a failed dial):
// it tells the channels (which error and fail the pushes that can no longer
// be answered), and reconnects or ends the socket by the close-code policy.
func (a *sockActor) onLost(err error, req *closeReq) error {
	wasOpen := a.open
	a.teardown(a.conn, req)
	a.stall, a.tapStall = nil, false // the rest of the batch is of the connection that ended
	a.stopHeartbeat()
	for _, p := range a.pending {
		if p.kind == kindPing {
			a.resolve(p, pushResult{err: ErrDisconnected})
		} else {
			a.unpend(p)
		}
	}
	if wasOpen {
		a.publish(nil)
	}
	code := CloseCode(err)
	var fatal error
	var de *DialError
	switch {
	case !a.opened:
		fatal = err // the first attempt is not retried: Connect returns err
	case errors.As(err, &de) && de.Unauthorized() && !a.s.cfg.RetryUnauthorized:
		fatal = err
	case code == 1000 && !a.s.cfg.ReconnectOnNormalClose:
		fatal = err
	}
	var delay time.Duration
	if fatal == nil {
		delay = a.bo.NextBackOff()
		if delay == backoff.Stop {
			fatal = fmt.Errorf("phx: reconnect backoff gave up: %w", err)
		}
	}
	if a.opened {
		a.emit(Disconnected{Err: err, Code: code, Reconnect: fatal == nil})
	}
	if fatal != nil {
		return fatal
	}
	a.s.stats.lost[CauseOf(err)].Add(1)
	a.attempt++
	a.setState(StateWaiting)
	a.emit(Reconnecting{Attempt: a.attempt, Delay: delay})
	a.rcTimer.Reset(delay)
	a.rcArmed = true
	return nil
}

func (a *sockActor) handleMsg(m sockMsg) {
	switch m := m.(type) {
	case pushMsg:
		p := m.p
		p.dl.idx, p.dl.p = -1, p
		p.start = time.Now()
		if err := a.sendRaw(p); err != nil {
			a.resolve(p, pushResult{err: err})
			return
		}
		// A ping unanswered within the timeout ends with ErrTimeout;
		// armDeadlines arms the socket's timer for it.
		a.dls.schedule(&p.dl, p.start.Add(p.timeout))
	case cancelMsg:
		if !m.p.done {
			a.resolve(m.p, pushResult{err: context.Canceled})
		}
	case startMsg:
		ca := m.ch.a.Load()
		if ca == nil {
			ca = newChanActor(a.s, m.ch, &a.g)
			m.ch.a.Store(ca)
			a.chans[ca] = struct{}{}
			a.g.Spawn(a.chCtx, ca)
		}
		m.reply <- ca
	case retireMsg:
		ok := m.ca.ch.a.CompareAndSwap(m.ca, nil)
		if ok {
			a.forget(m.ca)
		}
		m.reply <- ok
	case goneMsg:
		a.forget(m.ca)
	case claimMsg:
		m.reply <- a.claim(m)
	case releaseMsg:
		if rt := a.routes[m.ca.ch.topic]; rt != nil {
			rt.release(m.ca, m.leaveRef)
			a.publishRoute(m.ca.ch.topic)
		}
	case subscribeMsg:
		m.sub.taken() // before the tapper owns it
		a.addTap(m.sub)
		m.ack <- struct{}{}
	case unsubscribeMsg:
		a.removeTap(m.sub)
	case watchMsg:
		a.watch(m)
	case unwatchMsg:
		a.unwatch(m.w)
	case sockRun:
		m.runOn(a)
	}
}

func (a *sockActor) shutdown(cause, runErr error) error {
	reason := runErr
	if reason == nil {
		reason = cause
	}
	a.setState(StateClosed)
	// Nobody takes connection events any more: a reader waiting for room
	// to hand over its last error (with the actor's context, which ends
	// only after Run returns) gives up, so that the wait below ends.
	a.evq.Close()
	chErr := ErrClosed
	if reason != nil && !errors.Is(reason, errUserClose) && !errors.Is(reason, ErrClosed) {
		chErr = fmt.Errorf("%w: %w", ErrClosed, reason)
	}
	// Every channel closes with chErr and stops; its pushes and
	// subscriptions end with it.
	a.chCancel(chErr)
	for _, p := range a.pending {
		a.resolve(p, pushResult{err: chErr})
	}
	a.taps = nil // the tapper ends them with chErr
	a.tapsChanged()
	a.rcTimer.Stop()
	a.hbTimer.Stop()
	a.dlTimer.Stop()

	// Close every connection: a close frame from its writer, and a hard
	// close for those whose writer does not finish within CloseTimeout.
	if a.conn != nil {
		req := &closeReq{code: 1000}
		var uc *userClose
		if errors.As(reason, &uc) {
			req.code, req.reason = uc.code, uc.reason
		}
		if !a.open {
			req.code = 0
		}
		h := a.conn
		a.teardown(h, req)
	}
	if len(a.closing) > 0 {
		t := time.NewTimer(a.s.cfg.CloseTimeout)
		for h := range a.closing {
			select {
			case <-h.done:
				continue
			case <-t.C:
			}
			break
		}
		t.Stop()
		for h := range a.closing {
			if h.c != nil {
				_ = h.c.Close()
			}
		}
	}
	a.g.Wait() // connections and channels
	var st error
	if !errors.Is(reason, errUserClose) {
		st = reason
	}
	a.closeStatus(Closed{Err: st})
	return reason
}
