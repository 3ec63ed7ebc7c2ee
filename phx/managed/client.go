package managed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/phx"
)

// Errors of the client. Errors from the server and the socket are phx's
// (phx.ReplyError, phx.ErrTimeout, phx.ErrLeft...).
var (
	// ErrClosed: the client was closed before the call completed.
	ErrClosed = errors.New("managed: client closed")
	// ErrQueueFull: Config.MaxPushes pushes are already waiting.
	ErrQueueFull = errors.New("managed: push queue full")
	// ErrCancelled: the push was dropped (DropPush and its kin, a blocking
	// Push whose ctx ended, DisconnectAndReset).
	ErrCancelled = errors.New("managed: push cancelled")
	// ErrReset: DisconnectAndReset forgot the topic being joined.
	ErrReset = errors.New("managed: client reset")
	// ErrInvalid: a request missing a topic or an event.
	ErrInvalid = errors.New("managed: invalid request")
)

// DisconnectError is the last disconnect reason after Disconnect.
type DisconnectError struct{ Code int }

func (e *DisconnectError) Error() string {
	return fmt.Sprintf("managed: disconnected by the client (code %d)", e.Code)
}

// Config configures a Client. The zero value works: every field's doc says
// what zero means. New copies it.
type Config struct {
	// Socket configures every socket of the pool (params, transport,
	// serializer, heartbeat, reconnect...). Its StatusBuffer, when zero, is
	// raised to fit a full socket's join events.
	Socket phx.Config
	// MaxChannelsPerSocket is how many channels the client puts on one
	// socket before it opens another. Zero: 100, Phoenix's default
	// limit. A server that refuses a join with "too many channels" before
	// that marks its socket full too.
	MaxChannelsPerSocket int
	// Workers bounds the blocking calls into phx running at once (dials,
	// joins, leaves, pushes in flight, one per topic). Zero: 64.
	Workers int
	// MaxPushes bounds the pushes queued, in flight or waiting for a retry;
	// more are refused with ErrQueueFull. Zero: 65536.
	MaxPushes int
	// PushTimeout, JoinTimeout and LeaveTimeout are the defaults of pushes,
	// joins and leaves that set none. Zero: Socket.Timeout (phx: 10 s).
	PushTimeout, JoinTimeout, LeaveTimeout time.Duration
	// Buffer bounds the event stream. Zero: 1024.
	Buffer int
	// Overflow is what the stream does when it is full. Zero: DropNewest
	// (counted and reported by an Overflowed event). DropOldest makes room.
	// CloseWithError closes the stream (Err is phx.ErrSlowConsumer); the
	// client goes on and its blocking calls still work. Block makes the
	// client wait for the consumer, and with it every channel.
	Overflow phx.Overflow
	// ChannelBuffer is each channel subscription's buffer. Zero: 256.
	ChannelBuffer int
	// PresenceHistory bounds the diffs, joins and leaves kept per topic.
	// Zero: 100.
	PresenceHistory int
	// Logger receives the client's log lines once logging is started.
	// Zero: slog.Default().
	Logger *slog.Logger
	// Logging starts the client with logging on.
	Logging bool
}

