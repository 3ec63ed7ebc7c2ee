package managed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/presence"
)

// The client's actor: one goroutine (loop.run) owns every map and queue
// below. Blocking calls into phx (dial, join, push, leave, close) run on a
// bounded set of workers; each joined channel and each socket adds one
// goroutine that forwards what phx delivers. All of them report back through
// the one inbox, and all belong to the loop's Group.

type msg interface{ isMsg() }

// fnMsg runs fn on the actor: every request of the public API is one.
type fnMsg struct{ fn func(*loop) }

type jobDone struct{ m msg }

type dialDone struct {
	sock   *sockRec
	s      *phx.Socket
	cancel context.CancelFunc
	err    error
}

type joinDone struct {
	sock *sockRec
	t    *topic
	gen  int
	resp json.RawMessage
	err  error
}

type pushDone struct {
	p     *pushRec
	try   int
	reply phx.Reply
	err   error
}

type leaveDone struct {
	t   *topic
	gen int
}

type closeDone struct{ sock *sockRec }

type inbound struct {
	Event   string
	Payload json.RawMessage
	JoinRef string
}

type chanMsg struct {
	t   *topic
	gen int
	m   inbound
}

type subEnded struct {
	t   *topic
	gen int
	err error
}

type sockMsg struct {
	sock *sockRec
	ev   sockEvent
}

func (fnMsg) isMsg()     {}
func (jobDone) isMsg()   {}
func (dialDone) isMsg()  {}
func (joinDone) isMsg()  {}
func (pushDone) isMsg()  {}
func (leaveDone) isMsg() {}
func (closeDone) isMsg() {}
func (chanMsg) isMsg()   {}
func (subEnded) isMsg()  {}
func (sockMsg) isMsg()   {}

// A job is one blocking call run by a worker; its result goes back to the
// actor as a message.
type job interface{ run(ctx context.Context) msg }

type dialJob struct {
	sock     *sockRec
	endpoint string
	cfg      phx.Config
}

func (j dialJob) run(ctx context.Context) msg {
	s, cancel, err := dial(ctx, j.endpoint, j.cfg)
	return dialDone{sock: j.sock, s: s, cancel: cancel, err: err}
}

type joinJob struct {
	sock    *sockRec
	t       *topic
	gen     int
	ch      *phx.Channel
	timeout time.Duration
}

func (j joinJob) run(ctx context.Context) msg {
	resp, err := joinChannel(ctx, j.ch, j.timeout)
	return joinDone{sock: j.sock, t: j.t, gen: j.gen, resp: resp, err: err}
}

type pushJob struct {
	p       *pushRec
	try     int
	ctx     context.Context
	ch      *phx.Channel
	timeout time.Duration
}

func (j pushJob) run(context.Context) msg {
	reply, err := pushChannel(j.ctx, j.ch, j.p.cfg.Event, j.p.cfg.Payload, j.timeout)
	return pushDone{p: j.p, try: j.try, reply: reply, err: err}
}

type leaveJob struct {
	t       *topic
	gen     int
	ch      *phx.Channel
	timeout time.Duration
}

func (j leaveJob) run(ctx context.Context) msg {
	_ = leaveChannel(ctx, j.ch, j.timeout)
	return leaveDone{t: j.t, gen: j.gen}
}

type closeJob struct{ sock *sockRec }

func (j closeJob) run(context.Context) msg {
	closeSocketWith(j.sock.s, j.sock.cancel, j.sock.code)
	return closeDone(j)
}

// abandon releases what a result holds when the actor is gone.
func abandon(m msg) {
	if d, ok := m.(dialDone); ok && d.s != nil {
		closeSocket(d.s, d.cancel)
	}
}

type sstate int

const (
	sDialing sstate = iota
	sOpen
	sClosing
)

// sockRec is one socket of the pool.
type sockRec struct {
	id        int
	state     sstate
	s         *phx.Socket
	cancel    context.CancelFunc
	connected bool
	topics    int  // channels placed on it, joining or joined
	full      bool // the server refused a join for its channel limit
	retry     backoff.BackOff
	redialAt  time.Time
	code      int // close code given to Disconnect
	// Joins wait in a queue per socket, and only a few per socket run at
	// once: a Phoenix socket handles one join at a time, so workers spread
	// over sockets instead of queueing on one.
	joinQ   []job
	joining int
}

// joinsPerSocket bounds the joins in flight on one socket.
const joinsPerSocket = 4

