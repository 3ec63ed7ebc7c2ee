package presence

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/phx"
)

// DefaultTrackerBuffer is the number of event batches a Tracker keeps for a
// slow consumer when TrackOptions.Buffer is zero.
const DefaultTrackerBuffer = 64

// errStop is the stop reason Close gives the actor: a Close is not an error.
var errStop = errors.New("presence: tracker closed")

// errNilChannel ends a tracker made for a nil channel.
var errNilChannel = errors.New("presence: Track on a nil channel")

// TrackOptions configures a Tracker. The zero value (or nil) works: every
// field's doc says what zero means. Track copies it.
type TrackOptions struct {
	// Options configures the fold: event names, Updates, MaxPending and
	// KeepStaleDiffs, as for a Machine.
	Options
	// Buffer bounds the batches of events waiting for the consumer of
	// Events. A batch is what one channel message produced (a presence_state
	// of 10,000 keys is one batch of 10,000 Joins and a Sync), so a burst
	// never splits a batch and a consumer that keeps up loses nothing.
	// Zero: DefaultTrackerBuffer.
	Buffer int
	// Overflow is what happens when Buffer batches wait and another one
	// comes. Zero (phx.Backpressure, which the tracker treats as
	// phx.DropNewest) or phx.DropNewest: the new batch is dropped. phx.DropOldest
	// drops the oldest batch not yet begun. phx.CloseWithError ends the
	// tracker with phx.ErrSlowConsumer. phx.Block stops reading the channel
	// until the consumer catches up; the channel's messages then wait in the
	// subscription (SubscriptionBuffer), and when that overflows too the
	// tracker ends with phx.ErrSlowConsumer. Dropped events are counted
	// (TrackerStats.Dropped); the state itself never misses a message.
	Overflow phx.Overflow
	// SubscriptionBuffer is the buffer of the tracker's subscription to the
	// channel. Zero: the socket's Config.SubscriptionBuffer. The tracker
	// reads it as fast as it folds, so it fills only under phx.Block or a
	// starved goroutine. The subscription's policy is always
	// phx.CloseWithError: a lost presence_diff would leave the state wrong
	// without anyone knowing, so the tracker ends with phx.ErrSlowConsumer
	// instead.
	SubscriptionBuffer int
}

// Skipped reports a channel message the tracker could not fold, or a diff
// it had to let go, as a value on its stream rather than a reason to stop:
// a payload it cannot read (Err matches ErrMalformed; the state is
// unchanged) or a presence_diff that overflowed Options.MaxPending while
// waiting for the state (Err is ErrPendingOverflow; the oldest waiting diff
// was dropped and the next presence_state repairs the state). Only a Tracker
// reports it; a Machine returns these errors from Apply.
type Skipped struct {
	Event   string // the channel event
	JoinRef string // the join session it arrived in
	Err     error
}

func (Skipped) presenceEvent() {}

// TrackerStats are a Tracker's counters since it started.
type TrackerStats struct {
	Messages uint64 // presence messages received from the channel
	Skipped  uint64 // messages reported as Skipped
	Dropped  uint64 // events the Overflow policy dropped
	Pending  int    // diffs waiting for the presence_state of the current join
	Stale    int    // waiting diffs dropped because their join had passed (Machine.Stale)
	Overflow int    // waiting diffs dropped by Options.MaxPending (Machine.Dropped)
}

// Tracker follows the presence of one channel: an actor goroutine owning a
// Machine, fed by a subscription to the channel's presence_state and
// presence_diff, that reports every Join, Leave, Update (opt-in), Sync and
// Skipped on a bounded stream and answers snapshots of the state at any
// time.
//
// Events is closed in the end, always: after Close (Err is then nil), when
// Track's ctx is done (ctx.Err()), or when the channel's subscription ends
// (its error: phx.ErrLeft, phx.ErrClosed, a *phx.JoinError,
// phx.ErrSlowConsumer). When the subscription ends, the events already
// queued are handed out first; Close and ctx discard them.
//
// Concurrency: every method is safe for concurrent use. State, List and
// Stats ask the actor, which answers between two messages; once the tracker
// has stopped they return its final values. Close stops the actor and
// waits for it; it is idempotent.
type Tracker struct {
	opts TrackOptions
	sub  *phx.Subscription
	proc *actor.Proc
	mb   actor.Mailbox[request]
	out  chan Event
	done chan struct{} // closed once err and final are set, before out

	// Written by the actor before done (and out) close; read after.
	err   error
	final snapshot

	// Owned by the actor.
	m       *Machine
	queue   [][]Event
	pos     int // events of queue[0] already handed out
	stats   TrackerStats
	endErr  error // the subscription's error, once it ended
	subErr  error // why the subscription could not be made
	drained bool  // the subscription ended; stop when the queue is empty
}

