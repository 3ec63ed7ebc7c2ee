package phx

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

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
	statq  *actor.Queue[Status] // status events for the socket actor to hand on
	state  atomic.Int32
	closed atomic.Bool // Close was called

	// ref counts the refs minted by the socket and its channels.
	ref atomic.Uint64
	// conn is the latest connection state, published by the socket actor
	// for its channels, which are woken to read it (a conflating control
	// mailbox: a channel needs only the latest state).
	conn atomic.Pointer[connState]

	// frameTaps are the open frame taps (nil: none), replaced whole by the
	// socket actor and read by the connections' reader and writer.
	frameTaps atomic.Pointer[[]*FrameTap]
	// logH is Config.Logger's handler (nil without a logger), asked at
	// every frame whether Debug is on.
	logH slog.Handler

	nReceived, nStale, nUnrouted, nMalformed, nDropped, nOverflowed, nReconnects atomic.Uint64
	stats                                                                        sockStats
	nStatusDropped                                                               atomic.Uint64
	// nLend counts the open subscriptions with lent payloads (Lend): while
	// there are any, the reader reads frames into reusable buffers.
	nLend atomic.Int32
}

// Connect dials endpoint ("ws://host:4000/socket"; http(s) is accepted and
// "/websocket" is appended unless present) and returns once the first
// connection is open. The first connection attempt is not retried: its error
// (a *DialError) is returned; each attempt is bounded by Config.DialTimeout,
// and cancelling ctx ends one at once. Later connection losses reconnect by
// themselves, as Config says.
//
// ctx bounds the dial only, as it does for net.Dialer.DialContext: once
// Connect has returned, cancelling ctx has no effect, and the socket lives
// until Close (or until Config.Context ends, when set). A nil cfg means the
// zero Config.
func Connect(ctx context.Context, endpoint string, cfg *Config) (*Socket, error) {
	c := cfg.withDefaults()
	ep, err := normaliseEndpoint(endpoint)
	if err != nil {
		return nil, newDialError(endpoint, err)
	}
	ser, err := wire.SerializerFor(c.Vsn)
	if err != nil {
		return nil, newDialError(endpoint, err)
	}
	s := &Socket{cfg: c, endpoint: ep, ser: ser, status: make(chan Status, c.StatusBuffer),
		statq: actor.NewQueue[Status](statusQueue)}
	if c.Logger != nil {
		s.logH = c.Logger.Handler()
	}
	s.conn.Store(noConn)
	done := make(chan struct{})
	s.mb = actor.NewMailbox[sockMsg](64, done)
	ready := make(chan struct{})
	a := newSockActor(s, ready)
	// The socket outlives ctx: its life is Config.Context's, or until Close.
	// Values of ctx are kept when Config.Context is not set.
	life := c.Context
	if life == nil {
		life = context.WithoutCancel(ctx)
	}
	s.proc = actor.Start(life, actor.Func(func(ctx context.Context) error {
		defer close(done)
		return a.run(ctx)
	}))
	select {
	case <-ready:
		return s, nil
	case <-ctx.Done():
		select {
		case <-ready:
			return s, nil // opened just in time
		default:
		}
		// The dial is abandoned: the socket stops with ctx's error.
		s.closed.Store(true)
		s.proc.StopWait(context.Cause(ctx))
		return nil, ctx.Err()
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
func (s *Socket) Close() error { return s.stop(errUserClose) }

// CloseWith is Close with the close code and reason the server receives:
// 1000 (what Close sends) or an application code from 3000 to 4999, and a
// reason of at most 123 bytes. Other values return an error wrapping
// ErrInvalidArgument and leave the socket open.
func (s *Socket) CloseWith(code int, reason string) error {
	if code != 1000 && (code < 3000 || code > 4999) {
		return fmt.Errorf("%w: close code %d is not 1000 or 3000 to 4999", ErrInvalidArgument, code)
	}
	if len(reason) > 123 {
		return fmt.Errorf("%w: close reason of %d bytes is longer than 123", ErrInvalidArgument, len(reason))
	}
	return s.stop(&userClose{code: code, reason: reason})
}

func (s *Socket) stop(cause error) error {
	s.closed.Store(true)
	err := s.proc.StopWait(cause)
	if errors.Is(err, errUserClose) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

var errUserClose = errors.New("phx: socket closed by Close")

// userClose is the cause of a CloseWith: an errUserClose with the close
// frame's code and reason.
type userClose struct {
	code   int
	reason string
}

func (u *userClose) Error() string        { return errUserClose.Error() }
func (u *userClose) Is(target error) bool { return target == errUserClose }

// Done is closed when the socket has stopped for good.
func (s *Socket) Done() <-chan struct{} { return s.proc.Done() }

// Err is why the socket stopped: nil before it did and after Close; the
// context's error if Config.Context was cancelled; otherwise the error
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
// SlowConsumer). It is one shared, bounded stream (Config.StatusBuffer):
// when nobody reads it the oldest events are dropped and counted
// (Stats.StatusDropped), and readers of it share its events between them;
// WatchStatus gives each reader a stream of its own. It is closed after the
// final Closed event.
func (s *Socket) Status() <-chan Status { return s.status }

// Stats returns the socket's counters. It takes no lock and allocates
// nothing, so it may be polled often.
func (s *Socket) Stats() (st Stats) {
	defer s.stats.fill(&st)
	return Stats{
		Received:   s.nReceived.Load(),
		Stale:      s.nStale.Load(),
		Unrouted:   s.nUnrouted.Load(),
		Malformed:  s.nMalformed.Load(),
		Dropped:    s.nDropped.Load(),
		Overflowed: s.nOverflowed.Load(),
		Reconnects: s.nReconnects.Load(),

		StatusDropped: s.nStatusDropped.Load(),
	}
}

// Endpoint is the normalised WebSocket URL, with the query given to
// Connect (unredacted), without Config.Params.
func (s *Socket) Endpoint() string { return s.endpoint }

// Ping sends a heartbeat and returns the time until its reply, or
// ErrTimeout when none came within Config.Timeout.
func (s *Socket) Ping(ctx context.Context) (time.Duration, error) {
	p := &push{kind: kindPing, event: wire.EventHeartbeat, reply: make(chan pushResult, 1), timeout: s.cfg.Timeout}
	r, err := s.await(ctx, p)
	return r.rtt, err
}

// Channel returns a channel for topic. params are the join parameters: any
// JSON-marshalable value, a json.RawMessage, or a ParamsFunc called before
// every (re)join. Nothing is sent until Join.
func (s *Socket) Channel(topic string, params any) *Channel {
	return &Channel{s: s, topic: topic, params: params}
}

// Subscribe returns a subscription to every message the socket receives, on
// every topic, before any routing or filtering (replies included, heartbeat
// replies excepted); JoinRef and Ref are as on the wire. Events filters by
// event name; WithBuffer and WithOverflow size it. It returns ctx.Err(), or
// ErrClosed when the socket is closed.
func (s *Socket) Subscribe(ctx context.Context, opts ...SubscribeOption) (*Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := s.newSub("", opts)
	ack := make(chan struct{}, 1)
	if err := s.mb.Tell(ctx, subscribeMsg{sub: sub, ack: ack}); err != nil {
		// Not queued: nobody else will ever touch sub.
		return nil, s.stoppedErr(err)
	}
	select {
	case <-ack:
		return sub, nil
	case <-ctx.Done():
		sub.Close() // the actor may take it yet: it then ends it
		return nil, ctx.Err()
	case <-s.proc.Done():
		select {
		case <-ack:
			// Taken, then ended as the socket stopped.
			if err := sub.Err(); err != nil {
				return nil, err
			}
			return sub, nil
		default:
			return nil, s.stoppedErr(actor.ErrStopped)
		}
	}
}

func (s *Socket) newSub(topic string, opts []SubscribeOption) *Subscription {
	o := s.subOpts(opts)
	c := min(o.buffer, subChanCap)
	sub := &Subscription{
		c:        make(chan Message, c),
		bound:    int32(min(o.buffer-c, math.MaxInt32-1)),
		s:        s,
		overflow: o.overflow,
		topic:    topic,
		events:   o.events,
		lend:     o.lend && topic != "",
	}
	return sub
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
