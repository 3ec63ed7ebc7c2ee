// Package hdr is a log-linear latency histogram in the manner of
// HdrHistogram: every value from 1 µs to about twelve days is kept with a
// relative error under 1/128 (0.8 %), so the tail (p99.9, max) is as
// precise as the median; recording is lock-free; and two histograms merge
// exactly by adding their counts, which is how runs taken on several
// machines become one.
//
// Layout: values are microseconds. Below 256 every value has its own
// bucket; above, each power of two is cut into 128 equal buckets. A bucket
// index is e<<7 + v>>e with e = max(0, bitlen(v)-8).
package hdr

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	// PrecisionBits is the number of sub-bucket bits: 2^7 buckets per power
	// of two. It is written into the JSON so that a merge can check it.
	PrecisionBits = 7
	subCount      = 1 << PrecisionBits
	maxValue      = 1<<40 - 1 // µs, about 12.7 days; larger values are clamped
	numBuckets    = (40-PrecisionBits-1)*subCount + 2*subCount
)

func index(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	e := max(0, bits.Len64(uint64(v))-PrecisionBits-1)
	return e<<PrecisionBits + int(v>>e)
}

// bounds returns the lowest and highest value that fall in bucket i.
func bounds(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	e := i>>PrecisionBits - 1
	m := int64(i - e<<PrecisionBits)
	return m << e, (m+1)<<e - 1
}

// Histogram records durations from any number of goroutines at once.
// The zero value is empty and ready.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // stored as value+1 so that zero means none
	max    atomic.Int64
}

// Record adds one duration (negative counts as zero).
func (h *Histogram) Record(d time.Duration) {
	v := min(max(d.Microseconds(), 0), maxValue)
	h.counts[index(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.min.Load()
		if m != 0 && m-1 <= v || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
	for {
		m := h.max.Load()
		if m >= v || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Snapshot copies the histogram. Values recorded during the copy may or may
// not be in it; they are never lost from the Histogram.
func (h *Histogram) Snapshot() *Snapshot {
	s := &Snapshot{counts: make([]uint64, numBuckets)}
	for i := range s.counts {
		s.counts[i] = h.counts[i].Load()
		s.N += s.counts[i]
	}
	s.Sum = h.sum.Load()
	if m := h.min.Load(); m > 0 {
		s.Min = m - 1
	}
	s.Max = h.max.Load()
	return s
}

// Snapshot is a histogram at rest: it can be queried, merged, subtracted and
// written as JSON. Values are microseconds. Not safe for concurrent use.
type Snapshot struct {
	counts []uint64
	N      uint64
	Sum    uint64
	Min    int64
	Max    int64
}

// New returns an empty Snapshot.
func New() *Snapshot { return &Snapshot{counts: make([]uint64, numBuckets)} }

// Merge adds o's values to s.
func (s *Snapshot) Merge(o *Snapshot) {
	if o == nil || o.N == 0 {
		return
	}
	if s.N == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	s.Max = max(s.Max, o.Max)
	for i, c := range o.counts {
		s.counts[i] += c
	}
	s.N += o.N
	s.Sum += o.Sum
}

// Since returns the values s holds that prev (an earlier snapshot of the
// same Histogram) did not: an interval. Its Min and Max are bucket bounds.
func (s *Snapshot) Since(prev *Snapshot) *Snapshot {
	d := New()
	for i := range s.counts {
		c := s.counts[i]
		if prev != nil {
			c -= prev.counts[i]
		}
		d.counts[i] = c
		d.N += c
	}
	d.Sum = s.Sum
	if prev != nil {
		d.Sum -= prev.Sum
	}
	d.fixBounds()
	return d
}

func (s *Snapshot) fixBounds() {
	s.Min, s.Max = 0, 0
	first := true
	for i, c := range s.counts {
		if c == 0 {
			continue
		}
		lo, hi := bounds(i)
		if first {
			s.Min, first = lo, false
		}
		s.Max = hi
	}
}

// Quantile returns the value at quantile q (0 to 1): the highest value of
// the bucket that holds it, no more than Max. Zero when empty.
func (s *Snapshot) Quantile(q float64) time.Duration {
	if s.N == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(s.Min) * time.Microsecond
	}
	rank := uint64(math.Ceil(q * float64(s.N)))
	rank = min(max(rank, 1), s.N)
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			_, hi := bounds(i)
			return time.Duration(min(hi, s.Max)) * time.Microsecond
		}
	}
	return time.Duration(s.Max) * time.Microsecond
}

// Mean is the arithmetic mean, exact (sums are kept, not bucketed).
func (s *Snapshot) Mean() time.Duration {
	if s.N == 0 {
		return 0
	}
	return time.Duration(s.Sum/s.N) * time.Microsecond
}

// jsonSnapshot is the JSON form. The percentiles are for people and jq;
// merging reads only count, sum, min, max and buckets.
type jsonSnapshot struct {
	Unit          string      `json:"unit"`
	PrecisionBits int         `json:"precision_bits"`
	Count         uint64      `json:"count"`
	Sum           uint64      `json:"sum_us"`
	Min           int64       `json:"min_us"`
	Mean          int64       `json:"mean_us"`
	P50           int64       `json:"p50_us"`
	P90           int64       `json:"p90_us"`
	P99           int64       `json:"p99_us"`
	P999          int64       `json:"p999_us"`
	Max           int64       `json:"max_us"`
	Buckets       [][2]uint64 `json:"buckets"` // [lowest value in µs, count], non-empty buckets only
}

// MarshalJSON writes the non-empty buckets with their lowest value, so the
// JSON is small and any reader can rebuild the histogram.
func (s *Snapshot) MarshalJSON() ([]byte, error) {
	j := jsonSnapshot{
		Unit: "us", PrecisionBits: PrecisionBits, Count: s.N, Sum: s.Sum, Min: s.Min, Max: s.Max,
		Mean: s.Mean().Microseconds(),
		P50:  s.Quantile(0.5).Microseconds(), P90: s.Quantile(0.9).Microseconds(),
		P99: s.Quantile(0.99).Microseconds(), P999: s.Quantile(0.999).Microseconds(),
		Buckets: [][2]uint64{},
	}
	for i, c := range s.counts {
		if c != 0 {
			lo, _ := bounds(i)
			j.Buckets = append(j.Buckets, [2]uint64{uint64(lo), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote, checking that the layout and
// the counts agree.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var j jsonSnapshot
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.Unit != "us" || j.PrecisionBits != PrecisionBits {
		return fmt.Errorf("histogram in unit %q with %d precision bits; want \"us\" and %d", j.Unit, j.PrecisionBits, PrecisionBits)
	}
	*s = Snapshot{counts: make([]uint64, numBuckets), Sum: j.Sum, Min: j.Min, Max: j.Max}
	for _, b := range j.Buckets {
		if b[0] > maxValue {
			return fmt.Errorf("histogram bucket value %d out of range", b[0])
		}
		s.counts[index(int64(b[0]))] += b[1]
		s.N += b[1]
	}
	if s.N != j.Count {
		return fmt.Errorf("histogram buckets hold %d values, count says %d", s.N, j.Count)
	}
	return nil
}

// Bucket is one non-empty bucket: Lo to Hi µs inclusive, N values.
type Bucket struct {
	Lo, Hi int64
	N      uint64
}

// Buckets lists the non-empty buckets in increasing order.
func (s *Snapshot) Buckets() []Bucket {
	var out []Bucket
	for i, c := range s.counts {
		if c != 0 {
			lo, hi := bounds(i)
			out = append(out, Bucket{lo, hi, c})
		}
	}
	return out
}
