package phx

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
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
// A Socket is one actor: a goroutine that owns every piece of state of the
// socket and of its channels, plus, per connection, one reader and one writer
// goroutine. Nothing is shared behind the actor's back; the methods below
// send it messages.
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

	nReceived, nStale, nUnrouted, nMalformed, nDropped, nReconnects atomic.Uint64
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
	cs := &chanState{topic: topic, params: params, s: s}
	cs.rejoinDL.cs = cs
	cs.rejoinDL.idx = -1
	return &Channel{s: s, cs: cs}
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
	return s.subscribe(nil, "", opts, events)
}

func (s *Socket) subscribe(cs *chanState, topic string, opts []Option, events []string) *Subscription {
	o := s.callOpts(opts)
	sub := &Subscription{
		c:        make(chan Message, o.buffer),
		quit:     make(chan struct{}),
		s:        s,
		cs:       cs,
		overflow: o.overflow,
		topic:    topic,
	}
	if len(events) > 0 {
		sub.events = append([]string(nil), events...)
	}
	if s.mb.Tell(context.Background(), subscribeMsg{sub: sub}) != nil {
		// The actor has stopped: nobody else will ever touch sub.
		sub.finish(ErrClosed)
	}
	return sub
}

// await sends p to the actor and waits for its outcome.
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

type pushMsg struct{ p *push }   // a push, ping
type cancelMsg struct{ p *push } // the caller gave up on p
type joinMsg struct {            // Channel.Join
	cs      *chanState
	timeout time.Duration
	reply   chan joinResult
}
type joinCancelMsg struct{ cs *chanState } // Join's ctx ended first
type leaveMsg struct {
	cs      *chanState
	timeout time.Duration
	reply   chan error
}
type subscribeMsg struct{ sub *Subscription }
type unsubscribeMsg struct {
	sub  *Subscription
	done chan struct{}
}

// debugMsg asks for the sizes of the actor's bookkeeping (tests).
type debugMsg struct{ reply chan debugInfo }

type debugInfo struct {
	pending, deadlines, chans, topics, buffered, closing int
}

func (debugMsg) isSockMsg() {}

// testFuncMsg runs f on the actor (tests).
type testFuncMsg struct{ f func(*sockActor) }

