package phx

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
)

// Overflow is what a subscription does when its buffer is full.
type Overflow int

const (
	// Backpressure (the default) loses nothing while the consumer makes
	// progress: a full subscription makes its channel wait for the
	// consumer, a channel that falls behind makes the socket stop taking
	// frames, and the connection is read more slowly, so that the server
	// is pushed back (as the official JS client's single reader does). A
	// consumer that takes no message for Config.SlowConsumerTimeout is
	// stuck: what does not fit its buffer is then dropped, counted and
	// reported (SlowConsumer) until it takes a message again, and the
	// socket's other topics flow meanwhile. The socket's heartbeat deadline
	// waits while the socket itself holds frames back. While a channel
	// waits for a consumer it still serves its requests (Push, Send, Leave,
	// Subscribe, Close) and resolves pushes with the replies it has taken
	// in, so a goroutine may push and then read the subscription; after a
	// Leave the consumer still gets every message read before it.
	Backpressure Overflow = iota
	// DropNewest discards the message that does not fit, counts it and
	// reports a SlowConsumer status (nats.go's model).
	DropNewest
	// DropOldest discards the oldest buffered message to make room.
	DropOldest
	// CloseWithError ends the subscription with ErrSlowConsumer.
	CloseWithError
	// Block waits for the consumer without a bound: the channel, and once
	// its inbox is full the socket, stop taking frames for every topic
	// until the consumer takes a message, however long that is: a stuck
	// consumer stalls the whole socket, and since the heartbeat deadline
	// waits while the socket holds frames back, a connection that dies
	// meanwhile is noticed only once the consumer moves again. Use it only
	// when the consumer is known to keep up. A socket-wide
	// subscription with Block waits alone: once its queue (1024 messages)
	// is full, messages are dropped for it and counted.
	Block
)

