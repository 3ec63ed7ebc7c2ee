package actor

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// ErrFull is returned by TryPut when the queue holds its maximum.
var ErrFull = errors.New("actor: queue full")

// Queue is a bounded multi-producer, single-consumer queue that hands its
// items over in batches. It is for hot paths where a channel operation per
// item costs too much, such as a connection's reader feeding its socket
// actor, or a socket handing frames to a channel actor: producers append
// under a short lock, and the consumer, woken by Ready, takes everything
// queued at once with Drain, in order.
//
// Concurrency: Put, TryPut, TryPutKey, Force, Wake, Space, Admit, Revoke
// and Close may be called from any number of goroutines; Ready and Drain
// belong to the one consumer. The lock is held only to append or to swap
// the buffer, never while blocking.
// Put blocks while the queue holds max items, until the consumer drains it,
// the queue is closed or ctx is done; a producer that must never block uses
// TryPut and, when it may wait, selects on Space.
//
// A Queue costs a few dozen bytes and one channel while idle: the item
// buffer and the channel producers wait on are allocated only when needed.
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	max    int
	closed bool
	space  chan struct{} // closed when a full queue is drained; nil until someone waits
	ready  chan struct{} // one token: items may be waiting
	// tickets are the keys of answers the consumer waits for: each lets
	// one item with that key past max (see TryPutKey).
	tickets []string
}

// NewQueue returns a queue holding at most max items (at least 1).
func NewQueue[T any](max int) *Queue[T] {
	if max < 1 {
		max = 1
	}
	return &Queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// NewQueueSharing returns a queue holding at most max items (at least 1)
// whose Ready channel is other's: one token for both, so that their
// consumer waits on a single channel (an idle actor parked on fewer
// channels keeps fewer runtime wait records) and drains both queues
// whenever a token comes.
func NewQueueSharing[T, U any](max int, other *Queue[U]) *Queue[T] {
	if max < 1 {
		max = 1
	}
	return &Queue[T]{max: max, ready: other.ready}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Put appends v, waiting for room while the queue is full. It returns
// ctx.Err() if ctx is done first and ErrStopped if the queue is closed; v is
// then not queued.
func (q *Queue[T]) Put(ctx context.Context, v T) error {
	for {
		err := q.TryPut(v)
		if err != ErrFull {
			return err
		}
		select {
		case <-q.Space():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TryPut appends v if there is room now. It returns ErrFull when the queue
// holds max items and ErrStopped when it is closed.
func (q *Queue[T]) TryPut(v T) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrStopped
	}
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return ErrFull
	}
	q.appendLocked(v)
	return nil
}

// Force appends v even past max. It is for the few items a producer must
// never drop and whose number is bounded elsewhere (answers to requests
// the consumer made). It returns ErrStopped when the queue is closed.
func (q *Queue[T]) Force(v T) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrStopped
	}
	q.appendLocked(v)
	return nil
}

// TryPutKey appends v if there is room now, or past max when the consumer
// holds a ticket for key (Admit), which v then uses up. It returns ErrFull
// otherwise and ErrStopped when the queue is closed. So a queue full of
// items nobody asked for still takes the answers its consumer waits for,
// and only those: what passes max is bounded by the tickets.
func (q *Queue[T]) TryPutKey(v T, key string) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrStopped
	}
	if len(q.items) >= q.max {
		i := slices.Index(q.tickets, key)
		if i < 0 {
			q.mu.Unlock()
			return ErrFull
		}
		q.dropTicketLocked(i)
	}
	q.appendLocked(v)
	return nil
}

// Admit gives key a ticket past the bound (see TryPutKey). The consumer
// calls it before it asks for an answer with that key, and Revoke once it
// no longer waits for it.
func (q *Queue[T]) Admit(key string) {
	q.mu.Lock()
	q.tickets = append(q.tickets, key)
	q.mu.Unlock()
}

// Revoke withdraws key's ticket if it was not used.
func (q *Queue[T]) Revoke(key string) {
	q.mu.Lock()
	if i := slices.Index(q.tickets, key); i >= 0 {
		q.dropTicketLocked(i)
	}
	q.mu.Unlock()
}

func (q *Queue[T]) dropTicketLocked(i int) {
	q.tickets = slices.Delete(q.tickets, i, i+1)
	if len(q.tickets) == 0 && cap(q.tickets) > 8 {
		q.tickets = nil // a burst of requests is over: keep no array
	}
}

// appendLocked appends v and unlocks.
func (q *Queue[T]) appendLocked(v T) {
	q.items = append(q.items, v)
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		// The consumer drains everything after taking the token, so one
		// token per empty→non-empty transition suffices.
		q.Wake()
	}
}

// Wake gives the consumer a Ready token without queuing anything, for a
// producer that changed something else the consumer looks at when it wakes.
func (q *Queue[T]) Wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Space is closed once the queue may have room: at once when it is not
// full or is closed, otherwise at the next Drain or Close.
func (q *Queue[T]) Space() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.items) < q.max {
		return closedChan
	}
	if q.space == nil {
		q.space = make(chan struct{})
	}
	return q.space
}

// Close makes every later Put, TryPut and Force fail with ErrStopped and
// wakes waiting producers. Items still queued stay for Drain. Idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	q.mu.Unlock()
}

// Ready yields a token when items may be waiting; the consumer then calls
// Drain. A token may find the queue empty.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Drain returns every queued item, oldest first, and keeps buf (cleared)
// as the queue's next storage, so that a consumer alternating two buffers
// allocates nothing. The returned slice belongs to the caller until it is
// passed back as buf; a consumer that wants an idle queue to hold no
// memory passes nil.
func (q *Queue[T]) Drain(buf []T) []T {
	clear(buf) // drop the references of the last batch
	q.mu.Lock()
	items := q.items
	q.items = buf[:0]
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	q.mu.Unlock()
	return items
}

// Len is the number of queued items.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
