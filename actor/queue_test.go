package actor_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/phxgo/phxgo/actor"
)

func TestQueueOrderAndBatches(t *testing.T) {
	t.Parallel()
	q := actor.NewQueue[int](4)
	ctx := waitCtx(t)
	for i := range 3 {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	await(t, ctx, q.Ready(), "Ready token after three puts")
	got := q.Drain(nil)
	if len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("drain = %v", got)
	}
	select {
	case <-q.Ready():
		t.Fatal("token without items")
	default:
	}
	if got := q.Drain(nil); len(got) != 0 {
		t.Fatalf("second drain = %v", got)
	}
}

func TestQueueFullBlocksUntilDrainOrContext(t *testing.T) {
	t.Parallel()
	q := actor.NewQueue[int](2)
	ctx := waitCtx(t)
	_ = q.Put(ctx, 1)
	_ = q.Put(ctx, 2)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := q.Put(cctx, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put on full = %v", err)
	}
	// Three blocked producers all get through after drains.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.Put(ctx, 10+i); err != nil {
				t.Errorf("blocked Put = %v", err)
			}
		}()
	}
	seen := 0
	var buf []int
	for seen < 5 {
		await(t, ctx, q.Ready(), fmt.Sprintf("Ready token with %d of 5 items drained", seen))
		items := q.Drain(buf)
		seen += len(items)
		buf = items
	}
	awaitCall(t, ctx, wg.Wait, "return of the three blocked Puts")
	if seen != 5 {
		t.Fatalf("drained %d items, want 5", seen)
	}
}

func TestQueueConcurrentProducersKeepPerProducerOrder(t *testing.T) {
	t.Parallel()
	const producers, each = 4, 10000
	q := actor.NewQueue[[2]int](64)
	ctx := waitCtx(t)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.Put(ctx, [2]int{p, i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, producers)
	total := 0
	var buf [][2]int
	for total < producers*each {
		await(t, ctx, q.Ready(), fmt.Sprintf("Ready token with %d of %d items drained", total, producers*each))
		items := q.Drain(buf)
		for _, it := range items {
			if it[1] != next[it[0]] {
				t.Fatalf("producer %d: got %d, want %d", it[0], it[1], next[it[0]])
			}
			next[it[0]]++
		}
		total += len(items)
		buf = items
	}
	awaitCall(t, ctx, wg.Wait, "return of the producers")
}

func TestQueueTryPutForceSpaceClose(t *testing.T) {
	t.Parallel()
	q := actor.NewQueue[int](2)
	if q.TryPut(1) != nil || q.TryPut(2) != nil {
		t.Fatal("TryPut with room failed")
	}
	if err := q.TryPut(3); !errors.Is(err, actor.ErrFull) {
		t.Fatalf("TryPut on full = %v", err)
	}
	space := q.Space()
	select {
	case <-space:
		t.Fatal("Space closed while full")
	default:
	}
	if err := q.Force(3); err != nil {
		t.Fatalf("Force = %v", err)
	}
	if q.Len() != 3 {
		t.Fatalf("Len = %d", q.Len())
	}
	ctx := waitCtx(t)
	await(t, ctx, q.Ready(), "Ready token after puts")
	if got := q.Drain(nil); len(got) != 3 || got[2] != 3 {
		t.Fatalf("drain = %v", got)
	}
	await(t, ctx, space, "Space closed by a drain") // a drain wakes a producer waiting for room
	select {
	case <-q.Space():
	default:
		t.Fatal("Space of a queue with room is not closed")
	}
	q.Wake()
	select {
	case <-q.Ready():
	default:
		t.Fatal("Wake gave no token")
	}
	_ = q.TryPut(1)
	_ = q.TryPut(2)
	full := q.Space()
	q.Close()
	await(t, ctx, full, "Space closed by Close") // Close wakes waiting producers
	if err := q.TryPut(9); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("TryPut after Close = %v", err)
	}
	if err := q.Force(9); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("Force after Close = %v", err)
	}
	if err := q.Put(context.Background(), 9); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("Put after Close = %v", err)
	}
	if got := q.Drain(nil); len(got) != 2 {
		t.Fatalf("items queued before Close = %v", got)
	}
}

