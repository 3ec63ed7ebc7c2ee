package phx

import (
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// phoenix.js's schedules; the last step repeats forever.
var (
	reconnectSteps = []time.Duration{10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000}
	rejoinSteps    = []time.Duration{1000, 2000, 5000, 10000}
)

// steps is a backoff.BackOff walking a fixed list of delays (in
// milliseconds) and repeating the last one. It never returns backoff.Stop.
// Like every backoff.BackOff it is not safe for concurrent use: the socket
// actor owns each instance.
type steps struct {
	ms     []time.Duration
	jitter float64
	i      int
}

func newSteps(ms []time.Duration, jitter float64) *steps { return &steps{ms: ms, jitter: jitter} }

func (s *steps) NextBackOff() time.Duration {
	d := s.ms[min(s.i, len(s.ms)-1)] * time.Millisecond
	if s.i < len(s.ms) {
		s.i++
	}
	if s.jitter > 0 {
		delta := s.jitter * float64(d)
		d = time.Duration(float64(d) - delta + rand.Float64()*2*delta)
	}
	return d
}

func (s *steps) Reset() { s.i = 0 }

var _ backoff.BackOff = (*steps)(nil)
