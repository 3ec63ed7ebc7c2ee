package phx

import (
	"bytes"
	"context"
	"errors"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// tapper delivers to the socket-wide subscriptions (Socket.Subscribe) in a
// goroutine of its own, started with the first of them: their consumers
// may be slow or, with Block, stuck, and the socket actor, which reads
// frames, answers pings and runs the heartbeat, must never wait for them.
type tapper struct {
	s     *Socket
	in    *actor.Queue[tapItem]
	f     fanout // owned by Run
	buf   []tapItem
	items []tapItem // the batch Run handles
	next  int       // items[next:] is still to be handled
}

type tapOp uint8

const (
	tapMsg    tapOp = iota // deliver msg
	tapAdd                 // take sub
	tapRemove              // end sub (Close)
)

type tapItem struct {
	op  tapOp
	msg Message
	sub *Subscription
}

// tapQueue bounds the messages waiting for the tapper, as chanInbox does a
// channel's.
const tapQueue = chanInbox

func newTapper(s *Socket) *tapper {
	t := &tapper{s: s, in: actor.NewQueue[tapItem](tapQueue)}
	t.f.s = s
	return t
}

// Run delivers until the socket stops; every subscription it holds or was
// handed then ends with the socket's reason. While a message waits for its
// consumer (fanout), the tapper takes nothing from its queue, which fills
// and holds the socket back (see tapWaits); a Close still ends its
// subscription at once (removeTap wakes the tapper).
func (t *tapper) Run(ctx context.Context) error {
	for {
		switch {
		case t.next < len(t.items) && !t.f.isHeld():
			// The rest of a batch a wait stopped.
		case t.f.pending():
			t.f.wait(t.in.Ready(), ctx.Done(), nil, 0)
		default:
			select {
			case <-t.in.Ready():
			case <-ctx.Done():
			case <-t.f.releaseC():
				t.f.release()
			}
		}
		if ctx.Err() != nil {
			t.stop(context.Cause(ctx))
			return nil
		}
		t.f.pruneClosing()
		t.f.flush()
		t.f.expire()
		if t.f.isHeld() {
			continue
		}
		if t.next >= len(t.items) {
			t.buf, t.items = t.items, t.in.Drain(t.buf)
			t.next = 0
		}
		for t.next < len(t.items) && !t.f.isHeld() {
			it := &t.items[t.next]
			t.next++
			switch it.op {
			case tapAdd:
				t.f.add(it.sub)
			case tapRemove:
				t.f.discard(it.sub)
			case tapMsg:
				t.f.deliver(it.msg, nil)
			}
			*it = tapItem{}
		}
	}
}

func (t *tapper) stop(err error) {
	t.in.Close()
	rest := append(t.items[t.next:], t.in.Drain(nil)...)
	for _, it := range rest {
		switch it.op {
		case tapAdd:
			it.sub.finish(err)
		case tapRemove:
			it.sub.finish(nil)
		}
	}
	t.items, t.next = nil, 0
	t.f.endAll(err, false)
	t.f.stopTimer()
}

// addTap hands sub to the tapper, started if need be.
func (a *sockActor) addTap(sub *Subscription) {
	if a.tapper == nil {
		a.tapper = newTapper(a.s)
		a.g.Spawn(a.chCtx, a.tapper)
	}
	a.taps = append(a.taps, sub)
	a.tapsChanged()
	if a.tapper.in.Force(tapItem{op: tapAdd, sub: sub}) != nil {
		sub.finish(ErrClosed) // the socket is stopping and the tapper gone
	}
}

// removeTap has the tapper end sub (Subscription.Close does not wait for it).
func (a *sockActor) removeTap(sub *Subscription) {
	a.taps = removeSub(a.taps, sub)
	a.tapsChanged()
	if a.tapper == nil || a.tapper.in.Force(tapItem{op: tapRemove, sub: sub}) != nil {
		sub.finish(nil)
		return
	}
	a.tapper.in.Wake() // a tapper that waits for a consumer takes nothing queued

}

// tapWaits: a socket-wide subscription waits for its consumer
// (Backpressure), so the socket waits for the tapper rather than drop. Block
// does not: its wait has no bound, and the socket's own frames (pings,
// heartbeats, other topics) must not wait behind it.
func (a *sockActor) tapWaits() bool {
	for _, sub := range a.taps {
		if sub.overflow == Backpressure {
			return true
		}
	}
	return false
}

// tap hands m to the tapper for the socket-wide subscriptions that want
// it. When the tapper has fallen tapQueue messages behind, the socket waits
// for it (see tapWaits) or m is dropped for them, counted and reported.
func (a *sockActor) tap(m *wire.Message) {
	a.pruneTaps()
	if len(a.taps) == 0 {
		return
	}
	wanted := false
	for _, sub := range a.taps {
		wanted = wanted || sub.wants(m.Event)
	}
	if !wanted {
		return
	}
	jr, _ := m.JoinRef.Get()
	ref, _ := m.Ref.Get()
	msg := Message{Topic: m.Topic, Event: m.Event, Payload: m.Payload, Binary: m.Binary, JoinRef: jr, Ref: ref}
	err := a.tapper.in.TryPut(tapItem{op: tapMsg, msg: msg})
	if !errors.Is(err, actor.ErrFull) {
		a.tapSlow = false
		return
	}
	if a.tapWaits() {
		a.tapStall = true // handleFrame taps m again when there is room
		return
	}
	for _, sub := range a.taps {
		if !sub.wants(m.Event) {
			continue
		}
		n := sub.dropped.Add(1)
		a.s.nDropped.Add(1)
		if !a.tapSlow {
			a.emit(SlowConsumer{Topic: sub.topic, Dropped: n, Err: ErrSlowConsumer})
		}
	}
	a.tapSlow = true
}

// tapsChanged publishes whether there are socket-wide subscriptions.
func (a *sockActor) tapsChanged() {
	if on := len(a.taps) > 0; a.tapsOn.Load() != on {
		a.tapsOn.Store(on)
	}
}

// ownForTaps gives a frame read into a reusable buffer (see readLoop) a
// payload of its own when socket-wide subscriptions will see it: they own
// their payloads, and the buffer may be reused once its channel has
// delivered it.
func (a *sockActor) ownForTaps(ev *connEvent) {
	if ev.lent != nil && len(a.taps) > 0 {
		ev.msg.Payload = bytes.Clone(ev.msg.Payload)
		ev.lent.release()
		ev.lent = nil
	}
}
