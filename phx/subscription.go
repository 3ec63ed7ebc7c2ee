package phx

import (
	"context"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Subscription receives a channel's messages (or every message of a socket,
// from Socket.Subscribe) into a bounded buffer.
//
// C is closed in the end, always: soon after Close (Err is then nil), when the
// channel is left (ErrLeft), closed by the server or the socket (ErrClosed),
// refused at its first join (*JoinError), or overflowed with the
// CloseWithError policy (ErrSlowConsumer). Subscriptions survive rejoins and
// reconnects. Messages arrive in the order the socket read them.
//
// Concurrency: all methods are safe for concurrent use. One goroutine
// usually ranges over C.
type Subscription struct {
	c        chan Message
	quit     chan struct{} // closed by Close, wakes a Block delivery
	quitOnce sync.Once
	err      atomic.Pointer[error]
	dropped  atomic.Uint64

	s        *Socket
	ca       *chanActor // the owner; nil for a socket-wide subscription (owned by the socket's tapper)
	events   []string   // nil: all
	overflow Overflow
	topic    string

	// Owned by the owning actor.
	slow    bool // in an overflow episode
	closed  bool
	counted bool // in Stats.Subscriptions
}

// C is the receive side. It is closed when the subscription ends.
func (sub *Subscription) C() <-chan Message { return sub.c }

// Err says why C was closed; nil before it is and after Close.
func (sub *Subscription) Err() error {
	if p := sub.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Dropped counts the messages the overflow policy dropped.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close ends the subscription without waiting, so that defer sub.Close()
// costs nothing: the subscription's owner (its channel's actor, or the
// socket's) closes C right after, and messages still buffered are
// discarded. A Block delivery waiting on the subscription gives up at once.
// Idempotent.
func (sub *Subscription) Close() {
	sub.quitOnce.Do(func() {
		close(sub.quit)
		if ca := sub.ca; ca != nil {
			// One request per subscription, so past the bound is fine;
			// a closed queue means the actor ends every subscription
			// itself as it stops.
			_ = ca.mb.q.Force(unsubscribeReq{sub: sub})
			return
		}
		// The socket actor takes it now, or when a full mailbox means it
		// is busy, finds it closed at the next frame it routes (a
		// heartbeat reply at the latest); a stopped one ended every
		// subscription.
		sub.s.mb.TryTell(unsubscribeMsg{sub: sub})
	})
}

func (sub *Subscription) wants(event string) bool {
	return sub.events == nil || slices.Contains(sub.events, event)
}

// finish closes C with err; owning actor only (or the subscriber before
// any actor took it).
func (sub *Subscription) finish(err error) {
	if sub.closed {
		return
	}
	sub.closed = true
	if sub.counted {
		sub.s.stats.subs.Add(-1)
	}
	sub.err.Store(&err)
	close(sub.c)
}

// All iterates over the subscription's messages until it ends or ctx is
// done. The last pair, if any, carries the reason it ended (Err, or
// ctx.Err()) with a zero Message. It does not Close the subscription.
func (sub *Subscription) All(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			select {
			case m, ok := <-sub.c:
				if !ok {
					if err := sub.Err(); err != nil {
						yield(Message{}, err)
					}
					return
				}
				if !yield(m, nil) {
					return
				}
			case <-ctx.Done():
				yield(Message{}, ctx.Err())
				return
			}
		}
	}
}

// Events subscribes to ch's messages with opts, as Subscribe does, and
// iterates over them until ctx is done, the subscription ends, or the loop
// breaks; then it unsubscribes. A final pair with a zero Message carries the
// reason it ended (or why Subscribe failed), unless the loop broke.
//
//	for m, err := range ch.Events(ctx, phx.Events("new_msg")) { ... }
func (ch *Channel) Events(ctx context.Context, opts ...SubscribeOption) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		sub, err := ch.Subscribe(ctx, opts...)
		if err != nil {
			yield(Message{}, err)
			return
		}
		defer sub.Close()
		for m, err := range sub.All(ctx) {
			if !yield(m, err) {
				return
			}
		}
	}
}

