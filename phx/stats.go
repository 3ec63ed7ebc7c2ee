package phx

import (
	"sync/atomic"
	"time"
)

// sockStats are the counters beyond the original set. Each is written by
// the goroutine that owns the event it counts (a connection's reader or
// writer, the socket actor, a channel actor) with an atomic add, and read
// by Stats with atomic loads: no lock, no allocation.
type sockStats struct {
	sent, bytesIn, bytesOut                               atomic.Uint64
	pushesSent, pushesReplied, pushesErrored, pushesTimed atomic.Uint64
	joins, rejoins                                        atomic.Uint64
	lost                                                  [NumCauses]atomic.Uint64
	channels, subs                                        atomic.Int64
	hbLast, hbMean                                        atomic.Int64 // nanoseconds
	pushLatency, heartbeat                                histogram
}

func (st *sockStats) fill(out *Stats) {
	out.Sent = st.sent.Load()
	out.BytesReceived = st.bytesIn.Load()
	out.BytesSent = st.bytesOut.Load()
	out.PushesSent = st.pushesSent.Load()
	out.PushesReplied = st.pushesReplied.Load()
	out.PushesErrored = st.pushesErrored.Load()
	out.PushesTimedOut = st.pushesTimed.Load()
	out.Joins = st.joins.Load()
	out.Rejoins = st.rejoins.Load()
	for i := range st.lost {
		out.ReconnectsBy[i] = st.lost[i].Load()
	}
	out.Channels = st.channels.Load()
	out.Subscriptions = st.subs.Load()
	out.HeartbeatLast = time.Duration(st.hbLast.Load())
	out.HeartbeatMean = time.Duration(st.hbMean.Load())
	st.pushLatency.snapshot(&out.PushLatency)
	st.heartbeat.snapshot(&out.HeartbeatRTT)
}

// heartbeatRTT records a heartbeat's round trip; socket actor only, so the
// mean needs no compare-and-swap. The mean weighs the newest sample 1/8, as
// TCP's smoothed round-trip time does.
func (st *sockStats) heartbeatRTT(d time.Duration) {
	st.hbLast.Store(int64(d))
	m := st.hbMean.Load()
	if m == 0 {
		m = int64(d)
	} else {
		m += (int64(d) - m) / 8
	}
	st.hbMean.Store(m)
	st.heartbeat.observe(d)
}

// channelState moves the joined-channels gauge as a channel goes from one
// state to another.
func (st *sockStats) channelState(from, to ChannelState) {
	switch {
	case from != ChannelJoined && to == ChannelJoined:
		st.channels.Add(1)
	case from == ChannelJoined && to != ChannelJoined:
		st.channels.Add(-1)
	}
}

// histBounds are the upper bounds of the latency histograms' buckets.
var histBounds = [NumBuckets - 1]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// NumBuckets is the number of buckets of a Histogram: one per bound of
// HistogramBounds and one for longer durations.
const NumBuckets = 17

// HistogramBounds returns the upper bounds of a Histogram's buckets, from
// 100 µs to 10 s in 1, 2.5, 5 steps.
func HistogramBounds() [NumBuckets - 1]time.Duration { return histBounds }

// Histogram is a snapshot of a latency distribution in fixed buckets:
// Counts[i] counts durations d with HistogramBounds()[i-1] < d ≤
// HistogramBounds()[i]; the last bucket counts those above 10 s. It is a
// value: reading it allocates nothing.
type Histogram struct {
	Counts [NumBuckets]uint64
	Count  uint64        // the sum of Counts
	Sum    time.Duration // of every duration counted
}

// Mean is Sum / Count (zero when empty).
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Quantile is the upper bound of the bucket holding the q-quantile (0 < q
// ≤ 1): an estimate from above, within one bucket. Zero when empty; for the
// last bucket, which has no bound, the largest bound.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q*float64(h.Count) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var n uint64
	for i, c := range h.Counts {
		n += c
		if n >= rank {
			if i < len(histBounds) {
				return histBounds[i]
			}
			break
		}
	}
	return histBounds[len(histBounds)-1]
}

// histogram is the live form of a Histogram: atomic buckets any goroutine
// may add to.
type histogram struct {
	counts [NumBuckets]atomic.Uint64
	sum    atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(histBounds) && d > histBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// snapshot reads the buckets without a lock: taken during an update, it may
// hold the new count but not yet its duration in Sum.
func (h *histogram) snapshot(out *Histogram) {
	out.Count = 0
	for i := range h.counts {
		c := h.counts[i].Load()
		out.Counts[i] = c
		out.Count += c
	}
	out.Sum = time.Duration(h.sum.Load())
}

// taken counts sub as open once its owning actor has it; finish uncounts
// it. Owning actor only.
func (sub *Subscription) taken() {
	if !sub.counted && !sub.closed {
		sub.counted = true
		sub.s.stats.subs.Add(1)
		if sub.lend {
			sub.s.nLend.Add(1)
		}
	}
}
