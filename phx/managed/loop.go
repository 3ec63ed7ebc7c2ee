package managed

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/phx"
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
