package phx

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// Socket is a connection to a Phoenix endpoint that reconnects by itself.
//
// A Socket is one actor: a goroutine that owns the connection (dial,
// heartbeat, reconnect, close) and the routing of frames by topic, plus, per
// connection, one reader and one writer goroutine. Each joined or
// subscribed channel is an actor of its own, owned by the socket. Nothing is
// shared behind an actor's back; the methods below send messages.
//
// Concurrency: every method is safe for concurrent use. Blocking methods take
// a ctx and also return when the socket stops. After Close (or after the
// socket ended by itself, see Done and Err) calls return ErrClosed, Status and
// subscriptions are closed, and no goroutine of the socket is left.
type Socket struct {
	cfg      Config
	endpoint string // normalised, without query
	ser      wire.Serializer

	mb     actor.Mailbox[sockMsg]
	proc   *actor.Proc
	status chan Status
	state  atomic.Int32
	closed atomic.Bool // Close was called

	// ref counts the refs minted by the socket and its channels.
	ref atomic.Uint64
	// conn is the latest connection state, published by the socket actor
	// for its channels, which are woken to read it (a conflating control
	// mailbox: a channel needs only the latest state).
	conn atomic.Pointer[connState]

	nReceived, nStale, nUnrouted, nMalformed, nDropped, nOverflowed, nReconnects atomic.Uint64
}

// Connect dials endpoint ("ws://host:4000/socket"; http(s) is accepted and
// "/websocket" is appended unless present) and returns once the first
// connection is open. The first connection attempt is not retried: its error
// (a *DialError) is returned. Later connection losses reconnect by
// themselves, as Config says.
//
// ctx bounds the socket's whole life, not only the dial: cancelling it stops
// the socket as Close does. A nil cfg means the zero Config.
func Connect(ctx context.Context, endpoint string, cfg *Config) (*Socket, error) {
	c := cfg.withDefaults()
	ep, err := normaliseEndpoint(endpoint)
	if err != nil {
		return nil, &DialError{URL: endpoint, Err: err}
	}
	ser, err := wire.SerializerFor(c.Vsn)
	if err != nil {
		return nil, &DialError{URL: endpoint, Err: err}
	}
	s := &Socket{cfg: c, endpoint: ep, ser: ser, status: make(chan Status, c.StatusBuffer)}
	s.conn.Store(noConn)
	done := make(chan struct{})
	s.mb = actor.NewMailbox[sockMsg](64, done)
	ready := make(chan struct{})
	a := newSockActor(s, ready)
	s.proc = actor.Start(ctx, actor.Func(func(ctx context.Context) error {
		defer close(done)
		return a.run(ctx)
	}))
	select {
	case <-ready:
		return s, nil
	case <-s.proc.Done():
		if err := s.proc.Err(); err != nil {
			return nil, err
		}
		return nil, ErrClosed
	}
}