func (c *Config) defaults() {
	if c.MaxChannelsPerSocket <= 0 {
		c.MaxChannelsPerSocket = 100
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.MaxPushes <= 0 {
		c.MaxPushes = 65536
	}
	if c.Buffer <= 0 {
		c.Buffer = 1024
	}
	if c.ChannelBuffer <= 0 {
		c.ChannelBuffer = 256
	}
	if c.PresenceHistory <= 0 {
		c.PresenceHistory = 100
	}
	if c.Socket.StatusBuffer <= 0 {
		c.Socket.StatusBuffer = 2*c.MaxChannelsPerSocket + 64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Client is a managed Phoenix client: a pool of sockets and their channels
// behind one actor that connects, joins, queues, retries and folds presence
// by itself, and reports everything it does on one stream (Events).
//
// Concurrency: every method is safe for concurrent use. The client's state
// lives in one goroutine; methods send it requests and wait for the answer
// with their ctx. After Close (or once New's ctx is done) methods return
// ErrClosed, the stream is closed and no goroutine of the client is left.
type Client struct {
	endpoint  string
	shown     string // endpoint without query or user info
	cfg       Config
	protocol  Protocol
	inbox     actor.Mailbox[msg]
	events    chan Event
	streamErr error
	cancel    context.CancelFunc
	done      chan struct{}
	level     *slog.LevelVar
	logger    *slog.Logger
}

// New starts a client for endpoint ("ws://host:4000/socket", as phx.Connect
// takes it). Nothing is dialled until Connect, Join or a push asks for it.
// ctx bounds the client's life, as Close does. A nil cfg is the zero Config.
func New(ctx context.Context, endpoint string, cfg *Config) *Client {
	c := &Client{endpoint: endpoint, shown: redact(endpoint), done: make(chan struct{}), level: new(slog.LevelVar)}
	if cfg != nil {
		c.cfg = *cfg
	}
	c.cfg.defaults()
	c.protocol = protocolOf(&c.cfg.Socket)
	c.level.Set(logOff)
	if c.cfg.Logging {
		c.level.Set(slog.LevelDebug)
	}
	c.logger = slog.New(&switchHandler{h: c.cfg.Logger.Handler(), level: c.level})
	c.events = make(chan Event, c.cfg.Buffer)
	ctx, c.cancel = context.WithCancel(ctx)
	c.inbox = actor.NewMailbox[msg](1024, ctx.Done())
	l := newLoop(c, ctx)
	go func() {
		defer close(c.done)
		l.run()
	}()
	return c
}

// Close stops the client: every socket is closed, blocking calls return
// ErrClosed, the stream is closed; it returns once every goroutine of the
// client has stopped. Idempotent.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Events is the client's stream. It is bounded (Config.Buffer, with
// Config.Overflow) and closed when the client stops.
func (c *Client) Events() <-chan Event { return c.events }

// Err says why the stream was closed early: phx.ErrSlowConsumer under the
// CloseWithError policy; nil otherwise. Valid once Events is closed.
func (c *Client) Err() error { return c.streamErr }

// do runs fn on the actor.
func (c *Client) do(ctx context.Context, fn func(*loop)) error {
	return c.wrap(c.inbox.Tell(ctx, fnMsg{fn}))
}

func (c *Client) wrap(err error) error {
	if errors.Is(err, actor.ErrStopped) {
		return ErrClosed
	}
	return err
}

// ask runs fn on the actor and returns its result.
func ask[T any](ctx context.Context, c *Client, fn func(*loop) T) (T, error) {
	r, err := actor.Ask(ctx, c.inbox, func(reply chan<- T) msg {
		return fnMsg{func(l *loop) { reply <- fn(l) }}
	})
	return r, c.wrap(err)
}

// wait waits for a result the actor resolves later.
func wait[T any](ctx context.Context, c *Client, w chan T) (T, error) {
	select {
	case r := <-w:
		return r, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case <-c.done:
		select {
		case r := <-w:
			return r, nil
		default:
		}
		var zero T
		return zero, ErrClosed
	}
}

// ---- connect and join

// Connect opens the first socket of the pool if none is open and waits
// until it is. Joins requested before are sent once it opens. A failed
// attempt is returned (a *phx.DialError); the client keeps trying on the
// reconnect schedule.
func (c *Client) Connect(ctx context.Context) error {
	w := make(chan error, 1)
	if err := c.do(ctx, func(l *loop) {
		l.goOnline()
		if len(l.sockets) == 0 {
			l.newSock()
		}
		for _, s := range l.sockets {
			if s.state == sOpen && s.connected {
				w <- nil
				return
			}
		}
		l.waiters = append(l.waiters, w)
	}); err != nil {
		return err
	}
	err, werr := wait(ctx, c, w)
	if werr != nil {
		return werr
	}
	return err
}

// Join joins topic with its JoinConfig (or the defaults), connecting first
// if needed, and waits for the server's answer: the join response, a
// *phx.JoinError (refused: wrapping *phx.ReplyError; timed out: wrapping
// phx.ErrTimeout, and the channel keeps rejoining). A topic already joined
// returns its response at once.
func (c *Client) Join(ctx context.Context, topic string) (json.RawMessage, error) {
	if topic == "" {
		return nil, fmt.Errorf("%w: empty topic", ErrInvalid)
	}
	w := make(chan joinResult, 1)
	if err := c.do(ctx, func(l *loop) {
		l.goOnline()
		t := l.want(topic)
		if t.state == tsJoined {
			w <- joinResult{resp: t.joinResp}
			return
		}
		t.joinWaiters = append(t.joinWaiters, w)
	}); err != nil {
		return nil, err
	}
	r, err := wait(ctx, c, w)
	if err != nil {
		return nil, err
	}
	return r.resp, r.err
}

// JoinAll asks for every topic to be joined, connecting if needed, and
// returns at once: the outcomes come on the stream (ChannelJoined,
// ChannelJoinError, ChannelJoinTimeout).
func (c *Client) JoinAll(ctx context.Context, topics ...string) error {
	return c.Batch(ctx, Batch{Join: topics})
}

// Leave leaves topic and waits until it is left (or its leave timeout).
// Pushes queued for it fail with phx.ErrLeft. Leaving a topic not joined
// returns nil.
func (c *Client) Leave(ctx context.Context, topic string) error {
	w := make(chan error, 1)
	if err := c.do(ctx, func(l *loop) {
		t := l.topics[topic]
		if t == nil {
			w <- nil
			return
		}
		l.leave(t, w)
	}); err != nil {
		return err
	}
	err, werr := wait(ctx, c, w)
	if werr != nil {
		return werr
	}
	return err
}

// LeaveAll leaves topics, or every topic when none are given, and returns
// at once; each ChannelLeft comes on the stream.
func (c *Client) LeaveAll(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return c.Batch(ctx, Batch{LeaveAll: true})
	}
	return c.Batch(ctx, Batch{Leave: topics})
}

// ---- join and leave configs

// JoinConfig is how a topic is joined. Set it before joining (SetJoinConfig);
// Events may change at run time (AddEvents, DropEvents).
type JoinConfig struct {
	Topic string
	// Payload is the join payload: any JSON-marshalable value, or a
	// func() any called on every join and rejoin (from the client's
	// goroutines: it must not block or call the client). nil sends {}.
	Payload any
	// Events are the channel events delivered on the stream as
	// ChannelEvent; others are not. "*" delivers every event. Presence
	// events are folded whether they are listed or not.
	Events []string
	// Timeout of the join. Zero: Config.JoinTimeout.
	Timeout time.Duration
	// CatchUp, if set, remembers the last position seen on the topic and
	// sends it with every later join, for a server that resends what was
	// missed.
	CatchUp *CatchUp
}

// CatchUp names the payload field that carries a stream's position
// ("id", "seq") and the join parameter that sends it back.
type CatchUp struct {
	// Field of each event's payload holding the position; an event whose
	// payload has it (not null) moves the position.
	Field string
	// Param is the join payload key the last position is sent in. Zero:
	// "last_" + Field.
	Param string
}

func (cu *CatchUp) param() string {
	if cu.Param != "" {
		return cu.Param
	}
	return "last_" + cu.Field
}

// LeaveConfig is how a topic is left.
type LeaveConfig struct {
	Topic string
	// Timeout of the leave. Zero: Config.LeaveTimeout.
	Timeout time.Duration
}

func (l *loop) setJoinConfig(jc JoinConfig) {
	tc := l.cfgFor(jc.Topic)
	tc.join = jc
	tc.events = map[string]bool{}
	for _, e := range jc.Events {
		tc.events[e] = true
	}
}

// SetJoinConfig sets topic's join config. Its Events apply at once; the
// rest from the topic's next channel (after a leave, a Disconnect, a socket
// change): rejoins of the current channel keep its payload (a func payload
// is still called on each) and timeout.
func (c *Client) SetJoinConfig(ctx context.Context, jc JoinConfig) error {
	if jc.Topic == "" {
		return fmt.Errorf("%w: empty topic", ErrInvalid)
	}
	jc.Events = append([]string(nil), jc.Events...)
	return c.do(ctx, func(l *loop) { l.setJoinConfig(jc) })
}

// SetLeaveConfig sets topic's leave config.
func (c *Client) SetLeaveConfig(ctx context.Context, lc LeaveConfig) error {
	if lc.Topic == "" {
		return fmt.Errorf("%w: empty topic", ErrInvalid)
	}
	return c.do(ctx, func(l *loop) { l.cfgFor(lc.Topic).leaveTimeout = lc.Timeout })
}

// AddEvents delivers events of topic from now on.
func (c *Client) AddEvents(ctx context.Context, topic string, events ...string) error {
	events = append([]string(nil), events...)
	return c.do(ctx, func(l *loop) {
		tc := l.cfgFor(topic)
		for _, e := range events {
			tc.events[e] = true
		}
	})
}

// DropEvents stops delivering events of topic.
func (c *Client) DropEvents(ctx context.Context, topic string, events ...string) error {
	events = append([]string(nil), events...)
	return c.do(ctx, func(l *loop) {
		tc := l.cfgFor(topic)
		for _, e := range events {
			delete(tc.events, e)
		}
	})
}

// ---- pushes

// Send queues pushes and returns once they are queued, connecting and
// joining as needed: each one's outcome comes on the stream (PushOK,
// PushError, PushTimeout, PushFailed, PushCancelled). Pushes to one topic
// are sent in order, each after the previous one's reply.
func (c *Client) Send(ctx context.Context, pushes ...Push) error {
	return c.Batch(ctx, Batch{Push: pushes})
}

// Push queues p like Send and waits for its final outcome: the reply
// (status "ok"), a *phx.ReplyError, phx.ErrTimeout once its Retry gives
// up, phx.ErrLeft or another failure, ErrCancelled. If ctx ends first the
// push is dropped (never sent if still queued) and ctx.Err() returned.
// Its events come on the stream too.
func (c *Client) Push(ctx context.Context, p Push) (phx.Reply, error) {
	w := make(chan pushResult, 1)
	rec, err := ask(ctx, c, func(l *loop) struct {
		p   *pushRec
		err error
	} {
		r, err := l.addPush(p, w)
		return struct {
			p   *pushRec
			err error
		}{r, err}
	})
	if err != nil {
		return phx.Reply{}, err
	}
	if rec.err != nil {
		return phx.Reply{}, rec.err
	}
	r, err := wait(ctx, c, w)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up: drop the push. Tell gives up only when
			// the client stops.
			_ = c.inbox.Tell(context.WithoutCancel(ctx), fnMsg{func(l *loop) { l.cancelPush(rec.p) }})
		}
		return phx.Reply{}, err
	}
	return r.reply, r.err
}