func TestQueueSharingOneToken(t *testing.T) {
	t.Parallel()
	frames := actor.NewQueue[int](4)
	reqs := actor.NewQueueSharing[string](1, frames)
	if reqs.Ready() != frames.Ready() {
		t.Fatal("queues do not share their Ready channel")
	}
	if err := reqs.TryPut("a"); err != nil {
		t.Fatal(err)
	}
	if err := reqs.TryPut("b"); !errors.Is(err, actor.ErrFull) {
		t.Fatalf("second TryPut past its own max = %v", err)
	}
	if err := frames.TryPut(1); err != nil {
		t.Fatal(err)
	}
	// One token for both: after taking it the consumer drains both.
	ctx := waitCtx(t)
	await(t, ctx, frames.Ready(), "Ready token shared by both queues")
	select {
	case <-reqs.Ready():
		t.Fatal("a second token")
	default:
	}
	if got := reqs.Drain(nil); len(got) != 1 || got[0] != "a" {
		t.Fatalf("reqs = %v", got)
	}
	if got := frames.Drain(nil); len(got) != 1 || got[0] != 1 {
		t.Fatalf("frames = %v", got)
	}
	// Either queue wakes the consumer on its own.
	_ = reqs.TryPut("c")
	select {
	case <-frames.Ready():
	default:
		t.Fatal("no token after a put on the sharing queue")
	}
	reqs.Close()
	if err := reqs.TryPut("d"); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("TryPut after Close = %v", err)
	}
	if err := frames.TryPut(2); err != nil {
		t.Fatalf("closing one queue closed the other: %v", err)
	}
}

func TestQueueTicketsLetOnlyAdmittedKeysPastMax(t *testing.T) {
	t.Parallel()
	q := actor.NewQueue[int](1)
	if err := q.TryPutKey(1, "a"); err != nil {
		t.Fatal(err)
	}
	if err := q.TryPutKey(2, "a"); !errors.Is(err, actor.ErrFull) {
		t.Fatalf("no ticket: %v", err)
	}
	q.Admit("a")
	q.Admit("b")
	q.Revoke("b")
	if err := q.TryPutKey(3, "b"); !errors.Is(err, actor.ErrFull) {
		t.Fatalf("revoked ticket: %v", err)
	}
	if err := q.TryPutKey(4, "a"); err != nil {
		t.Fatalf("ticket: %v", err)
	}
	if err := q.TryPutKey(5, "a"); !errors.Is(err, actor.ErrFull) {
		t.Fatalf("used ticket: %v", err)
	}
	if got := q.Drain(nil); len(got) != 2 || got[1] != 4 {
		t.Fatalf("drain = %v", got)
	}
}

// A size below 1 means 1, and a size above 1 is kept: a queue or mailbox
// never refuses its first item and never holds more than asked.
func TestSizesBelowOneMeanOne(t *testing.T) {
	t.Parallel()
	other := actor.NewQueue[int](3)
	for _, tc := range []struct {
		name string
		q    *actor.Queue[int]
		max  int
	}{
		{"NewQueue(0)", actor.NewQueue[int](0), 1},
		{"NewQueue(-5)", actor.NewQueue[int](-5), 1},
		{"NewQueue(3)", other, 3},
		{"NewQueueSharing(0)", actor.NewQueueSharing[int](0, other), 1},
		{"NewQueueSharing(2)", actor.NewQueueSharing[int](2, other), 2},
	} {
		for i := range tc.max {
			if err := tc.q.TryPut(i); err != nil {
				t.Fatalf("%s: item %d refused: %v", tc.name, i+1, err)
			}
		}
		if err := tc.q.TryPut(tc.max); !errors.Is(err, actor.ErrFull) {
			t.Fatalf("%s: item %d = %v, want ErrFull", tc.name, tc.max+1, err)
		}
	}
	done := make(chan struct{})
	defer close(done)
	for _, tc := range []struct{ size, max int }{{0, 1}, {-1, 1}, {4, 4}} {
		mb := actor.NewMailbox[int](tc.size, done)
		for i := range tc.max {
			if !mb.TryTell(i) {
				t.Fatalf("NewMailbox(%d): message %d refused", tc.size, i+1)
			}
		}
		if mb.TryTell(tc.max) {
			t.Fatalf("NewMailbox(%d) took %d messages", tc.size, tc.max+1)
		}
	}
}