// Close closes the socket: every channel and subscription ends with
// ErrClosed, pending pushes resolve with ErrClosed, a close frame (1000) is
// sent, and Close returns once every goroutine of the socket has stopped,
// within about 2×Config.CloseTimeout even when the connection is blackholed.
// It is idempotent and safe to call concurrently; it returns nil, or the
// error that had already ended the socket.
func (s *Socket) Close() error {
	s.closed.Store(true)
	err := s.proc.StopWait(errUserClose)
	if errors.Is(err, errUserClose) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

var errUserClose = errors.New("phx: socket closed by Close")

// Done is closed when the socket has stopped for good.
func (s *Socket) Done() <-chan struct{} { return s.proc.Done() }

// Err is why the socket stopped: nil before it did and after Close; the
// context's error if the Connect context was cancelled; otherwise the error
// that ended it (a close with code 1000, a refused upgrade, a reconnect
// backoff that gave up).
func (s *Socket) Err() error {
	err := s.proc.Err()
	if errors.Is(err, errUserClose) {
		return nil
	}
	return err
}

// State is the socket's current state.
func (s *Socket) State() State { return State(s.state.Load()) }

// Status is the socket's stream of typed status events (Connected,
// Disconnected, Reconnecting, Closed, Joined, Rejoining, ChannelEnded,
// SlowConsumer). It is one shared, bounded stream: when nobody reads it the
// oldest events are dropped. It is closed after the final Closed event.
func (s *Socket) Status() <-chan Status { return s.status }

// Stats returns the socket's counters.
func (s *Socket) Stats() Stats {
	return Stats{
		Received:   s.nReceived.Load(),
		Stale:      s.nStale.Load(),
		Unrouted:   s.nUnrouted.Load(),
		Malformed:  s.nMalformed.Load(),
		Dropped:    s.nDropped.Load(),
		Overflowed: s.nOverflowed.Load(),
		Reconnects: s.nReconnects.Load(),
	}
}

// Endpoint is the normalised WebSocket URL, without query parameters.
func (s *Socket) Endpoint() string { return s.endpoint }

// Ping sends a heartbeat and returns the time until its reply.
func (s *Socket) Ping(ctx context.Context) (time.Duration, error) {
	p := &push{kind: kindPing, event: wire.EventHeartbeat, reply: make(chan pushResult, 1)}
	r, err := s.await(ctx, p)
	return r.rtt, err
}

// Channel returns a channel for topic. params are the join parameters: any
// JSON-marshalable value, json.RawMessage, or a func() any called before
// every (re)join. Nothing is sent until Join.
func (s *Socket) Channel(topic string, params any) *Channel {
	return &Channel{s: s, topic: topic, params: params}
}

// Subscribe returns a subscription to every message the socket receives, on
// every topic, before any routing or filtering (replies included, heartbeat
// replies excepted); JoinRef and Ref are as on the wire. events filters by
// event name when given.
func (s *Socket) Subscribe(events ...string) *Subscription {
	return s.SubscribeWith(nil, events...)
}

// SubscribeWith is Subscribe with options (WithBuffer, WithOverflow).
func (s *Socket) SubscribeWith(opts []Option, events ...string) *Subscription {
	sub := s.newSub("", opts, events)
	if s.mb.Tell(context.Background(), subscribeMsg{sub: sub}) != nil {
		// The actor has stopped: nobody else will ever touch sub.
		sub.finish(ErrClosed)
	}
	return sub
}

func (s *Socket) newSub(topic string, opts []Option, events []string) *Subscription {
	o := s.callOpts(opts)
	sub := &Subscription{
		c:        make(chan Message, o.buffer),
		quit:     make(chan struct{}),
		s:        s,
		overflow: o.overflow,
		topic:    topic,
	}
	if len(events) > 0 {
		sub.events = append([]string(nil), events...)
	}
	return sub
}

// emit puts st on the status stream; when it is full the oldest event goes.
// The socket and channel actors all emit, so room made may be taken by
// another: a few rounds, then the event is dropped.
func (s *Socket) emit(st Status) {
	for range 4 {
		select {
		case s.status <- st:
			return
		default:
		}
		select {
		case <-s.status:
		default:
		}
	}
}

// dropped counts a message a subscription's overflow policy dropped and
// reports the start of an overflow episode; called by the subscription's
// owner.
func (s *Socket) dropped(sub *Subscription) {
	n := sub.dropped.Add(1)
	s.nDropped.Add(1)
	if !sub.slow {
		sub.slow = true
		s.emit(SlowConsumer{Topic: sub.topic, Dropped: n, Err: ErrSlowConsumer})
	}
}

// await sends a ping to the actor and waits for its outcome.
func (s *Socket) await(ctx context.Context, p *push) (pushResult, error) {
	if err := ctx.Err(); err != nil {
		return pushResult{}, err
	}
	if err := s.mb.Tell(ctx, pushMsg{p: p}); err != nil {
		return pushResult{}, s.stoppedErr(err)
	}
	select {
	case r := <-p.reply:
		return r, r.err
	case <-ctx.Done():
		// The actor drops the push: a buffered push is then never sent.
		_ = s.mb.Tell(context.Background(), cancelMsg{p: p})
		return pushResult{}, ctx.Err()
	case <-s.proc.Done():
		select {
		case r := <-p.reply:
			return r, r.err
		default:
			return pushResult{}, s.stoppedErr(actor.ErrStopped)
		}
	}
}

// stoppedErr maps a mailbox error to the error a caller sees.
func (s *Socket) stoppedErr(err error) error {
	if !errors.Is(err, actor.ErrStopped) {
		return err
	}
	if e := s.Err(); e != nil && !errors.Is(e, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, e)
	}
	return ErrClosed
}

func normaliseEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	if !strings.HasSuffix(u.Path, "/websocket") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/websocket"
	}
	u.RawPath = ""
	return u.String(), nil
}

// authProtocol is the Sec-WebSocket-Protocol value carrying token, as
// phoenix.js sends it.
func authProtocol(token string) string {
	return "phoenix, base64url.bearer.phx." + base64.RawStdEncoding.EncodeToString([]byte(token))
}

// The socket actor's mailbox: a sealed sum of requests.
type sockMsg interface{ isSockMsg() }

type pushMsg struct{ p *push }   // a ping
type cancelMsg struct{ p *push } // the caller gave up on p
type subscribeMsg struct{ sub *Subscription }
type unsubscribeMsg struct {
	sub  *Subscription
	done chan struct{}
}

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
// carry no join_ref; those of its own session still reach it.
type releaseMsg struct{ ca *chanActor }

// goneMsg: a channel actor stopped.
type goneMsg struct{ ca *chanActor }

// debugMsg asks for the sizes of the actor's bookkeeping (tests).
type debugMsg struct{ reply chan debugInfo }

type debugInfo struct {
	pending, deadlines, chans, topics, buffered, closing int
	actors                                               []*chanActor
}

// testFuncMsg runs f on the actor (tests).
type testFuncMsg struct{ f func(*sockActor) }

func (testFuncMsg) isSockMsg()    {}
func (debugMsg) isSockMsg()       {}
func (pushMsg) isSockMsg()        {}
func (cancelMsg) isSockMsg()      {}
func (subscribeMsg) isSockMsg()   {}
func (unsubscribeMsg) isSockMsg() {}
func (startMsg) isSockMsg()       {}
func (retireMsg) isSockMsg()      {}
func (claimMsg) isSockMsg()       {}
func (releaseMsg) isSockMsg()     {}
func (goneMsg) isSockMsg()        {}

type joinResult struct {
	resp []byte
	err  error
}

type pushKind uint8

const (
	kindUser pushKind = iota
	kindJoin
	kindLeave
	kindHeartbeat
	kindPing
)

// push is one outbound request awaiting its outcome. The caller fills it in
// before handing it to an actor (the channel's, or the socket's for pings
// and heartbeats) and afterwards only receives from reply; every other
// field belongs to that actor.
type push struct {
	kind    pushKind
	event   string
	payload []byte
	binary  bool
	reply   chan pushResult // capacity 1; nil for internal pushes
	timeout time.Duration
	start   time.Time

	ref, joinRef string
	sent, done   bool
	dl           deadline
}

type pushResult struct {
	reply Reply
	rtt   time.Duration
	err   error
}

// Connection events from a connection's goroutines to the actor, in order.
type connEvKind uint8

const (
	evOpen connEvKind = iota
	evFrame
	evClosed // the connection ended or the dial failed
)

type connEvent struct {
	h    *connHandle
	kind connEvKind
	msg  wire.Message
	c    Conn // evOpen
	err  error
}

// connHandle is one connection attempt. The actor owns every field except
// done, which the connection goroutine closes when it and its writer have
// returned, and out and wdone, which the channel actors also use to write.
type connHandle struct {
	cancel context.CancelCauseFunc
	c      Conn
	out    chan outFrame
	done   chan struct{}
	wdone  chan struct{} // closed when the writer returned
	hard   deadline
	st     *connState // published when it opened; immutable afterwards
}

// connState is a connection state the socket publishes to its channels:
// the open connection (nil when none) and a generation that grows with
// every change, so that a channel can order it against the frames it
// holds. Immutable.
type connState struct {
	gen uint64
	h   *connHandle
}

type outFrame struct {
	op   wire.Opcode
	data []byte
}

// closeReq, as a connection context's cancel cause, tells the writer which
// close frame to send (none when code is 0).
type closeReq struct {
	code   int
	reason string
}

func (c *closeReq) Error() string { return "phx: closing connection" }

// route is where a topic's frames go: the channel that claimed it last,
// and channels that left it (or were superseded on it) but still wait for
// frames of their own join session.
type route struct {
	cur     *chanActor
	curRef  string
	olds    []oldRoute
	slow    bool // in an inbox overflow episode
	dropped uint64
}

