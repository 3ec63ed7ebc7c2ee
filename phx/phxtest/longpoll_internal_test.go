package phxtest

import (
	"testing"
	"time"
)

// Phoenix 1.7's long-poll timing is the default: a 10 s window, a 15 s
// idle check (1.5 × window), a 2 s resume timeout; short test windows keep
// a 5 s idle check, and each can be set.
func TestLongPollTimingDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg                  Config
		window, idle, resume time.Duration
	}{
		{Config{}, 10 * time.Second, 15 * time.Second, 2 * time.Second},
		{Config{LongPollWindow: 50 * time.Millisecond}, 50 * time.Millisecond, 5 * time.Second, 2 * time.Second},
		{Config{LongPollWindow: 20 * time.Second}, 20 * time.Second, 30 * time.Second, 2 * time.Second},
		{Config{LongPollWindow: time.Second, LongPollIdle: 3 * time.Second, LongPollResumeTimeout: time.Millisecond},
			time.Second, 3 * time.Second, time.Millisecond},
	} {
		s := New(tc.cfg)
		if s.cfg.LongPollWindow != tc.window || s.lpIdle() != tc.idle || s.lpResumeTimeout() != tc.resume {
			t.Errorf("%+v: window %v, idle %v, resume %v", tc.cfg, s.cfg.LongPollWindow, s.lpIdle(), s.lpResumeTimeout())
		}
		s.Close()
	}
}

// Session tokens are signed: a token this process issued is known, one it
// did not is not.
func TestLongPollTokens(t *testing.T) {
	t.Parallel()
	tok := lpToken(7)
	if !lpTokenValid(tok) {
		t.Fatal("own token refused")
	}
	for _, bad := range []string{"", "invalid-token", tok[:len(tok)-2] + "AA", tok + "A"} {
		if bad != tok && lpTokenValid(bad) {
			t.Fatalf("%q accepted", bad)
		}
	}
	if lpToken(7) == tok {
		t.Fatal("tokens repeat")
	}
}