type tstate int

const (
	tsQueued    tstate = iota // waiting for a socket
	tsJoining                 // phx_join sent, no reply yet
	tsJoined                  // joined: pushes go out
	tsRejoining               // errored or reconnecting; phx rejoins it
	tsLeaving                 // phx_leave sent
)

// topic is one topic the client wants joined.
type topic struct {
	name           string
	state          tstate
	gen            int // bumped whenever the phx.Channel is abandoned
	sock           *sockRec
	ch             *phx.Channel
	queue          []*pushRec
	inflight       *pushRec
	joinResp       json.RawMessage
	joinWaiters    []chan joinResult
	leaveWaiters   []chan error
	leaveAfterJoin bool
	rejoin         bool // joined again while leaving: a new channel follows the leave
}

type joinResult struct {
	resp json.RawMessage
	err  error
}

// topicCfg is a topic's join and leave config; it outlives the topic's
// channels so that a rejoin, a Disconnect and a later Connect keep it.
type topicCfg struct {
	join         JoinConfig
	events       map[string]bool
	leaveTimeout time.Duration
	// pos is the catch-up position, written by the actor and read by the
	// join params func, which phx calls from the channel's goroutine.
	pos atomic.Pointer[json.RawMessage]
}

type loop struct {
	c     *Client
	cfg   *Config
	ctx   context.Context
	inbox actor.Mailbox[msg]
	g     actor.Group

	jobs        chan job
	pending     []job
	outstanding int
	workers     int
	joinRR      int // where nextJoin starts

	sockets  []*sockRec
	closing  map[*sockRec]struct{} // taken out of the pool, Close not yet returned
	sockSeq  int
	online   bool // wanted connected: set by Connect, Join, Push; cleared by Disconnect
	waiters  []chan error
	lastDown error

	topics   map[string]*topic
	cfgs     map[string]*topicCfg
	pres     map[string]*presTopic
	timedOut map[*pushRec]struct{}
	live     int // pushes queued, in flight or timed out
	seq      uint64

	timer   *time.Timer
	timerAt time.Time
	dirty   bool

	dropped, reported uint64
	streamDone        bool
}

func newLoop(c *Client, ctx context.Context) *loop {
	return &loop{
		c: c, cfg: &c.cfg, ctx: ctx, inbox: c.inbox,
		jobs:     make(chan job, c.cfg.Workers),
		topics:   map[string]*topic{},
		cfgs:     map[string]*topicCfg{},
		pres:     map[string]*presTopic{},
		timedOut: map[*pushRec]struct{}{},
		closing:  map[*sockRec]struct{}{},
	}
}

func (l *loop) send(ctx context.Context, m msg) error { return l.inbox.Tell(ctx, m) }

func (l *loop) run() {
	defer func() {
		if !l.streamDone {
			close(l.c.events)
		}
	}()
	defer l.g.Wait()
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	defer l.timer.Stop()
	for {
		select {
		case <-l.ctx.Done():
			l.shutdown()
			return
		case m := <-l.inbox.C():
			l.handle(m)
		case <-l.timer.C:
			l.timerAt = time.Time{}
			l.fire()
		}
		l.pump()
		if l.dirty {
			l.arm()
		}
	}
}