type snapshot struct {
	state State
	stats TrackerStats
}

// request is the tracker's mailbox message: a question about its state.
type request interface{ trackerRequest() }

type askState struct {
	withState bool // a State snapshot costs one map copy at the next change
	reply     chan<- snapshot
}

func (askState) trackerRequest() {}

// Track starts a Tracker on ch. Call it before ch.Join: the tracker
// subscribes at once, so it sees the first presence_state. Created after
// the join, it may have missed that state (Phoenix sends it once per join)
// and then reports nothing (diffs wait, Stats.Pending) until the channel
// rejoins and the server sends the state again.
//
// ctx bounds the tracker's life, as Close does. opts may be nil. When
// the subscription cannot be made (ctx done, socket or channel closed),
// the tracker stops at once and Err says why.
func Track(ctx context.Context, ch *phx.Channel, opts *TrackOptions) *Tracker {
	t := &Tracker{out: make(chan Event), done: make(chan struct{})}
	if opts != nil {
		t.opts = *opts
	}
	if t.opts.Buffer <= 0 {
		t.opts.Buffer = DefaultTrackerBuffer
	}
	t.m = NewMachine(t.opts.Options)
	t.mb = actor.NewMailbox[request](1, t.done)
	if ch != nil {
		sopts := []phx.SubscribeOption{phx.WithOverflow(phx.CloseWithError),
			phx.Events(t.m.opts.StateEvent, t.m.opts.DiffEvent)}
		if t.opts.SubscriptionBuffer > 0 {
			sopts = append(sopts, phx.WithBuffer(t.opts.SubscriptionBuffer))
		}
		// A subscription that cannot be made (ctx done, socket closed,
		// channel closed for good) is why the tracker stops at once.
		t.sub, t.subErr = ch.Subscribe(ctx, sopts...)
	}
	t.proc = actor.Start(ctx, actor.Func(t.run))
	return t
}

// Events is the stream of changes: for each channel message, its Joins,
// Leaves and Updates and a closing Sync (or a Skipped). It is closed when
// the tracker stops; Err then says why.
func (t *Tracker) Events() <-chan Event { return t.out }

// Done is closed when the tracker has stopped.
func (t *Tracker) Done() <-chan struct{} { return t.done }

// Err says why the tracker stopped: nil before it did and after Close.
func (t *Tracker) Err() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

// Close stops the tracker and waits until its goroutine has returned. The
// subscription is closed and queued events are discarded. It is idempotent
// and safe to call concurrently; on a tracker that had already stopped it
// changes nothing, and Err keeps the reason it stopped.
func (t *Tracker) Close() {
	t.proc.Stop(errStop)
	<-t.proc.Done()
}

// All iterates over the events until the tracker stops or ctx is done.
// A Skipped event comes with its Err, and iteration goes on; the last pair,
// if any, carries the reason the tracker stopped (Err, or ctx.Err()) with a
// nil Event. It does not Close the tracker.
func (t *Tracker) All(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			select {
			case ev, ok := <-t.out:
				if !ok {
					if err := t.Err(); err != nil {
						yield(nil, err)
					}
					return
				}
				var err error
				if s, isSkip := ev.(Skipped); isSkip {
					err = s.Err
				}
				if !yield(ev, err) {
					return
				}
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
		}
	}
}

// State returns a snapshot of the presence state: immutable, safe to keep.
func (t *Tracker) State() State { return t.ask(true).state }