// Batch is several requests done in one step, in this order: join configs
// set, topics joined, topics left, pushes queued.
type Batch struct {
	JoinConfigs []JoinConfig
	Join        []string
	Leave       []string
	LeaveAll    bool
	Push        []Push
}

// Batch does b in one step of the client. Nothing is done if a push is
// invalid or the pushes do not fit (ErrQueueFull).
func (c *Client) Batch(ctx context.Context, b Batch) error {
	for _, p := range b.Push {
		if p.Topic == "" || p.Event == "" {
			return fmt.Errorf("%w: a push needs a topic and an event", ErrInvalid)
		}
	}
	for _, jc := range b.JoinConfigs {
		if jc.Topic == "" {
			return fmt.Errorf("%w: empty topic", ErrInvalid)
		}
	}
	err, aerr := ask(ctx, c, func(l *loop) error {
		if l.live+len(b.Push) > l.cfg.MaxPushes {
			return ErrQueueFull
		}
		for _, jc := range b.JoinConfigs {
			l.setJoinConfig(jc)
		}
		if len(b.Join) > 0 || len(b.Push) > 0 {
			l.goOnline()
		}
		for _, topic := range b.Join {
			if topic != "" {
				l.want(topic)
			}
		}
		leave := b.Leave
		if b.LeaveAll {
			leave = l.topicNames()
		}
		for _, topic := range leave {
			if t := l.topics[topic]; t != nil {
				l.leave(t, nil)
			}
		}
		for _, p := range b.Push {
			if _, err := l.addPush(p, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if aerr != nil {
		return aerr
	}
	return err
}

func (l *loop) topicNames() []string {
	names := make([]string, 0, len(l.topics))
	for n := range l.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