// Config configures a Socket. The zero value works: every field's doc says
// what zero means. Connect copies it, so changing it afterwards has no effect.
// Function fields are called from the socket's goroutine on every connection
// attempt and must not block for long.
type Config struct {
	// Context, if set, bounds the socket's life: when it ends, the socket
	// stops as if Close had been called and Err returns its error. Zero:
	// the socket lives until Close. (Connect's own ctx bounds the dial only.)
	Context context.Context
	// Params are sent as query parameters on every connect.
	Params url.Values
	// ParamsFunc, if set, is called on every connect; its values are added to
	// Params (for tokens that expire).
	ParamsFunc func() url.Values
	// Vsn is the serializer version: "2.0.0" (zero) or "1.0.0".
	Vsn string
	// Header is sent with the WebSocket upgrade request.
	Header http.Header
	// AuthToken, if not empty, is sent in Sec-WebSocket-Protocol as Phoenix
	// 1.8 expects ("phoenix", "base64url.bearer.phx.<token>").
	AuthToken string
	// AuthTokenFunc, if set, is called on every connect and wins over AuthToken.
	AuthTokenFunc func() string
	// Dialer dials the WebSocket (TLS, proxy, buffer sizes). Zero: a copy of
	// websocket.DefaultDialer, whose 4 KiB read buffer keeps idle sockets
	// small; a socket that mostly receives large frames reads them with
	// fewer system calls with a larger ReadBufferSize. Ignored when
	// Transport is set.
	Dialer *websocket.Dialer
	// Transport replaces the WebSocket transport: &LongPoll{} for long-poll
	// only, Fallback for a custom fallback, or one of the caller's own.
	Transport Transport
	// LongPollFallback, if positive, falls back to long-poll when the
	// WebSocket does not open and carry a heartbeat within this long, as
	// phoenix.js's longPollFallbackMs (2.5 s in its connectWithFallback):
	// the socket dials Fallback(WebSocket with Dialer, &LongPoll{ReadLimit},
	// LongPollFallback) and, once fallen back, stays on long-poll across
	// reconnects. Zero: WebSocket only. Ignored when Transport is set.
	LongPollFallback time.Duration

	// Timeout is the default push, join and leave timeout. Zero: 10 s
	// (phoenix.js).
	Timeout time.Duration
	// DialTimeout bounds one connection attempt, whatever the transport:
	// the TCP and TLS dial and the WebSocket upgrade, or the long-poll
	// session's opening request (with LongPollFallback, both tries). An
	// attempt that runs out fails with a *DialError wrapping ErrTimeout.
	// Zero: Timeout.
	DialTimeout time.Duration
	// HeartbeatInterval between a heartbeat reply and the next heartbeat.
	// Zero: 30 s. Negative: no heartbeats.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a heartbeat may go unanswered before the
	// connection is declared dead. Zero: HeartbeatInterval.
	HeartbeatTimeout time.Duration
	// Reconnect returns a fresh backoff for reconnecting; the socket owns the
	// instance. Zero: phoenix.js's schedule (10, 50, 100, 150, 200, 250, 500,
	// 1000, 2000 ms, then 5 s forever), with ReconnectJitter. A backoff that
	// returns backoff.Stop ends the socket with the last connection error.
	Reconnect func() backoff.BackOff
	// ReconnectJitter randomises the default schedules by ± this fraction
	// (0 to 1). Zero: none, as phoenix.js.
	ReconnectJitter float64
	// Rejoin returns a fresh backoff for rejoining a channel. Zero:
	// phoenix.js's 1, 2, 5 s, then 10 s.
	Rejoin func() backoff.BackOff
	// ReconnectOnNormalClose reconnects after the server closes with 1000.
	// Zero: no reconnect, like phoenix.js (the socket ends with a
	// *CloseError). Other close codes and lost connections always reconnect.
	ReconnectOnNormalClose bool
	// RetryUnauthorized keeps reconnecting when the server refuses the
	// upgrade with 401 or 403. Zero: the socket ends with the *DialError.
	RetryUnauthorized bool

	// PushBuffer bounds the pushes waiting for a channel to join. Zero: 100.
	PushBuffer int
	// SubscriptionBuffer is the default buffer of a subscription. Zero: 256.
	SubscriptionBuffer int
	// Overflow is the default overflow policy of subscriptions. Zero:
	// Backpressure.
	Overflow Overflow
	// SlowConsumerTimeout is how long a subscription with the Backpressure
	// policy waits for its consumer to take a message before it counts it
	// stuck and drops. Zero: 5 s.
	SlowConsumerTimeout time.Duration
	// StatusBuffer bounds each status stream (Status, WatchStatus); when one
	// is full its oldest event is dropped and counted (Stats.StatusDropped).
	// Zero: 64.
	StatusBuffer int

	// ReadLimit bounds an inbound frame in bytes. Zero: 16 MiB.
	ReadLimit int64
	// WriteTimeout bounds writing one frame. Zero: 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the close handshake; after it the connection is
	// dropped. Close returns within about twice this. Zero: 500 ms.
	CloseTimeout time.Duration

	// Logger receives the socket's records (see the package doc's
	// Observability section). Nil: the socket logs nothing. Its handler's
	// level decides, per record: a slog.LevelVar set to Debug on a live
	// socket logs every frame from the next one on, and set back to Info
	// stops it.
	Logger *slog.Logger
	// LogPayload bounds how many payload bytes a Debug frame record shows
	// (secrets redacted). Zero: 200. Negative: none.
	LogPayload int
	// Observer receives the socket's events for metrics and tracing (see
	// Observer). Nil: none.
	Observer Observer
}

func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	d.Header = d.Header.Clone()
	if d.Params != nil {
		p := make(url.Values, len(d.Params))
		for k, v := range d.Params {
			p[k] = append([]string(nil), v...)
		}
		d.Params = p
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	if d.DialTimeout <= 0 {
		d.DialTimeout = d.Timeout
	}
	if d.HeartbeatInterval == 0 {
		d.HeartbeatInterval = 30 * time.Second
	}
	if d.HeartbeatTimeout <= 0 {
		d.HeartbeatTimeout = d.HeartbeatInterval
	}
	if d.ReconnectJitter < 0 {
		d.ReconnectJitter = 0
	}
	if d.ReconnectJitter > 1 {
		d.ReconnectJitter = 1
	}
	if d.Reconnect == nil {
		j := d.ReconnectJitter
		d.Reconnect = func() backoff.BackOff { return newSteps(reconnectSteps, j) }
	}
	if d.Rejoin == nil {
		j := d.ReconnectJitter
		d.Rejoin = func() backoff.BackOff { return newSteps(rejoinSteps, j) }
	}
	if d.PushBuffer <= 0 {
		d.PushBuffer = 100
	}
	if d.SubscriptionBuffer <= 0 {
		d.SubscriptionBuffer = 256
	}
	if d.SlowConsumerTimeout <= 0 {
		d.SlowConsumerTimeout = 5 * time.Second
	}
	if d.StatusBuffer <= 0 {
		d.StatusBuffer = 64
	}
	if d.ReadLimit <= 0 {
		d.ReadLimit = 16 << 20
	}
	if d.WriteTimeout <= 0 {
		d.WriteTimeout = 10 * time.Second
	}
	if d.CloseTimeout <= 0 {
		d.CloseTimeout = 500 * time.Millisecond
	}
	if d.Transport == nil {
		var cp websocket.Dialer
		if d.Dialer != nil {
			cp = *d.Dialer
		} else {
			cp = *websocket.DefaultDialer
			// Sockets mostly sit idle between small writes: sharing write
			// buffers saves 4 KiB per idle socket.
			cp.WriteBufferPool = &writeBufferPool
		}
		d.Transport = &wsTransport{dialer: &cp, readLimit: d.ReadLimit}
		if d.LongPollFallback > 0 {
			d.Transport = Fallback(d.Transport, &LongPoll{ReadLimit: d.ReadLimit}, d.LongPollFallback)
		}
	}
	return d
}