// List returns every key with its presence, in the JavaScript client's
// order.
func (t *Tracker) List() []KeyPresence {
	return List(t.State(), func(k string, p Presence) KeyPresence { return KeyPresence{Key: k, Presence: p} })
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() TrackerStats { return t.ask(false).stats }

func (t *Tracker) ask(withState bool) snapshot {
	// The actor answers between two messages and never blocks elsewhere, so
	// only its end can keep a question waiting; done covers that.
	s, err := actor.Ask(context.Background(), t.mb, func(reply chan<- snapshot) request {
		return askState{withState: withState, reply: reply}
	})
	if err != nil {
		<-t.done
		return t.final
	}
	return s
}

func (t *Tracker) snapshot(withState bool) snapshot {
	s := snapshot{stats: t.stats}
	s.stats.Pending = t.m.Pending()
	s.stats.Stale = t.m.Stale()
	s.stats.Overflow = t.m.Dropped()
	if withState {
		s.state = t.m.State()
	}
	return s
}

// run is the actor: it folds the subscription's messages and hands the
// events out, one select loop, so questions are answered even while the
// consumer lags.
func (t *Tracker) run(ctx context.Context) (err error) {
	defer func() {
		if errors.Is(err, errStop) {
			err = nil
		}
		if t.sub != nil {
			t.sub.Close()
		}
		t.err = err
		t.final = t.snapshot(true)
		// done first: whoever sees Events closed finds Err already set.
		close(t.done)
		close(t.out)
	}()
	if t.subErr != nil {
		return t.subErr
	}
	if t.sub == nil {
		return errNilChannel
	}
	in := t.sub.C()
	for {
		if t.drained && len(t.queue) == 0 {
			return t.endErr
		}
		var out chan<- Event
		var next Event
		if len(t.queue) > 0 {
			out, next = t.out, t.queue[0][t.pos]
		}
		recv := in
		if t.opts.Overflow == phx.Block && len(t.queue) >= t.opts.Buffer {
			recv = nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case req := <-t.mb.C():
			if r, ok := req.(askState); ok {
				r.reply <- t.snapshot(r.withState)
			}
		case out <- next:
			t.queue[0][t.pos] = nil
			t.pos++
			if t.pos == len(t.queue[0]) {
				t.pop()
			}
		case msg, ok := <-recv:
			if !ok {
				in, t.drained, t.endErr = nil, true, t.sub.Err()
				continue
			}
			if err := t.fold(msg); err != nil {
				return err
			}
		}
	}
}

func (t *Tracker) pop() {
	t.queue[0] = nil
	t.queue = t.queue[1:]
	t.pos = 0
	if len(t.queue) == 0 {
		t.queue = t.queue[:0:0] // let the backing array go with its batches
	}
}

// fold applies one message and queues its events under the overflow policy.
func (t *Tracker) fold(msg phx.Message) error {
	t.stats.Messages++
	var evs []Event
	var err error
	if msg.Binary {
		err = fmt.Errorf("%w: binary %s", ErrMalformed, msg.Event)
	} else {
		evs, err = t.m.Apply(Input{Event: msg.Event, Payload: msg.Payload, JoinRef: msg.JoinRef})
	}
	if err != nil {
		t.stats.Skipped++
		evs = append(evs, Skipped{Event: msg.Event, JoinRef: msg.JoinRef, Err: err})
	}
	if len(evs) == 0 {
		return nil
	}
	if len(t.queue) >= t.opts.Buffer {
		switch t.opts.Overflow {
		case phx.CloseWithError:
			return phx.ErrSlowConsumer
		case phx.DropOldest:
			// Never split a batch the consumer has begun: drop the next
			// one, unless it is the only one.
			i := 0
			if t.pos > 0 && len(t.queue) > 1 {
				i = 1
			}
			if i == 0 {
				t.stats.Dropped += uint64(len(t.queue[0]) - t.pos)
				t.pop()
			} else {
				t.stats.Dropped += uint64(len(t.queue[i]))
				t.queue = slices.Delete(t.queue, i, i+1)
			}
		default: // DropNewest; Block never gets here
			t.stats.Dropped += uint64(len(evs))
			return nil
		}
	}
	t.queue = append(t.queue, evs)
	return nil
}
