package managed

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Retry is what the client does with a push that timed out: drop it, or send
// it again after a delay taken from a backoff.BackOff. The zero Retry is
// Drop. Each push gets a fresh schedule, owned by the client's actor.
type Retry struct {
	next func() backoff.BackOff
}

// Drop gives up on a push at its first timeout (the default).
func Drop() Retry { return Retry{} }

// Every retries a timed-out push every d, without end (until it is
// answered or dropped with DropPush). d <= 0 is Drop.
func Every(d time.Duration) Retry {
	if d <= 0 {
		return Drop()
	}
	return Retry{next: func() backoff.BackOff { return backoff.NewConstantBackOff(d) }}
}

// Backoff retries after delays[0], then delays[1], and so on. Once the list
// is used up it retries every max; with max <= 0 it drops the push instead,
// which caps the number of retries at len(delays).
func Backoff(delays []time.Duration, max time.Duration) Retry {
	ds := append([]time.Duration(nil), delays...)
	return Retry{next: func() backoff.BackOff { return &listBackOff{delays: ds, max: max} }}
}

// Custom retries on any backoff.BackOff schedule; a schedule that returns
// backoff.Stop drops the push. f is called once per push.
func Custom(f func() backoff.BackOff) Retry { return Retry{next: f} }

func (r Retry) schedule() backoff.BackOff {
	if r.next == nil {
		return &backoff.StopBackOff{}
	}
	return r.next()
}

// listBackOff walks a list of delays, then repeats max (or stops).
// Not safe for concurrent use: one push's schedule, owned by the actor.
type listBackOff struct {
	delays []time.Duration
	max    time.Duration
	i      int
}

func (b *listBackOff) NextBackOff() time.Duration {
	if b.i < len(b.delays) {
		d := b.delays[b.i]
		b.i++
		return d
	}
	if b.max > 0 {
		return b.max
	}
	return backoff.Stop
}

func (b *listBackOff) Reset() { b.i = 0 }