var writeBufferPool sync.Pool

// JoinOption is an option of Channel.Join (WithTimeout).
type JoinOption interface{ applyJoin(*reqOpts) }

// PushOption is an option of Channel.Push and Channel.Send (WithTimeout).
type PushOption interface{ applyPush(*reqOpts) }

// LeaveOption is an option of Channel.Leave (WithTimeout).
type LeaveOption interface{ applyLeave(*reqOpts) }

// SubscribeOption is an option of a subscription (Events, WithBuffer,
// WithOverflow, Lend): Channel.Subscribe, Socket.Subscribe, Channel.Events,
// EventsAs and SubscribeAs.
type SubscribeOption interface{ applySubscribe(*subOpts) }

// reqOpts are the options of one request (join, push, send, leave).
type reqOpts struct{ timeout time.Duration }

// subOpts are the options of one subscription.
type subOpts struct {
	events   []string
	buffer   int
	overflow Overflow
	lend     bool
}

// TimeoutOption is the option WithTimeout returns; it serves Join, Push,
// Send and Leave.
type TimeoutOption struct{ d time.Duration }

func (o TimeoutOption) applyJoin(r *reqOpts)  { r.timeout = o.d }
func (o TimeoutOption) applyPush(r *reqOpts)  { r.timeout = o.d }
func (o TimeoutOption) applyLeave(r *reqOpts) { r.timeout = o.d }

// WithTimeout sets the timeout of one Join, Push, Send or Leave, counted
// from the call (Config.Timeout by default; zero or negative means the
// default). The call's ctx may end it earlier.
func WithTimeout(d time.Duration) TimeoutOption { return TimeoutOption{d} }

type subOptFunc func(*subOpts)

func (f subOptFunc) applySubscribe(o *subOpts) { f(o) }

// Events limits a subscription to messages whose event is one of events.
// Without it (or with no events) a subscription receives every event.
// Several Events options add up.
func Events(events ...string) SubscribeOption {
	events = slices.Clone(events)
	return subOptFunc(func(o *subOpts) { o.events = append(o.events, events...) })
}

// WithBuffer sets one subscription's buffer size (Config.SubscriptionBuffer
// by default; zero or negative means the default).
func WithBuffer(n int) SubscribeOption { return subOptFunc(func(o *subOpts) { o.buffer = n }) }

// WithOverflow sets one subscription's overflow policy (Config.Overflow by
// default).
func WithOverflow(p Overflow) SubscribeOption {
	return subOptFunc(func(o *subOpts) { o.overflow = p })
}

func (s *Socket) joinOpts(opts []JoinOption) reqOpts {
	return collectOpts(s, opts, JoinOption.applyJoin)
}

func (s *Socket) pushOpts(opts []PushOption) reqOpts {
	return collectOpts(s, opts, PushOption.applyPush)
}

func (s *Socket) leaveOpts(opts []LeaveOption) reqOpts {
	return collectOpts(s, opts, LeaveOption.applyLeave)
}

// collectOpts applies a call's options (nil ones skipped) over the
// socket's defaults.
func collectOpts[O comparable](s *Socket, opts []O, apply func(O, *reqOpts)) reqOpts {
	o := reqOpts{timeout: s.cfg.Timeout}
	var none O
	for _, op := range opts {
		if op != none {
			apply(op, &o)
		}
	}
	return s.reqDefaults(o)
}

func (s *Socket) reqDefaults(o reqOpts) reqOpts {
	if o.timeout <= 0 {
		o.timeout = s.cfg.Timeout
	}
	return o
}

func (s *Socket) subOpts(opts []SubscribeOption) subOpts {
	o := subOpts{buffer: s.cfg.SubscriptionBuffer, overflow: s.cfg.Overflow}
	for _, op := range opts {
		if op != nil {
			op.applySubscribe(&o)
		}
	}
	if o.buffer <= 0 {
		o.buffer = s.cfg.SubscriptionBuffer
	}
	return o
}
