package phx

import (
	"fmt"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	for _, d := range []time.Duration{0, 100 * time.Microsecond, 101 * time.Microsecond, 3 * time.Millisecond, time.Second, time.Minute} {
		h.observe(d)
	}
	var s Histogram
	h.snapshot(&s)
	want := [NumBuckets]uint64{0: 2, 1: 1, 5: 1, 12: 1, 16: 1}
	if s.Counts != want || s.Count != 6 {
		t.Fatalf("counts %v count %d", s.Counts, s.Count)
	}
	if s.Sum != 201*time.Microsecond+3*time.Millisecond+time.Second+time.Minute {
		t.Fatalf("sum %v", s.Sum)
	}
	for q, want := range map[float64]time.Duration{0.1: 100 * time.Microsecond, 0.5: 250 * time.Microsecond, 0.6: 5 * time.Millisecond, 0.8: time.Second, 1: 10 * time.Second} {
		if got := s.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if (Histogram{}).Quantile(0.5) != 0 || (Histogram{}).Mean() != 0 {
		t.Fatal("empty histogram")
	}
	if b := HistogramBounds(); b[0] != 100*time.Microsecond || b[len(b)-1] != 10*time.Second {
		t.Fatalf("bounds %v", b)
	}
}

func TestHeartbeatMean(t *testing.T) {
	t.Parallel()
	var st sockStats
	st.heartbeatRTT(80 * time.Millisecond)
	st.heartbeatRTT(160 * time.Millisecond)
	if l, m := time.Duration(st.hbLast.Load()), time.Duration(st.hbMean.Load()); l != 160*time.Millisecond || m != 90*time.Millisecond {
		t.Fatalf("last %v mean %v", l, m)
	}
}

func TestCauseOf(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]Cause{
		ErrHeartbeatTimeout:                   CauseHeartbeatTimeout,
		fmt.Errorf("%w: x", ErrProtocol):      CauseProtocol,
		&DialError{URL: "u", Err: ErrTimeout}: CauseDial,
		&CloseError{Code: 1001}:               CauseServerClose,
		&CloseError{Code: 1006}:               CauseError,
		ErrTimeout:                            CauseError,
	} {
		if got := CauseOf(err); got != want {
			t.Errorf("CauseOf(%v) = %v, want %v", err, got, want)
		}
	}
}