type oldRoute struct {
	ca  *chanActor
	ref string
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
	outq  []outFrame  // frames of the socket waiting for room in the writer's queue

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
	taps    []*Subscription

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

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (a *sockActor) run(ctx context.Context) (err error) {
	a.ctx = ctx
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
		if a.batch != nil && a.stall == nil {
			if err := a.runBatch(); err != nil {
				return err
			}
			a.armDeadlines()
			continue
		}
		var out chan outFrame
		var next outFrame
		if len(a.outq) > 0 && a.open {
			out, next = a.conn.out, a.outq[0]
		}
		var evReady, space <-chan struct{}
		if a.stall != nil {
			space = a.stall.in.Space()
		} else {
			evReady = a.evq.Ready()
		}
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
			a.stall = nil
			if err := a.runBatch(); err != nil {
				return err
			}
		case out <- next:
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
		case <-a.dlTimer.C:
			a.dlAt = time.Time{}
			now := time.Now()
			for d := a.dls.popDue(now); d != nil; d = a.dls.popDue(now) {
				a.fire(d)
			}
		}
		a.armDeadlines()
	}
}

// runBatch handles the current batch of connection events from where it
// stopped; it stops early when a channel's inbox is full and the channel
// asked to be waited for (a Block subscription).
func (a *sockActor) runBatch() error {
	for a.bi < len(a.batch) {
		if err := a.handleEv(&a.batch[a.bi]); err != nil {
			return err
		}
		if a.stall != nil {
			return nil
		}
		a.bi++
	}
	a.evbuf, a.batch, a.bi = a.batch, nil, 0
	return nil
}

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

func (a *sockActor) emit(st Status) { a.s.emit(st) }

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

// ---- connections ----

func (a *sockActor) connectURL() (string, map[string][]string) {
	cfg := &a.s.cfg
	u, _ := url.Parse(a.s.endpoint) // normalised at Connect
	q := u.Query()
	for k, v := range cfg.Params {
		q[k] = append(q[k], v...)
	}
	if cfg.ParamsFunc != nil {
		for k, v := range cfg.ParamsFunc() {
			q[k] = append(q[k], v...)
		}
	}
	q.Set("vsn", a.s.ser.Vsn())
	u.RawQuery = q.Encode()
	h := cfg.Header.Clone()
	if h == nil {
		h = make(map[string][]string)
	}
	tok := cfg.AuthToken
	if cfg.AuthTokenFunc != nil {
		tok = cfg.AuthTokenFunc()
	}
	if tok != "" {
		h.Set("Sec-WebSocket-Protocol", authProtocol(tok))
	}
	return u.String(), h
}

func (a *sockActor) dial() {
	a.setState(StateConnecting)
	u, header := a.connectURL()
	// Not derived from the actor's context: the actor cancels every
	// connection itself, with the close frame it wants sent.
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(a.ctx))
	h := &connHandle{
		cancel: cancel,
		out:    make(chan outFrame, 64),
		done:   make(chan struct{}),
		wdone:  make(chan struct{}),
	}
	h.hard.h, h.hard.idx = h, -1
	a.conn = h
	a.g.Go(cctx, actor.Func(func(ctx context.Context) error {
		defer close(h.done)
		a.connLoop(ctx, h, u, header)
		return nil
	}))
}

// send hands an event to the actor; false when the connection is being
// torn down (or the socket stopped) and nobody will read it.
func (a *sockActor) sendEv(ctx context.Context, ev connEvent) bool {
	return a.evq.Put(ctx, ev) == nil
}

