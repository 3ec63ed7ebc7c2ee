package phx

import (
	"context"
	"time"
)

// Observer receives a socket's events as they happen, for adapters that
// turn them into metrics and traces: phx/otelphx for OpenTelemetry and
// phx/expvarphx for expvar are two; a Prometheus one is written the same
// way. Set it in Config.Observer.
//
// The methods are called synchronously from the socket's goroutines (its
// actor, its channels' actors) as each event happens, concurrently from
// different channels. They must be quick, must not block and must not call
// the socket: the socket waits for them. An adapter records into something
// concurrency-safe (atomic counters, an OpenTelemetry SDK) and returns.
//
// Counters that need no event (frames, bytes, gauges) are read from
// Socket.Stats, which costs no lock, by a poller or an asynchronous
// instrument's callback.
type Observer interface {
	// OnStatus receives every status event, also those the Status stream
	// drops because nobody reads it.
	OnStatus(Status)
	// OnJoin receives the outcome of every join and rejoin that was sent.
	OnJoin(JoinEvent)
	// OnPush receives the one outcome of every Channel.Push.
	OnPush(PushEvent)
	// OnHeartbeat receives the round trip of every answered heartbeat.
	OnHeartbeat(rtt time.Duration)
}

// JoinEvent is the outcome of one join (or rejoin) sent to the server.
type JoinEvent struct {
	Topic   string
	JoinRef string
	Rejoin  bool // the channel had joined or tried to before
	Start   time.Time
	// Duration from the join's start (for a rejoin, from when it was
	// sent or queued) to its outcome.
	Duration time.Duration
	// Status is the reply's status; empty when no reply came.
	Status string
	// Err is nil when joined; a *ReplyError when refused; ErrTimeout; or,
	// for a join abandoned before its reply, the reason (ErrDisconnected,
	// ErrLeft, ErrClosed).
	Err error
}

// PushEvent is the outcome of one Channel.Push.
type PushEvent struct {
	// Context is the ctx the Push was called with, so that a tracing
	// adapter can make the push's span a child of the caller's.
	Context context.Context
	Topic   string
	Event   string
	Ref     string // empty when it was never sent
	JoinRef string
	Size    int  // payload bytes
	Binary  bool // a binary payload
	Sent    bool // the frame was written
	Start   time.Time
	// Duration from the Push call to its outcome.
	Duration time.Duration
	// Status is the reply's status; empty when no reply came.
	Status string
	// Err is the error Push returned: nil for an "ok" reply, *ReplyError,
	// ErrTimeout, ErrDisconnected, ErrLeft, ErrClosed, context.Canceled...
	Err error
}

// MultiObserver returns an Observer that calls each of obs in turn (nil
// ones skipped).
func MultiObserver(obs ...Observer) Observer {
	var m multiObserver
	for _, o := range obs {
		if o != nil {
			m = append(m, o)
		}
	}
	return m
}

type multiObserver []Observer

func (m multiObserver) OnStatus(st Status) {
	for _, o := range m {
		o.OnStatus(st)
	}
}

func (m multiObserver) OnJoin(ev JoinEvent) {
	for _, o := range m {
		o.OnJoin(ev)
	}
}

func (m multiObserver) OnPush(ev PushEvent) {
	for _, o := range m {
		o.OnPush(ev)
	}
}

func (m multiObserver) OnHeartbeat(d time.Duration) {
	for _, o := range m {
		o.OnHeartbeat(d)
	}
}

// noteStatus logs and observes a status event before it enters the
// stream.
func (s *Socket) noteStatus(st Status) {
	s.logStatus(st)
	if o := s.cfg.Observer; o != nil {
		o.OnStatus(st)
	}
}

// heartbeatDone records an answered heartbeat.
func (s *Socket) heartbeatDone(rtt time.Duration) {
	s.stats.heartbeatRTT(rtt)
	if o := s.cfg.Observer; o != nil {
		o.OnHeartbeat(rtt)
	}
}

// observePush reports a user push's outcome; called by resolve.
func (ca *chanActor) observePush(p *push, r *pushResult) {
	o := ca.s.cfg.Observer
	if o == nil || (p.kind != kindUser && p.kind != kindSend) {
		return
	}
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ev := PushEvent{
		Context: ctx, Topic: ca.ch.topic, Event: p.event, Size: len(p.payload), Binary: p.binary,
		Sent: p.sent, Start: p.start, Duration: time.Since(p.start), Status: r.reply.Status, Err: r.err,
	}
	if p.sent {
		ev.Ref, ev.JoinRef = p.ref, p.joinRef
	}
	o.OnPush(ev)
}

// observeJoin reports the outcome of the join push p, once; status is the
// reply's, err nil when joined.
func (ca *chanActor) observeJoin(p *push, status string, err error) {
	o := ca.s.cfg.Observer
	if o == nil || p == nil || !p.sent || p.observed {
		return
	}
	p.observed = true
	o.OnJoin(JoinEvent{
		Topic: ca.ch.topic, JoinRef: p.joinRef, Rejoin: p.rejoin, Start: p.start,
		Duration: time.Since(p.start), Status: status, Err: err,
	})
}

// abandonedJoin is why a sent join push is being dropped without an
// outcome of its own.
func (ca *chanActor) abandonedJoin() error {
	switch {
	case ca.final != nil:
		return ca.final
	case ca.state == ChannelLeaving:
		return ErrLeft
	}
	return ErrDisconnected
}
