package hdr

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBucketsCoverEveryValue(t *testing.T) {
	t.Parallel()
	// Consecutive buckets tile the range with no gap and no overlap, and each
	// bucket is at most 1/128 of its lowest value wide.
	next := int64(0)
	for i := range numBuckets {
		lo, hi := bounds(i)
		if lo != next || hi < lo {
			t.Fatalf("bucket %d is [%d,%d], want to start at %d", i, lo, hi, next)
		}
		if lo >= 256 && float64(hi-lo+1)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/128", i, lo, hi)
		}
		if index(lo) != i || index(hi) != i {
			t.Fatalf("bucket %d: index(%d)=%d index(%d)=%d", i, lo, index(lo), hi, index(hi))
		}
		next = hi + 1
	}
	if next != maxValue+1 {
		t.Fatalf("buckets end at %d, want %d", next, maxValue+1)
	}
	if index(-5) != 0 || index(maxValue*2) != numBuckets-1 {
		t.Fatal("out-of-range values not clamped")
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	t.Parallel()
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 100000)
	for i := range vals {
		// Log-uniform from 10 µs to 10 s: a latency distribution with a tail.
		vals[i] = int64(10 * math.Pow(1e6, r.Float64()))
		h.Record(time.Duration(vals[i]) * time.Microsecond)
	}
	slices.Sort(vals)
	s := h.Snapshot()
	if s.N != uint64(len(vals)) || s.Min != vals[0] || s.Max != vals[len(vals)-1] {
		t.Fatalf("n %d min %d max %d, want %d %d %d", s.N, s.Min, s.Max, len(vals), vals[0], vals[len(vals)-1])
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := vals[int(q*float64(len(vals)))-1]
		got := s.Quantile(q).Microseconds()
		if got < want || float64(got-want) > float64(want)/128+1 {
			t.Errorf("p%v = %d µs, exact %d µs", q*100, got, want)
		}
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	t.Parallel()
	var a, b, both Histogram
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		d := time.Duration(r.ExpFloat64()*2000) * time.Microsecond
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		both.Record(d)
	}
	m := New()
	m.Merge(a.Snapshot())
	m.Merge(b.Snapshot())
	w := both.Snapshot()
	if !slices.Equal(m.counts, w.counts) || m.N != w.N || m.Sum != w.Sum || m.Min != w.Min || m.Max != w.Max {
		t.Fatalf("merged %+v differs from recorded together %+v", m.N, w.N)
	}
}

func TestJSONRoundTripThenMerge(t *testing.T) {
	t.Parallel()
	var h Histogram
	for _, us := range []int64{0, 1, 255, 256, 1000, 123456, 9999999} {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	s := h.Snapshot()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.counts, s.counts) || back.N != 7 || back.Min != 0 || back.Max != 9999999 || back.Sum != s.Sum {
		t.Fatalf("round trip lost data: %s", b)
	}
	back.Merge(s)
	if back.N != 14 || back.Quantile(1) != 9999999*time.Microsecond {
		t.Fatalf("merge after round trip: n %d max %v", back.N, back.Quantile(1))
	}
	for _, bad := range []string{
		`{"unit":"ms","precision_bits":7,"count":0,"buckets":[]}`,
		`{"unit":"us","precision_bits":5,"count":0,"buckets":[]}`,
		`{"unit":"us","precision_bits":7,"count":3,"buckets":[[10,2]]}`,
		`{"unit":"us","precision_bits":7,"count":1,"buckets":[[99999999999999,1]]}`,
	} {
		var s Snapshot
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestSinceIsTheInterval(t *testing.T) {
	t.Parallel()
	var h Histogram
	h.Record(time.Millisecond)
	first := h.Snapshot()
	h.Record(5 * time.Second)
	h.Record(5 * time.Second)
	d := h.Snapshot().Since(first)
	if d.N != 2 || d.Quantile(0.5) < 5*time.Second || d.Min < 5000000-5000000/128 {
		t.Fatalf("interval n %d p50 %v min %d", d.N, d.Quantile(0.5), d.Min)
	}
	if e := h.Snapshot().Since(h.Snapshot()); e.N != 0 || e.Quantile(0.99) != 0 {
		t.Fatalf("empty interval n %d", e.N)
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	if s.N != 8000 || s.Min != 0 || s.Max != 7999 {
		t.Fatalf("n %d min %d max %d", s.N, s.Min, s.Max)
	}
}

func TestBucketsListsWhatWasRecorded(t *testing.T) {
	t.Parallel()
	var h Histogram
	for _, us := range []int64{3, 3, 1000, 1001, 70000} {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	bs := h.Snapshot().Buckets()
	var n uint64
	for i, b := range bs {
		n += b.N
		if i > 0 && b.Lo <= bs[i-1].Hi {
			t.Fatalf("buckets out of order: %+v", bs)
		}
	}
	if n != 5 || bs[0] != (Bucket{3, 3, 2}) || bs[len(bs)-1].Lo > 70000 || bs[len(bs)-1].Hi < 70000 {
		t.Fatalf("buckets %+v", bs)
	}
}
