package phx

import (
	"context"
	"iter"
	"slices"
	"sync/atomic"
)

// Subscription receives a channel's messages (or every message of a socket,
// from Socket.Subscribe) into a bounded buffer.
//
// C is closed in the end, always: soon after Close (Err is then nil), when the
// channel is left (ErrLeft), closed by the server or the socket (ErrClosed),
// refused at its first join (*JoinError), or overflowed with the
// CloseWithError policy (ErrSlowConsumer). Except after Close or the
// socket's end, C closes once the consumer has taken what was buffered, as
// long as it takes a message every Config.SlowConsumerTimeout (the rest is
// then dropped and counted). Subscriptions survive rejoins and reconnects.
// Messages arrive in the order the socket read them.
//
// Concurrency: all methods are safe for concurrent use, except that Next
// and All are meant for one consuming goroutine (with Lend, each gives
// back the message the previous one returned). One goroutine usually
// ranges over C, or calls Next.
//
// An idle subscription costs a few hundred bytes whatever its buffer: C
// holds two messages, and its owner keeps the rest of the buffer in a queue
// of its own that grows as needed and goes about a second after it drains.
type Subscription struct {
	c       chan Message
	err     atomic.Pointer[error]
	dropped atomic.Uint64
	closing atomic.Bool // Close was called
	lend    bool        // payloads lent (Lend)

	s      *Socket
	ca     *chanActor // the owner; nil for a socket-wide subscription (owned by the socket's tapper)
	events []string   // nil: all
	topic  string

	// Owned by the consuming goroutine: the buffer of the lent message it
	// took last, given back as it takes the next.
	prev *frameBuf

	// Owned by the owning actor.
	ring      []Message // what C has no room for, oldest at head; released a while after it empties
	head, n   int32
	bound     int32  // the most ring holds within the buffer (the buffer less cap(C))
	endErr    *error // set when the subscription ends with messages still in ring
	overflow  Overflow
	slow      bool  // in an overflow episode
	ended     bool  // takes no more messages
	closed    bool  // C is closed
	spare     bool  // in its owner's list of rings to release
	heldSince int64 // clock (nanoseconds) since the message past the buffer waits; 0: none waits
	counted   bool  // in Stats.Subscriptions
}

// subChanCap is the capacity of C: what a subscription holds ready for its
// consumer without its owner's help. Two messages keep an idle
// subscription under 512 bytes.
const subChanCap = 2

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
	if sub.closing.CompareAndSwap(false, true) {
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
	}
}

func (sub *Subscription) wants(event string) bool {
	return sub.events == nil || slices.Contains(sub.events, event)
}

// finish closes C with err at once, discarding what ring holds; owning
// actor only (or the subscriber before any actor took it).
func (sub *Subscription) finish(err error) {
	if sub.closed {
		return
	}
	sub.closed, sub.ended = true, true
	clear(sub.ring)
	sub.ring, sub.head, sub.n = nil, 0, 0
	if sub.counted {
		sub.s.stats.subs.Add(-1)
		if sub.lend {
			sub.s.nLend.Add(-1)
		}
	}
	sub.err.Store(&err)
	close(sub.c)
}

// push appends m to ring, growing it up to the buffer (and the one
// message past it that waits, see fanout).
func (sub *Subscription) push(m Message) {
	if int(sub.n) == len(sub.ring) {
		size := max(4, 2*len(sub.ring))
		if limit := int(sub.bound) + 1; len(sub.ring) < limit {
			size = min(size, limit) // past it only when forced (fanout.force)
		}
		r := make([]Message, size)
		for i := range int(sub.n) {
			r[i] = sub.ring[(int(sub.head)+i)%len(sub.ring)]
		}
		sub.ring, sub.head = r, 0
	}
	sub.ring[(int(sub.head)+int(sub.n))%len(sub.ring)] = m
	sub.n++
}

// front is ring's oldest message.
func (sub *Subscription) front() Message { return sub.ring[sub.head] }

// pop drops ring's oldest message. An empty ring stays for its owner to
// release (fanout.release).
func (sub *Subscription) pop() {
	sub.ring[sub.head] = Message{}
	sub.head = (sub.head + 1) % int32(len(sub.ring))
	sub.n--
}

// popBack drops ring's newest message.
func (sub *Subscription) popBack() {
	sub.n--
	sub.ring[(int(sub.head)+int(sub.n))%len(sub.ring)] = Message{}
}

// Next waits for the next message. When the subscription has ended it
// returns its Err (or ErrClosed after Close); when ctx is done, ctx.Err().
// With Lend, it first gives back the message it returned last, whose
// payload the socket may then reuse. Next and All are meant for one
// consuming goroutine.
func (sub *Subscription) Next(ctx context.Context) (Message, error) {
	sub.giveBack()
	if ctx.Done() == nil {
		// A context that never ends: a plain receive costs less than a
		// select.
		m, ok := <-sub.c
		if !ok {
			return Message{}, sub.endedErr()
		}
		sub.took(m)
		return m, nil
	}
	select {
	case m, ok := <-sub.c:
		if !ok {
			return Message{}, sub.endedErr()
		}
		sub.took(m)
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// endedErr is what Next returns once C is closed.
func (sub *Subscription) endedErr() error {
	if err := sub.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// took notes a lent message's buffer, given back at the next receive.
func (sub *Subscription) took(m Message) {
	if m.lease != nil {
		sub.prev = m.lease
	}
}

// giveBack lets go of the last lent message's buffer.
func (sub *Subscription) giveBack() {
	if fb := sub.prev; fb != nil {
		sub.prev = nil
		fb.release()
	}
}

// All iterates over the subscription's messages until it ends or ctx is
// done. The last pair, if any, carries the reason it ended (Err, or
// ctx.Err()) with a zero Message. It does not Close the subscription. With
// Lend, a message's payload is valid until the next step.
func (sub *Subscription) All(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			sub.giveBack()
			select {
			case m, ok := <-sub.c:
				if !ok {
					if err := sub.Err(); err != nil {
						yield(Message{}, err)
					}
					return
				}
				sub.took(m)
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
// Close); when ctx is done, ctx.Err(). With Lend, the message's Payload
// is valid until the next Next; Value is the caller's.
func (s *TypedSubscription[T]) Next(ctx context.Context) (Typed[T], error) {
	m, err := s.Subscription.Next(ctx)
	if err != nil {
		return Typed[T]{}, err
	}
	v, err := Decode[T](m)
	return Typed[T]{Message: m, Value: v}, err
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
