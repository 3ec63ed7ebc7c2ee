package actor

import (
	"context"
	"sync"
)

// Queue is a bounded multi-producer, single-consumer queue that hands its
// items over in batches. It is for hot paths where a channel operation per
// item costs too much, such as a connection's reader feeding its socket
// actor: producers append under a short lock, and the consumer, woken by
// Ready, takes everything queued at once with Drain, in order.
//
// Concurrency: Put may be called from any number of goroutines; Ready and
// Drain belong to the one consumer. The lock is held only to append or to
// swap the buffer, never while blocking. Put blocks while the queue holds
// max items, until the consumer drains it or ctx is done.
type Queue[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
	space chan struct{} // closed and replaced when a full queue is drained
	ready chan struct{} // one token: items may be waiting
}

// NewQueue returns a queue holding at most max items (at least 1).
func NewQueue[T any](max int) *Queue[T] {
	if max < 1 {
		max = 1
	}
	return &Queue[T]{max: max, space: make(chan struct{}), ready: make(chan struct{}, 1)}
}

// Put appends v, waiting for room while the queue is full. It returns
// ctx.Err() if ctx is done first; v is then not queued.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	for {
		q.mu.Lock()
		if len(q.items) < q.max {
			q.items = append(q.items, v)
			first := len(q.items) == 1
			q.mu.Unlock()
			if first {
				// The consumer drains everything after taking the token, so
				// one token per empty→non-empty transition suffices.
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return nil
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Ready yields a token when items may be waiting; the consumer then calls
// Drain. A token may find the queue empty.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Drain returns every queued item, oldest first, and keeps buf (cleared)
// as the queue's next storage, so that a consumer alternating two buffers
// allocates nothing. The returned slice belongs to the caller until it is
// passed back as buf.
func (q *Queue[T]) Drain(buf []T) []T {
	clear(buf) // drop the references of the last batch
	q.mu.Lock()
	items := q.items
	q.items = buf[:0]
	if len(items) >= q.max {
		close(q.space)
		q.space = make(chan struct{})
	}
	q.mu.Unlock()
	return items
}