// connLoop dials, then reads until the connection ends. It runs in the
// connection's goroutine and owns the writer goroutine.
func (a *sockActor) connLoop(ctx context.Context, h *connHandle, u string, header map[string][]string) {
	c, err := a.s.cfg.Transport.Dial(ctx, u, header)
	if err != nil {
		close(h.wdone)
		a.sendEv(ctx, connEvent{h: h, kind: evClosed, err: err})
		return
	}
	var wg actor.Group
	defer wg.Wait()
	wg.Go(ctx, actor.Func(func(ctx context.Context) error {
		defer close(h.wdone)
		a.writeLoop(ctx, h, c)
		return nil
	}))
	if !a.sendEv(ctx, connEvent{h: h, kind: evOpen, c: c}) {
		_ = c.Close()
		return
	}
	ser := a.s.ser
	// The reader checks only a V2 frame's envelope and the socket actor
	// checks the payload: on two cores the check, the costliest step for
	// large payloads, then runs beside the next read instead of before it.
	deferCheck := ser == wire.V2
	for {
		op, b, err := c.ReadMessage()
		if err != nil {
			if ctx.Err() == nil { // not torn down by the actor: tell it
				h.cancel(&closeReq{})
				a.sendEv(a.ctx, connEvent{h: h, kind: evClosed, err: err})
			}
			return
		}
		var m wire.Message
		if deferCheck {
			m, err = wire.DecodeEnvelope(op, b)
		} else {
			m, err = ser.DecodeServer(op, b)
		}
		if err != nil {
			a.s.nMalformed.Add(1)
			// The close frame is chosen before the actor hears of it, so
			// that its own teardown cannot pick another.
			h.cancel(&closeReq{code: 1002, reason: "protocol error"})
			a.sendEv(a.ctx, connEvent{h: h, kind: evClosed, err: fmt.Errorf("%w: %w", ErrProtocol, err)})
			return
		}
		a.s.nReceived.Add(1)
		if !a.sendEv(ctx, connEvent{h: h, kind: evFrame, msg: m}) {
			return
		}
	}
}

// writeLoop is the only goroutine writing to c. When the connection's
// context ends it sends the requested close frame (bounded by CloseTimeout)
// and drops the connection, which also ends the reader.
func (a *sockActor) writeLoop(ctx context.Context, h *connHandle, c Conn) {
	cfg := &a.s.cfg
	for {
		select {
		case f := <-h.out:
			if err := c.WriteMessage(f.op, f.data, time.Now().Add(cfg.WriteTimeout)); err != nil {
				_ = c.Close()
				return
			}
		case <-ctx.Done():
			var cr *closeReq
			if errors.As(context.Cause(ctx), &cr) && cr.code != 0 {
				_ = c.WriteClose(cr.code, cr.reason, time.Now().Add(cfg.CloseTimeout))
			}
			_ = c.Close()
			return
		}
	}
}

// write queues a frame for the current connection. The socket actor never
// waits for the writer: the channel actors share its queue, and a socket
// blocked there while the server is itself blocked writing to this client
// would stop the reader too. A frame that finds the queue full waits in
// outq (heartbeats and pings only, so a handful) and the run loop hands it
// over when there is room.
func (a *sockActor) write(m *wire.Message) error {
	if !a.open {
		return ErrDisconnected
	}
	data, op, err := a.s.ser.EncodeClient(nil, m)
	if err != nil {
		return err
	}
	f := outFrame{op: op, data: data}
	if len(a.outq) == 0 {
		select {
		case a.conn.out <- f:
			return nil
		default:
		}
	}
	a.outq = append(a.outq, f)
	return nil
}