func (testFuncMsg) isSockMsg()    {}
func (pushMsg) isSockMsg()        {}
func (cancelMsg) isSockMsg()      {}
func (joinMsg) isSockMsg()        {}
func (joinCancelMsg) isSockMsg()  {}
func (leaveMsg) isSockMsg()       {}
func (subscribeMsg) isSockMsg()   {}
func (unsubscribeMsg) isSockMsg() {}

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
// before handing it to the actor and afterwards only receives from reply;
// every other field belongs to the actor.
type push struct {
	kind    pushKind
	cs      *chanState
	event   string
	payload []byte
	binary  bool
	reply   chan pushResult // capacity 1; nil for internal pushes
	timeout time.Duration
	start   time.Time

	ref, joinRef string
	sent, done   bool
	dl           deadline
	prev, next   *push // the channel's in-flight list
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
// returned.
type connHandle struct {
	cancel context.CancelCauseFunc
	c      Conn
	out    chan outFrame
	done   chan struct{}
	wdone  chan struct{} // closed when the writer returned
	hard   deadline
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

// sockActor is the state of the socket actor; only its goroutine touches it.
type sockActor struct {
	s     *Socket
	ctx   context.Context
	g     actor.Group
	ready chan struct{}
	evq   *actor.Queue[connEvent] // from the connections' goroutines, in order
	evbuf []connEvent

	conn    *connHandle // current attempt or open connection
	open    bool        // conn is open
	opened  bool        // a connection opened once
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

	ref     uint64
	pending map[string]*push      // sent pushes by ref
	topics  map[string]*chanState // the channel that owns each topic
	chans   map[*chanState]struct{}
	taps    []*Subscription

	stopping bool // shutting down: no per-channel status events
}

func newSockActor(s *Socket, ready chan struct{}) *sockActor {
	return &sockActor{
		s:       s,
		ready:   ready,
		evq:     actor.NewQueue[connEvent](256),
		closing: make(map[*connHandle]struct{}),
		pending: make(map[string]*push),
		topics:  make(map[string]*chanState),
		chans:   make(map[*chanState]struct{}),
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (a *sockActor) run(ctx context.Context) (err error) {
	a.ctx = ctx
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
		// Control before data: requests from callers go before frames.
		select {
		case m := <-a.s.mb.C():
			a.handleMsg(m)
			a.armDeadlines()
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case m := <-a.s.mb.C():
			a.handleMsg(m)
		case <-a.evq.Ready():
			// Everything the reader queued meanwhile, in one batch and in
			// order: one hand-off per batch rather than per frame.
			evs := a.evq.Drain(a.evbuf)
			for i := range evs {
				if err := a.handleEv(&evs[i]); err != nil {
					return err
				}
			}
			a.evbuf = evs
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
		a.pushTimeout(d.p)
	case d.cs != nil:
		if a.open && d.cs.state == ChannelErrored {
			a.rejoin(d.cs)
		}
	case d.h != nil:
		delete(a.closing, d.h)
		if d.h.c != nil {
			_ = d.h.c.Close()
		}
	}
}

func (a *sockActor) emit(st Status) {
	for range 2 {
		select {
		case a.s.status <- st:
			return
		default:
		}
		// Full: the oldest event goes; the actor is the only sender, so
		// there is room afterwards.
		select {
		case <-a.s.status:
		default:
		}
	}
}

func (a *sockActor) setState(st State) { a.s.state.Store(int32(st)) }

func (a *sockActor) nextRef() string {
	for {
		a.ref++
		if a.ref == 0 {
			a.ref = 1
		}
		r := strconv.FormatUint(a.ref, 10)
		if _, busy := a.pending[r]; !busy {
			return r
		}
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
	for {
		op, b, err := c.ReadMessage()
		if err != nil {
			if ctx.Err() == nil { // not torn down by the actor: tell it
				h.cancel(&closeReq{})
				a.sendEv(a.ctx, connEvent{h: h, kind: evClosed, err: err})
			}
			return
		}
		m, err := ser.DecodeServer(op, b)
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

// write queues a frame for the current connection. It waits when the
// writer is behind (bounded by WriteTimeout, after which the writer drops
// the connection) and gives up when the socket stops.
func (a *sockActor) write(m *wire.Message) error {
	if !a.open {
		return ErrDisconnected
	}
	data, op, err := a.s.ser.EncodeClient(nil, m)
	if err != nil {
		return err
	}
	h := a.conn
	select {
	case h.out <- outFrame{op: op, data: data}:
		return nil
	default:
	}
	select {
	case h.out <- outFrame{op: op, data: data}:
		return nil
	case <-h.wdone:
		return ErrDisconnected
	case <-a.ctx.Done():
		return ErrClosed
	}
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
	}
}

func (a *sockActor) handleEv(ev *connEvent) error {
	if ev.h != a.conn {
		return nil // an old connection's late event
	}
	switch ev.kind {
	case evFrame:
		a.handleFrame(&ev.msg)
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
	// phoenix.js: on open every errored channel rejoins at once, and the
	// rejoin timers start over. Joins that were waiting for a connection
	// are (re)sent too.
	for cs := range a.chans {
		cs.rejoinBoReset()
		a.dls.cancel(&cs.rejoinDL)
		if cs.state == ChannelErrored || (cs.state == ChannelJoining && cs.joinPush != nil && !cs.joinPush.sent) {
			a.rejoin(cs)
		}
	}
}

// onLost handles the end of the current connection (or of a failed dial):
// it errors the channels, fails the pushes that can no longer be answered,
// and reconnects or ends the socket by the close-code policy.
func (a *sockActor) onLost(err error, req *closeReq) error {
	a.teardown(a.conn, req)
	a.stopHeartbeat()
	a.failInflight()
	for cs := range a.chans {
		a.chanErrored(cs, err, false)
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

// failInflight resolves every sent push that waits for a reply that can no
// longer arrive because the connection is gone.
func (a *sockActor) failInflight() {
	for _, p := range a.pending {
		switch p.kind {
		case kindUser, kindPing:
			a.resolve(p, pushResult{err: ErrDisconnected})
		case kindLeave:
			// Left locally: the server drops the channel with the connection.
			a.closeChannel(p.cs, ErrLeft)
		case kindHeartbeat:
			a.unpend(p)
		}
		// Joins are handled by chanErrored.
	}
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
	if a.sendRaw(p, wire.TopicPhoenix, "") != nil {
		return nil
	}
	a.hbPush = p
	a.hbTimer.Reset(a.s.cfg.HeartbeatTimeout)
	return nil
}

// ---- inbound ----

func (a *sockActor) handleFrame(m *wire.Message) {
	if len(a.taps) > 0 && !(a.hbPush != nil && m.Topic == wire.TopicPhoenix && m.Ref.String() == a.hbPush.ref) {
		jr, _ := m.JoinRef.Get()
		ref, _ := m.Ref.Get()
		msg := Message{Topic: m.Topic, Event: m.Event, Payload: m.Payload, Binary: m.Binary, JoinRef: jr, Ref: ref}
		a.deliver(&a.taps, msg)
	}
	if m.Event == wire.EventReply {
		a.handleReply(m)
		return
	}
	cs := a.topics[m.Topic]
	if cs == nil {
		a.s.nUnrouted.Add(1)
		return
	}
	if jr, ok := m.JoinRef.Get(); ok && jr != cs.joinRef {
		a.s.nStale.Add(1) // a frame of an earlier join session
		return
	}
	switch m.Event {
	case wire.EventError:
		if cs.state == ChannelJoined || cs.state == ChannelJoining {
			a.chanErrored(cs, &ServerError{Topic: cs.topic, Event: m.Event, Payload: append([]byte(nil), m.Payload...)}, true)
		}
	case wire.EventClose:
		if cs.state == ChannelLeaving {
			a.closeChannel(cs, ErrLeft)
		} else {
			a.closeChannel(cs, fmt.Errorf("%w: channel %s closed by the server", ErrClosed, cs.topic))
		}
	default:
		if cs.state == ChannelErrored {
			// The session ended (phx_error, lost connection); whatever still
			// arrives for it belongs to no session we can stamp.
			a.s.nStale.Add(1)
			return
		}
		if len(cs.subs) > 0 {
			msg := Message{Topic: cs.topic, Event: m.Event, Payload: m.Payload, Binary: m.Binary, JoinRef: cs.joinRef}
			a.deliver(&cs.subs, msg)
		}
	}
}

func (a *sockActor) handleReply(m *wire.Message) {
	ref, ok := m.Ref.Get()
	p := a.pending[ref]
	if !ok || p == nil {
		a.s.nUnrouted.Add(1)
		return
	}
	if p.kind == kindHeartbeat || p.kind == kindPing {
		if m.Topic != wire.TopicPhoenix {
			a.s.nUnrouted.Add(1)
			return
		}
		if p == a.hbPush {
			a.hbPush = nil
			a.unpend(p)
			a.hbTimer.Reset(a.s.cfg.HeartbeatInterval)
			return
		}
		a.resolve(p, pushResult{rtt: time.Since(p.start)})
		return
	}
	if m.Topic != p.cs.topic {
		a.s.nUnrouted.Add(1)
		return
	}
	if jr, ok := m.JoinRef.Get(); ok && jr != p.joinRef {
		a.s.nStale.Add(1)
		return
	}
	r, err := wire.ParseReply(m)
	if err != nil {
		a.s.nMalformed.Add(1)
		if p.kind == kindUser {
			a.resolve(p, pushResult{err: fmt.Errorf("%w: %w", ErrProtocol, err)})
		}
		return
	}
	rep := Reply{Status: r.Status, Response: r.Response, Binary: r.Binary}
	switch p.kind {
	case kindUser:
		res := pushResult{reply: rep}
		if r.Status != "ok" {
			res.err = &ReplyError{Status: r.Status, Response: r.Response}
		}
		a.resolve(p, res)
	case kindJoin:
		a.joinReply(p, rep)
	case kindLeave:
		a.closeChannel(p.cs, ErrLeft)
	}
}

// deliver hands msg to every subscription in *subs that wants it. It never
// blocks unless a subscription asked for the Block policy.
func (a *sockActor) deliver(subs *[]*Subscription, msg Message) {
	list := *subs
	for i := 0; i < len(list); i++ {
		sub := list[i]
		if !sub.wants(msg.Event) {
			continue
		}
		select {
		case sub.c <- msg:
			sub.slow = false
			continue
		default:
		}
		switch sub.overflow {
		case DropNewest:
			a.dropped(sub)
		case DropOldest:
			select {
			case <-sub.c:
			default:
			}
			select {
			case sub.c <- msg:
			default:
			}
			a.dropped(sub)
		case CloseWithError:
			a.dropped(sub)
			sub.finish(ErrSlowConsumer)
			list = removeSub(list, sub)
			*subs = list
			i--
		case Block:
			select {
			case sub.c <- msg:
			case <-sub.quit:
			case <-a.ctx.Done():
			}
		}
	}
}

func (a *sockActor) dropped(sub *Subscription) {
	n := sub.dropped.Add(1)
	a.s.nDropped.Add(1)
	if !sub.slow {
		sub.slow = true
		a.emit(SlowConsumer{Topic: sub.topic, Dropped: n, Err: ErrSlowConsumer})
	}
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
		a.handlePush(m.p)
	case cancelMsg:
		if !m.p.done {
			if m.p.kind == kindUser || m.p.kind == kindPing {
				a.resolve(m.p, pushResult{err: context.Canceled})
			}
		}
	case joinMsg:
		a.handleJoin(m)
	case joinCancelMsg:
		cs := m.cs
		if cs.joinWaiter != nil {
			cs.joinWaiter = nil
			a.leave(cs, a.s.cfg.Timeout, nil)
		}
	case leaveMsg:
		a.register(m.cs)
		if !m.cs.joinedOnce {
			m.cs.joinedOnce = true // a left channel cannot join any more
			a.closeChannel(m.cs, ErrLeft)
			m.reply <- nil
			return
		}
		a.leave(m.cs, m.timeout, m.reply)
	case subscribeMsg:
		sub := m.sub
		if sub.cs == nil {
			a.taps = append(a.taps, sub)
			return
		}
		a.register(sub.cs)
		if sub.cs.final != nil {
			sub.finish(sub.cs.final)
			return
		}
		sub.cs.subs = append(sub.cs.subs, sub)
	case testFuncMsg:
		m.f(a)
	case debugMsg:
		d := debugInfo{pending: len(a.pending), deadlines: len(a.dls), chans: len(a.chans), topics: len(a.topics), closing: len(a.closing)}
		for cs := range a.chans {
			d.buffered += len(cs.buf)
		}
		m.reply <- d
	case unsubscribeMsg:
		sub := m.sub
		if cs := sub.cs; cs == nil {
			a.taps = removeSub(a.taps, sub)
		} else {
			cs.subs = removeSub(cs.subs, sub)
			if !cs.joinedOnce && len(cs.subs) == 0 {
				// Registered only for its subscriptions: forget it again.
				delete(a.chans, cs)
				cs.registered = false
			}
		}
		sub.finish(nil)
		m.done <- struct{}{}
	}
}

func (a *sockActor) handlePush(p *push) {
	p.dl.idx = -1
	p.dl.p = p
	if p.kind == kindPing {
		p.start = time.Now()
		if err := a.sendRaw(p, wire.TopicPhoenix, ""); err != nil {
			a.resolve(p, pushResult{err: err})
		}
		return
	}
	cs := p.cs
	a.register(cs)
	switch {
	case !cs.joinedOnce:
		a.resolve(p, pushResult{err: ErrNotJoined})
		return
	case cs.final != nil:
		a.resolve(p, pushResult{err: cs.final})
		return
	case cs.state == ChannelLeaving:
		a.resolve(p, pushResult{err: ErrLeft})
		return
	}
	a.dls.schedule(&p.dl, p.start.Add(p.timeout))
	if a.open && cs.state == ChannelJoined {
		a.sendPush(p)
		return
	}
	if len(cs.buf) >= a.s.cfg.PushBuffer {
		a.resolve(p, pushResult{err: ErrPushBufferFull})
		return
	}
	cs.buf = append(cs.buf, p)
}

// sendPush sends a channel push in the channel's current join session.
func (a *sockActor) sendPush(p *push) {
	cs := p.cs
	if err := a.sendRaw(p, cs.topic, cs.joinRef); err != nil {
		if p.kind == kindUser {
			a.resolve(p, pushResult{err: err})
		}
		return
	}
	cs.link(p)
}

// sendRaw assigns p a ref and writes it; p then waits in pending.
func (a *sockActor) sendRaw(p *push, topic, joinRef string) error {
	p.ref = a.nextRef()
	p.joinRef = joinRef
	m := wire.Message{Ref: wire.NewRef(p.ref), Topic: topic, Event: p.event, Payload: p.payload, Binary: p.binary}
	if joinRef != "" {
		m.JoinRef = wire.NewRef(joinRef)
	}
	if m.Payload == nil {
		m.Payload = emptyObject
	}
	if err := a.write(&m); err != nil {
		return err
	}
	p.sent = true
	a.pending[p.ref] = p
	return nil
}

var emptyObject = []byte("{}")

// unpend forgets a sent push's ref.
func (a *sockActor) unpend(p *push) {
	if p.sent && a.pending[p.ref] == p {
		delete(a.pending, p.ref)
	}
}

// resolve gives p its one outcome and forgets it everywhere.
func (a *sockActor) resolve(p *push, r pushResult) {
	if p.done {
		return
	}
	p.done = true
	a.dls.cancel(&p.dl)
	a.unpend(p)
	if cs := p.cs; cs != nil {
		if p.sent {
			cs.unlink(p)
		} else {
			cs.unbuffer(p)
		}
	}
	if p.reply != nil {
		p.reply <- r // capacity 1, sent once
	}
}

func (a *sockActor) pushTimeout(p *push) {
	switch p.kind {
	case kindUser, kindPing:
		a.resolve(p, pushResult{err: ErrTimeout})
	case kindJoin:
		a.joinTimeout(p)
	case kindLeave:
		a.closeChannel(p.cs, ErrLeft)
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
	a.stopping = true
	for cs := range a.chans {
		a.closeChannel(cs, chErr)
	}
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
	a.g.Wait()
	var st error
	if !errors.Is(reason, errUserClose) {
		st = reason
	}
	a.emit(Closed{Err: st})
	close(a.s.status)
	return reason
}
