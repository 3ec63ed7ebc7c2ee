package actor_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/phxgo/phxgo/actor"
)

func TestQueueOrderAndBatches(t *testing.T) {
	t.Parallel()
	q := actor.NewQueue[int](4)
	ctx := context.Background()
	for i := range 3 {
		if err := q.Put(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	<-q.Ready()
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
	ctx := context.Background()
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
		go func() { defer wg.Done(); _ = q.Put(ctx, 10+i) }()
	}
	seen := 0
	var buf []int
	for seen < 5 {
		<-q.Ready()
		items := q.Drain(buf)
		seen += len(items)
		buf = items
	}
	wg.Wait()
}

func TestQueueConcurrentProducersKeepPerProducerOrder(t *testing.T) {
	t.Parallel()
	const producers, each = 4, 10000
	q := actor.NewQueue[[2]int](64)
	ctx := context.Background()
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
		<-q.Ready()
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
	wg.Wait()
}