// teardown ends connection h: its writer sends the close frame req asks
// for, and if that hangs, the hard-close deadline drops the connection.
func (a *sockActor) teardown(h *connHandle, req *closeReq) {
	if h == nil {
		return
	}
	h.cancel(req)
	a.closing[h] = struct{}{}
	a.dls.schedule(&h.hard, time.Now().Add(a.s.cfg.CloseTimeout))
	if a.conn == h {
		a.conn, a.open = nil, false
		clear(a.outq)
		a.outq = a.outq[:0]
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
		a.handleFrame(ev.h, &ev.msg)
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
	a.bo.Reset()
	a.attempt = 0
	if a.opened {
		a.s.nReconnects.Add(1)
	} else {
		a.opened = true
		close(a.ready)
	}
	a.emit(Connected{URL: a.s.endpoint})
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
	a.stall = nil // the rest of the batch is of the connection that ended
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
	a.attempt++
	a.setState(StateWaiting)
	a.emit(Reconnecting{Attempt: a.attempt, Delay: delay})
	a.rcTimer.Reset(delay)
	a.rcArmed = true
	return nil
}

// ---- heartbeat ----

func (a *sockActor) resetHeartbeat() {
	a.stopHeartbeat()
	if a.s.cfg.HeartbeatInterval > 0 {
		a.hbTimer.Reset(a.s.cfg.HeartbeatInterval)
	}
}

func (a *sockActor) stopHeartbeat() {
	a.hbTimer.Stop()
	if a.hbPush != nil {
		a.unpend(a.hbPush)
		a.hbPush = nil
	}
}

func (a *sockActor) heartbeatTick() error {
	if !a.open {
		return nil
	}
	if a.hbPush != nil {
		// Unanswered for HeartbeatTimeout: the connection is presumed dead
		// (half-open, blackholed). Close it and reconnect.
		a.unpend(a.hbPush)
		a.hbPush = nil
		return a.onLost(ErrHeartbeatTimeout, &closeReq{code: 1000, reason: "heartbeat timeout"})
	}
	p := &push{kind: kindHeartbeat, event: wire.EventHeartbeat}
	p.dl.idx = -1
	if a.sendRaw(p) != nil {
		return nil
	}
	a.hbPush = p
	a.hbTimer.Reset(a.s.cfg.HeartbeatTimeout)
	return nil
}

// ---- inbound ----

// handleFrame routes one frame: heartbeat and ping replies to the socket
// itself, everything else by topic (a map lookup) to the channel actor
// that owns it, through that channel's inbox. It never waits for a channel
// (see chanInbox): a broadcast that finds the inbox full is dropped,
// counted (Stats.Overflowed) and reported as a SlowConsumer for the topic,
// unless the channel has a Block subscription, in which case the socket
// stops taking frames (and only frames) until the inbox has room. Replies,
// phx_error and phx_close are never dropped: they answer requests of the
// channel and bring it to a state where it sends no more.
func (a *sockActor) handleFrame(h *connHandle, m *wire.Message) {
	if m.Topic == wire.TopicPhoenix && m.Event == wire.EventReply {
		a.handleReply(m)
		return
	}
	rt := a.routes[m.Topic]
	var ca *chanActor
	if rt != nil {
		ca = rt.cur
		if jr, ok := m.JoinRef.Get(); ok && jr != rt.curRef {
			for _, o := range rt.olds {
				if o.ref == jr {
					ca = o.ca
					break
				}
			}
		}
	}
	if ca == nil {
		a.s.nUnrouted.Add(1)
	} else {
		it := inItem{h: h, m: *m}
		var err error
		switch m.Event {
		case wire.EventReply, wire.EventError, wire.EventClose:
			err = ca.in.Force(it)
		default:
			err = ca.in.TryPut(it)
		}
		switch {
		case err == nil:
			rt.slow = false
		case errors.Is(err, actor.ErrFull):
			if ca.blocking.Load() {
				a.stall = ca
				return
			}
			a.s.nOverflowed.Add(1)
			rt.dropped++
			if !rt.slow {
				rt.slow = true
				a.emit(SlowConsumer{Topic: m.Topic, Dropped: rt.dropped, Err: ErrSlowConsumer})
			}
		default:
			a.s.nUnrouted.Add(1) // the channel has just stopped
		}
	}
	a.tap(m)
}

// tap delivers m to the socket-wide subscriptions.
func (a *sockActor) tap(m *wire.Message) {
	if len(a.taps) == 0 {
		return
	}
	jr, _ := m.JoinRef.Get()
	ref, _ := m.Ref.Get()
	msg := Message{Topic: m.Topic, Event: m.Event, Payload: m.Payload, Binary: m.Binary, JoinRef: jr, Ref: ref}
	a.taps = deliver(a.s, a.taps, msg, a.ctx.Done())
}

// handleReply handles a reply on the phoenix topic: a heartbeat's, which
// stays inside the socket, or a ping's, which the socket-wide
// subscriptions see too.
func (a *sockActor) handleReply(m *wire.Message) {
	ref, ok := m.Ref.Get()
	p := a.pending[ref]
	if ok && p != nil && p == a.hbPush {
		a.hbPush = nil
		a.unpend(p)
		a.hbTimer.Reset(a.s.cfg.HeartbeatInterval)
		return
	}
	defer a.tap(m)
	if !ok || p == nil {
		a.s.nUnrouted.Add(1)
		return
	}
	a.resolve(p, pushResult{rtt: time.Since(p.start)})
}

func removeSub(list []*Subscription, sub *Subscription) []*Subscription {
	for i, x := range list {
		if x == sub {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			return list[:len(list)-1]
		}
	}
	return list
}

// ---- requests ----

func (a *sockActor) handleMsg(m sockMsg) {
	switch m := m.(type) {
	case pushMsg:
		p := m.p
		p.dl.idx, p.dl.p = -1, p
		p.start = time.Now()
		if err := a.sendRaw(p); err != nil {
			a.resolve(p, pushResult{err: err})
		}
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
		if rt := a.routes[m.ca.ch.topic]; rt != nil && rt.cur == m.ca {
			rt.olds = append(rt.olds, oldRoute{ca: rt.cur, ref: rt.curRef})
			rt.cur, rt.curRef = nil, ""
		}
	case subscribeMsg:
		a.taps = append(a.taps, m.sub)
	case unsubscribeMsg:
		a.taps = removeSub(a.taps, m.sub)
		m.sub.finish(nil)
		m.done <- struct{}{}
	case testFuncMsg:
		m.f(a)
	case debugMsg:
		d := debugInfo{pending: len(a.pending), deadlines: len(a.dls), chans: len(a.chans), topics: len(a.routes), closing: len(a.closing)}
		for ca := range a.chans {
			d.actors = append(d.actors, ca)
		}
		m.reply <- d
	}
}

func (a *sockActor) claim(m claimMsg) claimResult {
	topic := m.ca.ch.topic
	rt := a.routes[topic]
	if rt == nil {
		rt = &route{}
		a.routes[topic] = rt
	}
	for _, o := range rt.olds {
		if o.ca == m.ca {
			return claimResult{}
		}
	}
	prev := rt.cur
	if prev == m.ca {
		prev = nil
	} else if prev != nil {
		rt.olds = append(rt.olds, oldRoute{ca: prev, ref: rt.curRef})
	}
	rt.cur, rt.curRef = m.ca, m.joinRef
	return claimResult{prev: prev, ok: true}
}

// forget drops a channel actor that stopped or retired, and its routes.
func (a *sockActor) forget(ca *chanActor) {
	delete(a.chans, ca)
	if a.stall == ca {
		a.stall = nil
	}
	topic := ca.ch.topic
	rt := a.routes[topic]
	if rt == nil {
		return
	}
	if rt.cur == ca {
		rt.cur, rt.curRef = nil, ""
	}
	rt.olds = slices.DeleteFunc(rt.olds, func(o oldRoute) bool { return o.ca == ca })
	if rt.cur == nil && len(rt.olds) == 0 {
		delete(a.routes, topic)
	}
}

// sendRaw assigns p a ref on the phoenix topic and writes it; p then waits
// in pending.
func (a *sockActor) sendRaw(p *push) error {
	p.ref = a.nextRef()
	m := wire.Message{Ref: wire.NewRef(p.ref), Topic: wire.TopicPhoenix, Event: p.event, Payload: emptyObject}
	if err := a.write(&m); err != nil {
		return err
	}
	p.sent = true
	a.pending[p.ref] = p
	return nil
}

// unpend forgets a sent push's ref.
func (a *sockActor) unpend(p *push) {
	if p.sent && a.pending[p.ref] == p {
		delete(a.pending, p.ref)
	}
}

// resolve gives a ping its one outcome and forgets it.
func (a *sockActor) resolve(p *push, r pushResult) {
	if p.done {
		return
	}
	p.done = true
	a.dls.cancel(&p.dl)
	a.unpend(p)
	if p.reply != nil {
		p.reply <- r // capacity 1, sent once
	}
}

// ---- shutdown ----

func (a *sockActor) shutdown(cause, runErr error) error {
	reason := runErr
	if reason == nil {
		reason = cause
	}
	a.setState(StateClosed)
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
	for _, sub := range a.taps {
		sub.finish(chErr)
	}
	a.taps = nil
	a.rcTimer.Stop()
	a.hbTimer.Stop()
	a.dlTimer.Stop()

	// Close every connection: a close frame from its writer, and a hard
	// close for those whose writer does not finish within CloseTimeout.
	if a.conn != nil {
		code := 1000
		if !a.open {
			code = 0
		}
		h := a.conn
		a.teardown(h, &closeReq{code: code})
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
	a.emit(Closed{Err: st})
	close(a.s.status)
	return reason
}