func (l *loop) worker(ctx context.Context) error {
	for {
		select {
		case j := <-l.jobs:
			m := j.run(ctx)
			if l.send(ctx, jobDone{m}) != nil {
				abandon(m)
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (l *loop) enqueue(j job) { l.pending = append(l.pending, j) }

// pump hands pending jobs to workers, starting workers as they are needed up
// to Config.Workers. l.jobs has room for every outstanding job, so the
// actor never waits on it.
func (l *loop) pump() {
	for l.outstanding < l.cfg.Workers {
		var j job
		if len(l.pending) > 0 {
			j = l.pending[0]
			l.pending[0] = nil
			l.pending = l.pending[1:]
		} else if j = l.nextJoin(); j == nil {
			break
		}
		if l.workers <= l.outstanding {
			l.workers++
			l.g.Spawn(l.ctx, actor.Func(l.worker))
		}
		l.outstanding++
		l.jobs <- j
	}
	if len(l.pending) == 0 {
		l.pending = nil
	}
}

// nextJoin takes the next join, going round the sockets.
func (l *loop) nextJoin() job {
	n := len(l.sockets)
	for k := range n {
		s := l.sockets[(l.joinRR+k)%n]
		if len(s.joinQ) > 0 && s.joining < joinsPerSocket {
			j := s.joinQ[0]
			s.joinQ[0] = nil
			s.joinQ = s.joinQ[1:]
			s.joining++
			l.joinRR = (l.joinRR + k + 1) % n
			return j
		}
	}
	return nil
}

func (l *loop) handle(m msg) {
	switch m := m.(type) {
	case fnMsg:
		m.fn(l)
	case jobDone:
		l.outstanding--
		l.handle(m.m)
	case dialDone:
		l.dialed(m)
	case joinDone:
		m.sock.joining--
		l.joined(m)
	case pushDone:
		l.pushed(m)
	case leaveDone:
		l.left(m)
	case closeDone:
		delete(l.closing, m.sock)
	case chanMsg:
		l.received(m)
	case subEnded:
		l.subEnded(m)
	case sockMsg:
		l.status(m)
	}
}

// ---- the stream

func (l *loop) emit(ev Event) {
	if l.streamDone {
		return
	}
	if l.dropped > l.reported {
		// Reported once there is room again, without dropping for it.
		select {
		case l.c.events <- Overflowed{Dropped: l.dropped}:
			l.reported = l.dropped
		default:
		}
	}
	if !l.offer(ev) {
		l.dropped++
	}
}

// offer puts ev on the stream under the overflow policy and reports whether
// it went in.
func (l *loop) offer(ev Event) bool {
	ch := l.c.events
	switch l.cfg.Overflow {
	case phx.Block:
		select {
		case ch <- ev:
			return true
		case <-l.ctx.Done():
			return false
		}
	case phx.DropOldest:
		for {
			select {
			case ch <- ev:
				return true
			default:
			}
			select {
			case <-ch: // the actor is the only sender: this makes room
				l.dropped++
			default:
			}
		}
	case phx.CloseWithError:
		select {
		case ch <- ev:
			return true
		default:
			l.c.streamErr = phx.ErrSlowConsumer
			l.streamDone = true
			close(ch)
			return true
		}
	default:
		select {
		case ch <- ev:
			return true
		default:
			return false
		}
	}
}

func (l *loop) logging() bool { return l.c.logger.Enabled(l.ctx, slog.LevelDebug) }

func (l *loop) logf(msg string, args ...any) {
	if l.logging() {
		l.c.logger.Debug(msg, args...)
	}
}

// logPayload is a push's payload as it goes on the wire, for the log.
func logPayload(v any) string {
	switch v := v.(type) {
	case nil:
		return "{}"
	case json.RawMessage:
		return string(v)
	case []byte:
		return fmt.Sprintf("(%d bytes)", len(v))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "(not JSON)"
	}
	return string(b)
}

// ---- sockets

func (l *loop) newSock() *sockRec {
	l.sockSeq++
	s := &sockRec{id: l.sockSeq, state: sDialing}
	l.sockets = append(l.sockets, s)
	l.enqueue(dialJob{sock: s, endpoint: l.c.endpoint, cfg: l.cfg.Socket})
	return s
}

func (l *loop) sockWithRoom() *sockRec {
	for _, s := range l.sockets {
		if s.state != sClosing && !s.full && s.topics < l.cfg.MaxChannelsPerSocket {
			return s
		}
	}
	return nil
}

func (l *loop) dialed(d dialDone) {
	s := d.sock
	if s.state == sClosing {
		if d.s != nil {
			s.s, s.cancel = d.s, d.cancel
			l.closing[s] = struct{}{}
			l.enqueue(closeJob{s})
		}
		return
	}
	if d.err != nil {
		l.lastDown = d.err
		l.emit(SocketError{Socket: s.id, Err: d.err})
		for _, w := range l.waiters {
			w <- d.err
		}
		l.waiters = nil
		if s.retry == nil {
			s.retry = l.reconnectSchedule()
		}
		next := s.retry.NextBackOff()
		if next == backoff.Stop {
			l.dropSock(s)
			return
		}
		s.redialAt = time.Now().Add(next)
		l.dirty = true
		return
	}
	s.s, s.cancel, s.state, s.retry = d.s, d.cancel, sOpen, nil
	l.g.Spawn(l.ctx, actor.Func(func(ctx context.Context) error {
		forwardStatus(ctx, d.s, l.send, s)
		return nil
	}))
	for _, t := range l.topics {
		if t.sock == s && t.state == tsQueued {
			l.startJoin(t)
		}
	}
}

func (l *loop) reconnectSchedule() backoff.BackOff {
	if l.cfg.Socket.Reconnect != nil {
		return l.cfg.Socket.Reconnect()
	}
	ms := []time.Duration{10, 50, 100, 150, 200, 250, 500, 1000, 2000}
	for i := range ms {
		ms[i] *= time.Millisecond
	}
	return &listBackOff{delays: ms, max: 5 * time.Second}
}

// closeSock takes s out of the pool and closes it.
func (l *loop) closeSock(s *sockRec) {
	l.sockets = slices.DeleteFunc(l.sockets, func(x *sockRec) bool { return x == s })
	prev := s.state
	s.state = sClosing
	if prev == sOpen {
		l.closing[s] = struct{}{}
		l.enqueue(closeJob{s})
	}
}

// dropSock forgets a socket that cannot be dialled; its topics wait for the
// next Connect, Join or Push.
func (l *loop) dropSock(s *sockRec) {
	l.closeSock(s)
	for _, t := range l.topics {
		if t.sock == s {
			t.sock = nil
		}
	}
	l.online = false
}

// release closes s when its last channel has gone, unless it is the only
// socket left: a client that connected stays connected.
func (l *loop) release(s *sockRec) {
	if s == nil {
		return
	}
	s.topics--
	if s.topics == 0 && len(l.sockets) > 1 && s.state != sClosing {
		l.closeSock(s)
	}
}

func (l *loop) status(m sockMsg) {
	s, ev := m.sock, m.ev
	if s.state == sClosing {
		if ev.kind == evClosed {
			code := s.code
			if code == 0 {
				code = 1000
			}
			l.emit(SocketClosed{Socket: s.id, Code: code})
		}
		return
	}
	switch ev.kind {
	case evConnected:
		s.connected = true
		l.emit(SocketOpened{Socket: s.id, URL: ev.url})
		for _, w := range l.waiters {
			w <- nil
		}
		l.waiters = nil
	case evDisconnected:
		s.connected = false
		l.lastDown = ev.err
		l.emit(SocketClosed{Socket: s.id, Code: ev.code, Err: ev.err, Reconnect: ev.reconnect})
		for _, t := range l.topics {
			if t.sock == s && t.state == tsJoined {
				t.state = tsRejoining
			}
		}
	case evClosed:
		// The socket ended by itself (a normal close from the server, a
		// refused reconnect): its topics wait for the next demand. A
		// Disconnected without reconnect has reported it already.
		if ev.err != nil {
			l.lastDown = ev.err
		}
		if s.connected {
			l.emit(SocketClosed{Socket: s.id, Code: ev.code, Err: ev.err})
		}
		s.connected = false
		l.closeSock(s)
		for _, t := range l.topics {
			if t.sock == s {
				l.unbind(t)
			}
		}
		l.online = false
	case evJoined:
		if t := l.topics[ev.topic]; t != nil && t.sock == s && t.state == tsRejoining {
			l.joinOK(t, nil, true)
		}
	case evRejoining:
		if t := l.topics[ev.topic]; t != nil && t.sock == s && (t.state == tsJoined || t.state == tsRejoining) {
			t.state = tsRejoining
			l.emit(ChannelErrored{Topic: t.name, Err: ev.err})
		}
	}
}

// ---- topics

func (l *loop) cfgFor(name string) *topicCfg {
	tc := l.cfgs[name]
	if tc == nil {
		tc = &topicCfg{join: JoinConfig{Topic: name}, events: map[string]bool{}}
		l.cfgs[name] = tc
	}
	return tc
}

// goOnline is the demand that connects: Connect, Join, Push. Topics kept
// by a Disconnect are placed again.
func (l *loop) goOnline() {
	if l.online {
		return
	}
	l.online = true
	names := make([]string, 0, len(l.topics))
	for n, t := range l.topics {
		if t.sock == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		l.place(l.topics[n])
	}
}

func (l *loop) topicFor(name string) *topic {
	t := l.topics[name]
	if t == nil {
		t = &topic{name: name}
		l.topics[name] = t
		l.place(t)
	}
	return t
}

// place puts t on a socket with room, opening one if none has.
func (l *loop) place(t *topic) {
	if !l.online || t.sock != nil {
		return
	}
	s := l.sockWithRoom()
	if s == nil {
		s = l.newSock()
	}
	t.sock = s
	s.topics++
	t.state = tsQueued
	if s.state == sOpen {
		l.startJoin(t)
	}
}

func (l *loop) paramsFunc(tc *topicCfg) func() any {
	payload := tc.join.Payload
	var param string
	if cu := tc.join.CatchUp; cu != nil {
		param = cu.param()
	}
	pos := &tc.pos
	return func() any {
		v := payload
		if f, ok := v.(func() any); ok {
			v = f()
		}
		if param == "" {
			return v
		}
		p := pos.Load()
		if p == nil {
			return v
		}
		return withParam(v, param, *p)
	}
}

// withParam adds name: value to the JSON object v. A v that is not an
// object (or nil, taken as {}) is returned as is.
func withParam(v any, name string, value json.RawMessage) any {
	obj := map[string]json.RawMessage{}
	if v != nil {
		raw, err := json.Marshal(v)
		if err != nil || json.Unmarshal(raw, &obj) != nil || obj == nil {
			return v
		}
	}
	obj[name] = value
	return obj
}

func (l *loop) startJoin(t *topic) {
	tc := l.cfgFor(t.name)
	t.gen++
	gen := t.gen
	ch, sub, subErr := openChannel(l.ctx, t.sock.s, t.name, l.paramsFunc(tc), l.cfg.ChannelBuffer)
	t.ch, t.state = ch, tsJoining
	l.g.Spawn(l.ctx, actor.Func(func(ctx context.Context) error {
		forwardChannel(ctx, sub, l.send, t, gen, subErr)
		return nil
	}))
	timeout := tc.join.Timeout
	if timeout <= 0 {
		timeout = l.cfg.JoinTimeout
	}
	l.logf("phx join", "topic", t.name, "socket", t.sock.id)
	t.sock.joinQ = append(t.sock.joinQ, joinJob{sock: t.sock, t: t, gen: gen, ch: ch, timeout: timeout})
}

func (l *loop) current(t *topic, gen int) bool { return l.topics[t.name] == t && t.gen == gen }

func (l *loop) joined(d joinDone) {
	t := d.t
	if !l.current(t, d.gen) || t.state != tsJoining {
		return
	}
	err := d.err
	switch {
	case err == nil:
		l.joinOK(t, d.resp, false)
	case tooManyChannels(err):
		// The server's limit is lower than ours: this socket is full;
		// take the topic elsewhere (a refused channel is closed for good).
		t.sock.full = true
		l.logf("phx join refused: too many channels", "topic", t.name, "socket", t.sock.id)
		s := t.sock
		t.gen++
		t.ch, t.sock = nil, nil
		l.place(t)
		l.release(s)
	case timedOut(err):
		if channelJoined(t.ch) {
			l.joinOK(t, nil, false)
			return
		}
		t.state = tsRejoining
		l.emit(ChannelJoinTimeout{Topic: t.name})
		for _, w := range t.joinWaiters {
			w <- joinResult{err: err}
		}
		t.joinWaiters = nil
		if t.leaveAfterJoin {
			l.startLeave(t)
		}
	default:
		resp, refused := replyError(err)
		if refused {
			l.emit(ChannelJoinError{Topic: t.name, Response: resp})
		} else {
			l.emit(ChannelErrored{Topic: t.name, Err: err})
		}
		l.removeTopic(t, err, err)
	}
}

func (l *loop) joinOK(t *topic, resp json.RawMessage, rejoin bool) {
	t.state = tsJoined
	if resp != nil {
		t.joinResp = resp
	}
	if l.pres[t.name] == nil {
		l.pres[t.name] = newPresTopic(l.cfg.PresenceHistory)
	}
	l.logf("phx joined", "topic", t.name, "rejoin", rejoin)
	l.emit(ChannelJoined{Topic: t.name, Response: resp, Rejoin: rejoin})
	for _, w := range t.joinWaiters {
		w <- joinResult{resp: t.joinResp}
	}
	t.joinWaiters = nil
	if t.leaveAfterJoin {
		l.startLeave(t)
		return
	}
	l.kick(t)
}

func (l *loop) received(m chanMsg) {
	t := m.t
	if !l.current(t, m.gen) {
		return
	}
	tc := l.cfgFor(t.name)
	in := m.m
	if l.logging() {
		l.c.logger.Debug("phx recv", "topic", t.name, "event", in.Event, "payload", string(in.Payload))
	}
	if cu := tc.join.CatchUp; cu != nil {
		if v, ok := field(in.Payload, cu.Field); ok {
			tc.pos.Store(&v)
		}
	}
	if in.Event == presence.DefaultStateEvent || in.Event == presence.DefaultDiffEvent {
		pt := l.pres[t.name]
		if pt == nil {
			pt = newPresTopic(l.cfg.PresenceHistory)
			l.pres[t.name] = pt
		}
		for _, ev := range pt.apply(t.name, in.Event, in.Payload, in.JoinRef) {
			l.emit(ev)
		}
	}
	if tc.events[in.Event] || tc.events["*"] {
		l.emit(ChannelEvent{Topic: t.name, Event: in.Event, Payload: in.Payload})
	}
}

// field returns the member name of a JSON object payload.
func field(payload json.RawMessage, name string) (json.RawMessage, bool) {
	if len(payload) == 0 || payload[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil {
		return nil, false
	}
	v, ok := obj[name]
	return v, ok && string(v) != "null"
}

func (l *loop) subEnded(m subEnded) {
	t := m.t
	if !l.current(t, m.gen) || t.state == tsJoining || t.state == tsLeaving {
		return
	}
	if t.sock != nil && t.sock.s != nil && socketDone(t.sock.s) {
		return // the socket's Closed status moves the topic
	}
	// The server closed the channel (phx_close).
	err := m.err
	if err == nil {
		err = phx.ErrClosed
	}
	l.emit(ChannelLeft{Topic: t.name, Err: err})
	l.removeTopic(t, err, err)
}

// unbind detaches t from its socket and channel, keeping it and its pushes
// for the next socket. A push in flight goes back to the head of the queue.
func (l *loop) unbind(t *topic) {
	t.gen++
	t.ch, t.sock = nil, nil
	if p := t.inflight; p != nil {
		t.inflight = nil
		p.try++
		p.cancel()
		p.state = Queued
		t.queue = append([]*pushRec{p}, t.queue...)
	}
	if t.state == tsLeaving {
		l.finishLeave(t)
		return
	}
	t.state = tsQueued
	delete(l.pres, t.name)
}

// removeTopic forgets t; its queued pushes fail with pushErr, its join
// waiters with joinErr.
func (l *loop) removeTopic(t *topic, pushErr, joinErr error) {
	delete(l.topics, t.name)
	delete(l.pres, t.name)
	t.gen++
	if joinErr == nil {
		joinErr = phx.ErrLeft
	}
	for _, w := range t.joinWaiters {
		w <- joinResult{err: joinErr}
	}
	t.joinWaiters = nil
	for _, w := range t.leaveWaiters {
		w <- nil
	}
	t.leaveWaiters = nil
	q := t.queue
	t.queue = nil
	for _, p := range q {
		l.finish(p, PushFailed{Push: p.cfg, Err: pushErr}, pushResult{err: pushErr})
	}
	if p := t.inflight; p != nil {
		t.inflight = nil
		// its try ends with ErrLeft or ErrClosed from phx and is reported then
		p.try++
		p.cancel()
		l.finish(p, PushFailed{Push: p.cfg, Err: pushErr}, pushResult{err: pushErr})
	}
	l.release(t.sock)
	t.sock = nil
}

func (l *loop) leave(t *topic, w chan error) {
	if w != nil {
		t.leaveWaiters = append(t.leaveWaiters, w)
	}
	// pushes queued before the leave are not sent on this channel
	q := t.queue
	t.queue = nil
	for _, p := range q {
		l.finish(p, PushFailed{Push: p.cfg, Err: phx.ErrLeft}, pushResult{err: phx.ErrLeft})
	}
	switch t.state {
	case tsQueued:
		l.finishLeave(t)
	case tsJoining:
		t.leaveAfterJoin = true
	case tsLeaving:
	default:
		l.startLeave(t)
	}
}

func (l *loop) startLeave(t *topic) {
	t.leaveAfterJoin = false
	t.state = tsLeaving
	timeout := l.cfgFor(t.name).leaveTimeout
	if timeout <= 0 {
		timeout = l.cfg.LeaveTimeout
	}
	l.logf("phx leave", "topic", t.name)
	l.enqueue(leaveJob{t: t, gen: t.gen, ch: t.ch, timeout: timeout})
}

func (l *loop) left(d leaveDone) {
	if l.current(d.t, d.gen) && d.t.state == tsLeaving {
		l.finishLeave(d.t)
	}
}

// finishLeave reports the leave. Pushes made while leaving wait for the
// topic's next channel.
func (l *loop) finishLeave(t *topic) {
	rest, waiters := t.queue, t.joinWaiters
	t.queue, t.joinWaiters = nil, nil
	l.emit(ChannelLeft{Topic: t.name})
	l.removeTopic(t, phx.ErrLeft, phx.ErrLeft)
	if t.rejoin || len(rest) > 0 || len(waiters) > 0 {
		nt := l.topicFor(t.name)
		nt.joinWaiters = waiters
		for _, p := range rest {
			l.queuePush(p)
		}
	}
}

// want marks t wanted joined: a topic being left is joined again after.
func (l *loop) want(name string) *topic {
	t := l.topicFor(name)
	if t.state == tsLeaving || t.leaveAfterJoin {
		t.rejoin = true
	}
	return t
}

// ---- pushes

func (l *loop) addPush(cfg Push, w chan pushResult) (*pushRec, error) {
	if cfg.Topic == "" || cfg.Event == "" {
		return nil, fmt.Errorf("%w: a push needs a topic and an event", ErrInvalid)
	}
	if l.live >= l.cfg.MaxPushes {
		return nil, ErrQueueFull
	}
	l.live++
	l.seq++
	p := &pushRec{cfg: cfg, sched: cfg.Retry.schedule(), waiter: w, cancel: func() {}}
	l.goOnline()
	l.queuePush(p)
	return p, nil
}

func (l *loop) queuePush(p *pushRec) {
	p.state = Queued
	t := l.topicFor(p.cfg.Topic)
	t.queue = append(t.queue, p)
	l.kick(t)
}

// kick sends t's next push when t is joined and has none in flight. One
// push per topic is in flight at a time: phx's Push blocks until the
// reply, and only a single caller keeps the order of a topic's pushes.
func (l *loop) kick(t *topic) {
	if t.state != tsJoined || t.inflight != nil || len(t.queue) == 0 {
		return
	}
	p := t.queue[0]
	t.queue[0] = nil
	t.queue = t.queue[1:]
	p.state = InFlight
	p.attempt++
	p.try++
	ctx, cancel := context.WithCancel(l.ctx)
	p.cancel = cancel
	t.inflight = p
	timeout := p.cfg.Timeout
	if timeout <= 0 {
		timeout = l.cfg.PushTimeout
	}
	if l.logging() {
		l.c.logger.Debug("phx push", "topic", p.cfg.Topic, "event", p.cfg.Event, "ref", p.cfg.Ref,
			"attempt", p.attempt, "payload", logPayload(p.cfg.Payload))
	}
	l.enqueue(pushJob{p: p, try: p.try, ctx: ctx, ch: t.ch, timeout: timeout})
}

func (l *loop) pushed(d pushDone) {
	p := d.p
	if t := l.topics[p.cfg.Topic]; t != nil && t.inflight == p && p.try == d.try {
		t.inflight = nil
		defer l.kick(t)
	}
	if p.try != d.try || p.canceled {
		return
	}
	p.cancel()
	err := d.err
	l.logf("phx reply", "topic", p.cfg.Topic, "event", p.cfg.Event, "ref", p.cfg.Ref, "err", err)
	switch resp, isReply := replyError(err); {
	case err == nil:
		l.finish(p, PushOK{Push: p.cfg, Response: d.reply.Response}, pushResult{reply: d.reply})
	case isReply:
		l.finish(p, PushError{Push: p.cfg, Response: resp}, pushResult{err: err})
	case timedOut(err):
		next := p.sched.NextBackOff()
		if next == backoff.Stop {
			l.finish(p, PushTimeout{Push: p.cfg, Attempt: p.attempt}, pushResult{err: err})
			return
		}
		p.state = TimedOut
		p.retryAt = time.Now().Add(next)
		l.timedOut[p] = struct{}{}
		l.dirty = true
		l.emit(PushTimeout{Push: p.cfg, Attempt: p.attempt, Retry: true, RetryAt: p.retryAt})
	default:
		l.finish(p, PushFailed{Push: p.cfg, Err: err}, pushResult{err: err})
	}
}

// finish ends a push: reported once, waiter resolved, no longer counted.
func (l *loop) finish(p *pushRec, ev Event, r pushResult) {
	if p.canceled {
		return
	}
	p.canceled = true // no further outcome
	delete(l.timedOut, p)
	l.live--
	l.emit(ev)
	p.resolve(r)
}

// cancelPush drops p wherever it is: a queued push is never sent, a timed
// out one never retried, one in flight is withdrawn from phx (never sent if
// still buffered there) and its reply ignored.
func (l *loop) cancelPush(p *pushRec) bool {
	if p.canceled {
		return false
	}
	if t := l.topics[p.cfg.Topic]; t != nil {
		t.queue = slices.DeleteFunc(t.queue, func(x *pushRec) bool { return x == p })
		if t.inflight == p {
			t.inflight = nil
			defer l.kick(t)
		}
	}
	p.try++
	p.cancel()
	l.finish(p, PushCancelled{Push: p.cfg}, pushResult{err: ErrCancelled})
	return true
}

// each calls f on every live push, topic by topic in name order, then the
// timed-out ones in retry order.
func (l *loop) each(f func(p *pushRec)) {
	names := make([]string, 0, len(l.topics))
	for n := range l.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := l.topics[n]
		if t.inflight != nil {
			f(t.inflight)
		}
		for _, p := range t.queue {
			f(p)
		}
	}
	for _, p := range l.sortedTimedOut() {
		f(p)
	}
}

func (l *loop) sortedTimedOut() []*pushRec {
	ps := make([]*pushRec, 0, len(l.timedOut))
	for p := range l.timedOut {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *pushRec) int { return a.retryAt.Compare(b.retryAt) })
	return ps
}

// ---- timer: push retries and redials

func (l *loop) arm() {
	l.dirty = false
	var at time.Time
	for p := range l.timedOut {
		if at.IsZero() || p.retryAt.Before(at) {
			at = p.retryAt
		}
	}
	for _, s := range l.sockets {
		if !s.redialAt.IsZero() && (at.IsZero() || s.redialAt.Before(at)) {
			at = s.redialAt
		}
	}
	if at.Equal(l.timerAt) {
		return
	}
	l.timer.Stop()
	l.timerAt = at
	if !at.IsZero() {
		l.timer.Reset(time.Until(at))
	}
}

func (l *loop) fire() {
	now := time.Now()
	l.dirty = true
	for _, p := range l.sortedTimedOut() {
		if p.retryAt.After(now) {
			break
		}
		delete(l.timedOut, p)
		p.retryAt = time.Time{}
		l.goOnline()
		l.queuePush(p)
	}
	for _, s := range l.sockets {
		if !s.redialAt.IsZero() && !s.redialAt.After(now) {
			s.redialAt = time.Time{}
			l.enqueue(dialJob{sock: s, endpoint: l.c.endpoint, cfg: l.cfg.Socket})
		}
	}
}

// ---- disconnect and shutdown

func (l *loop) disconnect(code int, reset bool) {
	l.online = false
	for _, s := range slices.Clone(l.sockets) {
		s.code = code
		s.redialAt = time.Time{}
		l.closeSock(s)
	}
	l.dirty = true
	l.lastDown = &DisconnectError{Code: code}
	for _, w := range l.waiters {
		w <- l.lastDown
	}
	l.waiters = nil
	for _, t := range l.topics {
		t.sock = nil // its socket is gone: nothing to release
		l.unbind(t)
	}
	if !reset {
		return
	}
	var all []*pushRec
	l.each(func(p *pushRec) { all = append(all, p) })
	for _, p := range all {
		l.cancelPush(p)
	}
	for _, t := range l.topics {
		for _, w := range t.joinWaiters {
			w <- joinResult{err: ErrReset}
		}
		for _, w := range t.leaveWaiters {
			w <- nil
		}
	}
	l.topics = map[string]*topic{}
	l.cfgs = map[string]*topicCfg{}
	l.pres = map[string]*presTopic{}
	l.timedOut = map[*pushRec]struct{}{}
}

// shutdown closes every socket (the pool's and those still closing: Close
// is idempotent) and fails whatever waits.
func (l *loop) shutdown() {
	for _, s := range l.sockets {
		if s.state == sOpen {
			closeSocket(s.s, s.cancel)
		}
	}
	for s := range l.closing {
		closeSocket(s.s, s.cancel)
	}
	for _, w := range l.waiters {
		w <- ErrClosed
	}
	for _, t := range l.topics {
		for _, w := range t.joinWaiters {
			w <- joinResult{err: ErrClosed}
		}
		for _, w := range t.leaveWaiters {
			w <- ErrClosed
		}
	}
	var all []*pushRec
	l.each(func(p *pushRec) { all = append(all, p) })
	for _, p := range all {
		p.cancel()
		p.resolve(pushResult{err: ErrClosed})
	}
}
