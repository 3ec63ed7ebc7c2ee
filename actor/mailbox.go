package actor

import "context"

// Mailbox is a bounded, typed queue into one actor. The actor receives from C
// inside its select loop; everyone else sends with Tell, TryTell or Ask, which
// never block past the caller's ctx or the actor's done channel.
//
// M is normally a sealed sum type: an interface with an unexported marker
// method, handled by a type switch in the actor. Mailboxes never carry `any`.
//
// Concurrency: any number of goroutines may send; exactly one (the owning
// actor) receives. A Mailbox is never closed: the actor's done channel says
// that nobody receives any more.
type Mailbox[M any] struct {
	c    chan M
	done <-chan struct{}
}

// NewMailbox returns a mailbox holding up to size messages (at least 1) for an
// actor whose done channel is done.
func NewMailbox[M any](size int, done <-chan struct{}) Mailbox[M] {
	if size < 1 {
		size = 1
	}
	return Mailbox[M]{c: make(chan M, size), done: done}
}

// C is the receive side, for the owning actor only.
func (m Mailbox[M]) C() <-chan M { return m.c }

// Len is the number of queued messages.
func (m Mailbox[M]) Len() int { return len(m.c) }

// Tell queues msg, waiting for room while neither ctx nor the actor is done.
// It returns ErrStopped if the actor stopped first and ctx.Err() if ctx did.
func (m Mailbox[M]) Tell(ctx context.Context, msg M) error {
	// An actor that has stopped must not take messages that nobody will read,
	// even when the buffer has room.
	select {
	case <-m.done:
		return ErrStopped
	default:
	}
	select {
	case m.c <- msg:
		return nil
	case <-m.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TryTell queues msg if there is room now and the actor is running, and
// reports whether it did.
func (m Mailbox[M]) TryTell(msg M) bool {
	select {
	case <-m.done:
		return false
	default:
	}
	select {
	case m.c <- msg:
		return true
	default:
		return false
	}
}

// Ask sends the request built by mk, which receives the reply channel
// (capacity 1, so the actor never blocks answering), and waits for the reply.
// It returns ErrStopped if the actor stopped before answering, and ctx.Err()
// if ctx is done first; in that case the reply, if any, is discarded.
func Ask[M, R any](ctx context.Context, m Mailbox[M], mk func(reply chan<- R) M) (R, error) {
	var zero R
	reply := make(chan R, 1)
	if err := m.Tell(ctx, mk(reply)); err != nil {
		return zero, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-m.done:
		// The actor may have answered just before stopping.
		select {
		case r := <-reply:
			return r, nil
		default:
			return zero, ErrStopped
		}
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