// EventsAs is Events with each payload decoded into a T. A payload that does
// not decode yields its message with a *DecodeError and iteration goes on.
func EventsAs[T any](ctx context.Context, ch *Channel, opts ...SubscribeOption) iter.Seq2[Typed[T], error] {
	return func(yield func(Typed[T], error) bool) {
		for m, err := range ch.Events(ctx, opts...) {
			if err != nil {
				yield(Typed[T]{}, err)
				return
			}
			v, derr := Decode[T](m)
			if !yield(Typed[T]{Message: m, Value: v}, derr) {
				return
			}
		}
	}
}

// TypedSubscription is a Subscription whose messages are decoded into a T
// as they are taken; C still gives the raw messages. Its concurrency is the
// Subscription's; Next and All are meant for one consuming goroutine.
type TypedSubscription[T any] struct {
	*Subscription
}

// SubscribeAs subscribes to ch's messages like Channel.Subscribe, decoding
// payloads into a T.
func SubscribeAs[T any](ctx context.Context, ch *Channel, opts ...SubscribeOption) (*TypedSubscription[T], error) {
	sub, err := ch.Subscribe(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &TypedSubscription[T]{sub}, nil
}

// Next waits for the next message and decodes it. A payload that does not
// decode returns the message with a *DecodeError; the subscription goes on.
// When the subscription has ended it returns its Err (or ErrClosed after
// Close); when ctx is done, ctx.Err().
func (s *TypedSubscription[T]) Next(ctx context.Context) (Typed[T], error) {
	select {
	case m, ok := <-s.c:
		if !ok {
			if err := s.Err(); err != nil {
				return Typed[T]{}, err
			}
			return Typed[T]{}, ErrClosed
		}
		v, err := Decode[T](m)
		return Typed[T]{Message: m, Value: v}, err
	case <-ctx.Done():
		return Typed[T]{}, ctx.Err()
	}
}

// All iterates like Subscription.All, decoding each payload; a payload that
// does not decode yields its message with a *DecodeError and iteration goes
// on.
func (s *TypedSubscription[T]) All(ctx context.Context) iter.Seq2[Typed[T], error] {
	return func(yield func(Typed[T], error) bool) {
		for m, err := range s.Subscription.All(ctx) {
			if err != nil {
				yield(Typed[T]{}, err)
				return
			}
			v, derr := Decode[T](m)
			if !yield(Typed[T]{Message: m, Value: v}, derr) {
				return
			}
		}
	}
}

// slowWait is the timer an actor waits on consumers with (Backpressure),
// made the first time it waits and stopped after each wait.
type slowWait struct{ t *time.Timer }

func (w *slowWait) start(d time.Duration) <-chan time.Time {
	if w.t == nil {
		w.t = time.NewTimer(d)
	} else {
		w.t.Reset(d)
	}
	return w.t.C
}

func (w *slowWait) stop() { w.t.Stop() }

// deliver hands msg to every subscription in subs that wants it and returns
// subs without the ones it closed for being slow. A full subscription with
// the Backpressure policy is waited for up to Config.SlowConsumerTimeout
// (with w), one with Block without a bound; such a wait also ends with the
// subscription's Close or with done. Only the actor that owns subs calls
// it, so the slow flags need no lock.
//
// ahead, if not nil, is called before a wait.
func deliver(s *Socket, subs []*Subscription, msg Message, done <-chan struct{}, w *slowWait, ahead func()) []*Subscription {
	for i := 0; i < len(subs); i++ {
		sub := subs[i]
		if !sub.wants(msg.Event) {
			continue
		}
		select {
		case sub.c <- msg:
			sub.slow = false
			continue
		default:
		}
		switch sub.overflow {
		case Backpressure:
			if sub.slow {
				// Stuck: dropping until the consumer takes a message.
				s.dropped(sub)
				continue
			}
			if ahead != nil {
				ahead()
			}
			select {
			case sub.c <- msg:
			case <-sub.quit:
			case <-done:
			case <-w.start(s.cfg.SlowConsumerTimeout):
				s.dropped(sub)
			}
			w.stop()
		case DropNewest:
			s.dropped(sub)
		case DropOldest:
			select {
			case <-sub.c:
			default:
			}
			select {
			case sub.c <- msg:
			default:
			}
			s.dropped(sub)
		case CloseWithError:
			s.dropped(sub)
			sub.finish(ErrSlowConsumer)
			subs = removeSub(subs, sub)
			i--
		case Block:
			if ahead != nil {
				ahead()
			}
			select {
			case sub.c <- msg:
			case <-sub.quit:
			case <-done:
			}
		}
	}
	return subs
}
