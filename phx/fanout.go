package phx

import (
	"bytes"
	"encoding/json"
	"reflect"
	"time"
)

// fanout hands messages to the subscriptions of one owner (a channel's
// actor, or the socket's tapper) without ever waiting for a consumer, so
// that the owner keeps serving its requests while consumers lag.
//
// A subscription's buffer is C plus a queue its owner keeps (ring). When
// both are full, a subscription that waits for its consumer (Backpressure,
// Block) takes the message in ring past its buffer and the subscription is
// held: the owner then stops taking frames, which pushes back on the
// socket, until the consumer takes a message, or, with Backpressure, until
// it has taken none for Config.SlowConsumerTimeout (the waiting message is
// then dropped, counted and reported). Other policies act at once.
//
// While some ring holds messages, the owner waits in wait, which wakes as
// soon as any of those consumers takes one; otherwise it uses its own
// static select and no reflection.
type fanout struct {
	s     *Socket
	subs  []*Subscription
	pend  []*Subscription // those with messages in ring
	force bool            // no holding: frames go past the buffers (see chanActor.answerAhead)
	w     *fanoutWait     // nil while no consumer lags
}

// fanoutWait is the part of a fanout only lagging consumers need.
type fanoutWait struct {
	held  []*Subscription // each with one message waiting past its buffer
	timer *time.Timer     // the Backpressure bound of held subscriptions
	spare []*Subscription // with an empty ring still allocated
	rel   *time.Timer     // releases the spare rings; nil when none
	cases []reflect.SelectCase
	backs []*Subscription // the subscription of each send case in cases
}

// wt is the waiting state, made when needed.
func (f *fanout) wt() *fanoutWait {
	if f.w == nil {
		f.w = &fanoutWait{}
	}
	return f.w
}

