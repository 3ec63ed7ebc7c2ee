package managed

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/phx"
)

// Push is one push as the caller configures it. Only Topic and Event are
// required.
type Push struct {
	Topic string
	Event string
	// Payload is any JSON-marshalable value, json.RawMessage, or []byte for
	// a binary frame. nil sends {}.
	Payload any
	// Timeout for each try. Zero: Config.PushTimeout.
	Timeout time.Duration
	// Retry is what to do when a try times out. Zero: Drop.
	Retry Retry
	// Ref is the caller's own label to find the push again (Match,
	// RefIs); it is not the wire ref and need not be unique.
	Ref string
}

// PushState is where a push is.
type PushState int

const (
	// Queued: waiting for its channel to join (or for its turn on it).
	Queued PushState = iota
	// InFlight: handed to the channel, no reply yet.
	InFlight
	// TimedOut: timed out, waiting to be retried at RetryAt.
	TimedOut
)

func (s PushState) String() string {
	switch s {
	case Queued:
		return "queued"
	case InFlight:
		return "in flight"
	case TimedOut:
		return "timed out"
	}
	return "unknown"
}

// PushInfo is a snapshot of one waiting push.
type PushInfo struct {
	Push    Push
	State   PushState
	Attempt int       // tries so far
	RetryAt time.Time // when TimedOut
}

// Match selects pushes by their config. It runs on the client's goroutine
// and must not call the client.
type Match func(Push) bool

// TopicIs matches pushes to topic.
func TopicIs(topic string) Match { return func(p Push) bool { return p.Topic == topic } }

// EventIs matches pushes of event.
func EventIs(event string) Match { return func(p Push) bool { return p.Event == event } }

// RefIs matches pushes labelled ref.
func RefIs(ref string) Match { return func(p Push) bool { return p.Ref == ref } }

// AllOf matches pushes that every m matches (all pushes when none).
func AllOf(ms ...Match) Match {
	return func(p Push) bool {
		for _, m := range ms {
			if !m(p) {
				return false
			}
		}
		return true
	}
}

// pushRec is one push inside the actor.
type pushRec struct {
	cfg      Push
	state    PushState
	attempt  int
	try      int // generation of the current try; a result of another is stale
	retryAt  time.Time
	sched    backoff.BackOff
	cancel   context.CancelFunc // of the try in flight
	waiter   chan pushResult    // a blocking Push, or nil
	canceled bool
}

type pushResult struct {
	reply phx.Reply
	err   error
}

func (p *pushRec) info() PushInfo {
	return PushInfo{Push: p.cfg, State: p.state, Attempt: p.attempt, RetryAt: p.retryAt}
}

func (p *pushRec) resolve(r pushResult) {
	if p.waiter != nil {
		p.waiter <- r // capacity 1, resolved once
		p.waiter = nil
	}
}