// dropWait forgets the waiting state once nothing is left in it.
func (f *fanout) dropWait() {
	w := f.w
	if w == nil || len(w.held) > 0 || len(w.spare) > 0 || w.rel != nil {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	f.w = nil
}

// clockNow is the monotonic clock in nanoseconds, never 0.
func clockNow() int64 { return int64(time.Since(clockStart)) + 1 }

func (f *fanout) push(sub *Subscription, m Message) {
	if sub.n == 0 {
		f.pend = append(f.pend, sub)
	}
	sub.push(m)
}

// pop drops ring's oldest message; a subscription that ended closes once
// its consumer has taken everything.
func (f *fanout) pop(sub *Subscription) {
	sub.pop()
	if sub.n == 0 {
		f.unpend(sub)
		f.keepSpare(sub)
		if sub.endErr != nil {
			sub.finish(*sub.endErr)
			f.subs = removeSub(f.subs, sub)
		}
	}
}

func (f *fanout) unpend(sub *Subscription) {
	f.pend = removeSub(f.pend, sub)
	if len(f.pend) == 0 {
		f.pend = nil
	}
}

// keepSpare keeps sub's emptied ring for a while: a consumer that keeps
// falling behind then costs no allocation per burst, and an idle one
// holds no ring for more than about a second (release).
func (f *fanout) keepSpare(sub *Subscription) {
	if sub.spare {
		return
	}
	sub.spare = true
	w := f.wt()
	w.spare = append(w.spare, sub)
	if w.rel == nil {
		w.rel = time.NewTimer(time.Second)
	}
}

// releaseC is the channel of the timer that releases the spare rings.
func (f *fanout) releaseC() <-chan time.Time {
	if f.w == nil || f.w.rel == nil {
		return nil
	}
	return f.w.rel.C
}

// release frees the rings that are still empty.
func (f *fanout) release() {
	w := f.w
	if w == nil {
		return
	}
	for _, sub := range w.spare {
		sub.spare = false
		if sub.n == 0 {
			sub.ring, sub.head = nil, 0
		}
	}
	clear(w.spare)
	w.spare = nil
	if w.rel != nil {
		w.rel.Stop()
		w.rel = nil
	}
	f.dropWait()
}

// pending: some ring holds messages.
func (f *fanout) pending() bool { return len(f.pend) > 0 }

// offer puts m in sub's buffer if it has room.
func (f *fanout) offer(sub *Subscription, m Message) bool {
	if sub.n > 0 {
		f.flushSub(sub)
	}
	if sub.n == 0 {
		select {
		case sub.c <- m:
			sub.slow = false
			return true
		default:
		}
	}
	if sub.n < sub.bound {
		f.push(sub, m)
		return true
	}
	return false
}

// flushSub moves what C has room for from ring into it.
func (f *fanout) flushSub(sub *Subscription) {
	for sub.n > 0 {
		select {
		case sub.c <- sub.front():
			f.pop(sub)
			f.took(sub)
		default:
			return
		}
	}
}

// took: sub's consumer made room.
func (f *fanout) took(sub *Subscription) {
	sub.slow = false
	if sub.heldSince != 0 && sub.n <= sub.bound {
		f.unhold(sub)
	}
}

func (f *fanout) unhold(sub *Subscription) {
	if sub.heldSince == 0 {
		return
	}
	sub.heldSince = 0
	f.w.held = removeSub(f.w.held, sub)
	if len(f.w.held) == 0 {
		f.w.held = nil
	}
}

// isHeld: a message waits for its consumer past a buffer.
func (f *fanout) isHeld() bool { return f.w != nil && len(f.w.held) > 0 }

// deliver hands m to every subscription that wants it under its policy.
// When m's payload is in the reusable buffer lent, a subscription with
// lent payloads holds the buffer with its message, and the others share
// one copy of the payload.
func (f *fanout) deliver(m Message, lent *frameBuf) {
	var owned json.RawMessage
	for i := 0; i < len(f.subs); i++ {
		sub := f.subs[i]
		if sub.ended || !sub.wants(m.Event) {
			continue
		}
		m := m
		if lent != nil {
			if sub.lend {
				lent.hold()
				m.lease = lent
			} else {
				if owned == nil {
					owned = bytes.Clone(m.Payload)
				}
				m.Payload = owned
			}
		}
		if f.offer(sub, m) {
			continue
		}
		switch sub.overflow {
		case Backpressure:
			if sub.slow {
				// Stuck: dropping until the consumer takes a message.
				f.s.dropped(sub)
				continue
			}
			f.hold(sub, m)
		case Block:
			f.hold(sub, m)
		case DropNewest:
			f.s.dropped(sub)
		case DropOldest:
			select {
			case <-sub.c:
				f.s.dropped(sub)
			default:
				if sub.n > 0 {
					f.pop(sub)
					f.s.dropped(sub)
				}
			}
			slow := sub.slow // the room offer finds is the one just made
			if !f.offer(sub, m) {
				f.s.dropped(sub)
			}
			sub.slow = slow
		case CloseWithError:
			f.s.dropped(sub)
			if f.end(sub, ErrSlowConsumer) {
				i--
			}
		}
	}
}

// hold keeps m past sub's buffer: the owner takes no frames until sub's
// consumer takes a message or the wait is given up (expire).
func (f *fanout) hold(sub *Subscription, m Message) {
	f.push(sub, m)
	if sub.heldSince == 0 && !f.force {
		sub.heldSince = clockNow()
		f.wt().held = append(f.wt().held, sub)
	}
}

// expire gives up the waits of Backpressure subscriptions whose consumer
// took nothing for Config.SlowConsumerTimeout: each waiting message is
// dropped, counted and reported.
func (f *fanout) expire() {
	if !f.isHeld() {
		return
	}
	now, bound := clockNow(), int64(f.s.cfg.SlowConsumerTimeout)
	for i := 0; i < len(f.w.held); i++ {
		sub := f.w.held[i]
		if sub.overflow != Backpressure || now-sub.heldSince < bound {
			continue
		}
		sub.popBack()
		if sub.n == 0 {
			f.unpend(sub)
			f.keepSpare(sub)
		}
		f.s.dropped(sub)
		f.unhold(sub)
		i--
	}
}

// flush moves into every C what it has room for, and closes the
// subscriptions that ended once their consumer has taken what they held.
func (f *fanout) flush() {
	for i := len(f.pend) - 1; i >= 0; i-- {
		if i < len(f.pend) { // a drained one leaves pend
			f.flushSub(f.pend[i])
		}
	}
}

// add takes sub.
func (f *fanout) add(sub *Subscription) { f.subs = append(f.subs, sub) }

// discard ends sub at once (Close): what it holds is dropped with it.
func (f *fanout) discard(sub *Subscription) {
	f.unhold(sub)
	if sub.n > 0 {
		f.unpend(sub)
	}
	sub.finish(nil)
	f.subs = removeSub(f.subs, sub)
}

// end ends sub with err once its consumer has taken what it holds, and
// reports whether it was removed at once.
func (f *fanout) end(sub *Subscription, err error) bool {
	f.unhold(sub)
	if sub.n == 0 {
		sub.finish(err)
		f.subs = removeSub(f.subs, sub)
		return true
	}
	sub.ended, sub.endErr = true, &err
	return false
}

// endAll ends every subscription with err; keep: after their consumers
// took what they hold (see linger), otherwise at once.
func (f *fanout) endAll(err error, keep bool) {
	for i := 0; i < len(f.subs); i++ {
		sub := f.subs[i]
		if !keep {
			f.unhold(sub)
			sub.finish(err)
			continue
		}
		if sub.closed {
			continue
		}
		if f.end(sub, err) {
			i--
		}
	}
	if !keep {
		clear(f.subs)
		f.subs, f.pend = nil, nil
	}
}

// pruneClosing ends the subscriptions whose Close has not reached the
// owner yet.
func (f *fanout) pruneClosing() {
	for i := 0; i < len(f.subs); i++ {
		if sub := f.subs[i]; sub.closing.Load() {
			f.discard(sub)
			i--
		}
	}
}

// stopTimer stops and forgets the timer (an idle owner keeps none).
func (f *fanout) stopTimer() {
	if f.w != nil && f.w.timer != nil {
		f.w.timer.Stop()
		f.w.timer = nil
	}
	f.release()
}

// bpTimer arms the timer for the earliest Backpressure wait to give up,
// or d (if positive) when that is earlier, and returns its channel; nil
// when there is nothing to time.
func (f *fanout) bpTimer(d time.Duration) <-chan time.Time {
	w := f.wt()
	var at int64
	for _, sub := range w.held {
		if sub.overflow == Backpressure && (at == 0 || sub.heldSince < at) {
			at = sub.heldSince
		}
	}
	var wait time.Duration
	switch {
	case at != 0:
		wait = time.Duration(at + int64(f.s.cfg.SlowConsumerTimeout) - clockNow())
		if d > 0 && d < wait {
			wait = d
		}
	case d > 0:
		wait = d
	default:
		if w.timer != nil {
			w.timer.Stop()
		}
		return nil
	}
	wait = max(wait, 0)
	if w.timer == nil {
		w.timer = time.NewTimer(wait)
	} else {
		w.timer.Reset(wait)
	}
	return w.timer.C
}

// wait is the owner's wait while some ring holds messages: it returns
// when one of ready, done or tc is ready (their index, 0 to 2, after
// taking it), when a consumer took a message or the spare rings were
// released (-1), or when the Backpressure bound of a held subscription, or d (if
// positive), has passed (-2).
func (f *fanout) wait(ready, done <-chan struct{}, tc <-chan time.Time, d time.Duration) int {
	bp := f.bpTimer(d)
	if len(f.pend) == 1 {
		// The usual case, without reflection.
		sub := f.pend[0]
		r := -1
		select {
		case <-ready:
			r = 0
		case <-done:
			r = 1
		case <-tc:
			r = 2
		case <-bp:
			return -2
		case <-f.releaseC():
			f.release()
		case sub.c <- sub.front():
			f.pop(sub)
			f.took(sub)
		}
		if f.w != nil && f.w.timer != nil {
			f.w.timer.Stop()
		}
		return r
	}
	w := f.w
	w.cases = append(w.cases[:0],
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: chanValue(ready)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: chanValue(done)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: chanValue(tc)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: chanValue(bp)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: chanValue(f.releaseC())},
	)
	const fixed = 5
	w.backs = w.backs[:0]
	for _, sub := range f.pend {
		w.cases = append(w.cases, reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(sub.c), Send: reflect.ValueOf(sub.front())})
		w.backs = append(w.backs, sub)
	}
	i, _, _ := reflect.Select(w.cases)
	if w.timer != nil && i != 3 {
		w.timer.Stop()
	}
	clear(w.cases)
	w.cases = w.cases[:0]
	r := i
	switch {
	case i == 3:
		r = -2
	case i == 4:
		f.release()
		r = -1
	case i >= fixed:
		sub := w.backs[i-fixed]
		f.pop(sub)
		f.took(sub)
		r = -1
	}
	clear(w.backs)
	w.backs = w.backs[:0]
	return r
}

// chanValue is c as a select case's channel; a nil c is never ready.
func chanValue[T any](c <-chan T) reflect.Value {
	if c == nil {
		return reflect.Value{}
	}
	return reflect.ValueOf(c)
}
