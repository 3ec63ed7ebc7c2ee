package phx

import (
	"fmt"

	"github.com/phxgo/phxgo/wire"
)

// pump takes the socket's connection state, then every frame queued for
// the channel, and applies them in the order the socket saw them: a frame
// read on a newer connection first moves the channel to it, a frame of a
// connection the channel already saw end is dropped, and the connection
// state taken first is applied last, so that a reply read before a
// connection dropped still resolves its push.
func (ca *chanActor) pump() {
	cur := ca.s.conn.Load()
	for fresh := false; !fresh; {
		if ca.batch == nil {
			// The rest of a batch a wait stopped goes first.
			ca.batch, ca.next, fresh = ca.in.Drain(ca.inbuf), 0, true
			ca.inbuf = nil
		}
		for ca.next < len(ca.batch) {
			it := &ca.batch[ca.next]
			ca.next++
			ca.seen++
			if st := it.h.st; st != nil && st.gen > ca.view.gen {
				ca.sync(st)
			}
			if it.answered || it.h != ca.view.h || ca.final != nil {
				continue // answered ahead, or read on a connection that has gone
			}
			ca.handleFrame(&it.m, it.lent)
			if it.lent != nil {
				it.lent.release() // the reader's hold: delivered
				it.lent = nil
			}
			if ca.f.isHeld() && !ca.f.force {
				// A message waits for its consumer: the rest waits with
				// it, and the connection state taken above is applied
				// after it.
				ca.answerAhead()
				return
			}
		}
		items := ca.batch
		ca.batch, ca.next, ca.ahead = nil, 0, nil
		if cap(items) >= 64 {
			ca.inbuf = items // busy channels reuse their buffers
		} else {
			clear(items)
			ca.inbuf = nil // idle ones keep none
		}
	}
	if ca.final == nil {
		ca.sync(cur)
	}
}

// sync moves the channel's view of the connection to st.
func (ca *chanActor) sync(st *connState) {
	if st.gen <= ca.view.gen {
		return
	}
	from := ca.view
	if from.h != nil && from.h != st.h {
		ca.lost()
	}
	ca.view = st
	if st.h != nil && st.h != from.h && ca.final == nil {
		ca.opened()
	}
}

// lost: the connection the channel used is gone. Sent pushes can no longer
// be answered; a leave completes locally (the server drops the channel with
// the connection); a joined or joining channel errors and rejoins when the
// socket reconnects.
func (ca *chanActor) lost() {
	if ca.leavePush() != nil {
		ca.closeChannel(ErrLeft)
		return
	}
	ca.failSession(ErrDisconnected)
	ca.chanErrored(nil, false)
}

// opened: phoenix.js rejoins every errored channel at once when the socket
// opens, and the rejoin timers start over. Joins that were waiting for a
// connection are sent too.
func (ca *chanActor) opened() {
	ca.rejoinBoReset()
	ca.cancelRejoin()
	if ca.state == ChannelErrored || (ca.state == ChannelJoining && ca.joinPush != nil && !ca.joinPush.sent) {
		ca.rejoin()
	}
}

// handleFrame handles one inbound frame; lent is the reusable buffer m's
// payload is in, or nil.
func (ca *chanActor) handleFrame(m *wire.Message, lent *frameBuf) {
	if m.Event == wire.EventReply {
		ca.handleReply(m)
		return
	}
	if jr, ok := m.JoinRef.Get(); ok && jr != ca.joinRef {
		ca.s.nStale.Add(1) // a frame of an earlier join session
		return
	}
	switch m.Event {
	case wire.EventError:
		if ca.state == ChannelJoined || ca.state == ChannelJoining {
			ca.serverError(m)
		}
	case wire.EventClose:
		ca.serverClose()
	default:
		if ca.state == ChannelErrored || (ca.state == ChannelLeaving && ca.seen > ca.leaveMark) {
			// The session ended (phx_error, lost connection, leave);
			// whatever still arrives for it belongs to no session we can
			// stamp.
			ca.s.nStale.Add(1)
			return
		}
		if len(ca.f.subs) > 0 {
			ca.deliver(m, lent)
		}
	}
}

func (ca *chanActor) serverError(m *wire.Message) {
	ca.chanErrored(&ServerError{Topic: ca.ch.topic, Event: m.Event, Payload: append([]byte(nil), m.Payload...)}, true)
}

func (ca *chanActor) serverClose() {
	if ca.state == ChannelLeaving {
		ca.closeChannel(ErrLeft)
	} else {
		ca.closeChannel(fmt.Errorf("%w: channel %s closed by the server", ErrClosed, ca.ch.topic))
	}
}

// deliver hands m, whose payload may be in the reusable buffer lent, to
// the channel's subscriptions.
func (ca *chanActor) deliver(m *wire.Message, lent *frameBuf) {
	msg := Message{Topic: ca.ch.topic, Event: m.Event, Payload: m.Payload, Binary: m.Binary, JoinRef: ca.joinRef}
	ca.f.deliver(msg, lent)
}

// answerAhead, called before a delivery waits for its consumer, resolves
// the pushes whose replies are queued behind it: the consumer may be the
// caller of such a push, waiting for the reply before it reads again.
// Only user pushes' replies overtake, and only up to a frame of a newer
// connection, so that the channel's state changes keep their order. The
// inbox is taken into the batch for it while the batch holds less than
// an inbox more.
//
// The reply to the channel's leave ends the channel: the frames ahead of it
// are handled first, in order, their messages going past the buffers of
// the subscriptions that wait (memory the batch's bound already counts),
// so that the consumers get every message the channel took before it
// closed.
func (ca *chanActor) answerAhead() {
	if b := ca.b; b == nil || len(b.pending) == 0 && b.leavePush == nil {
		return // no reply to look for
	}
	if b := ca.b; b == nil || len(b.pending) == 0 && b.leavePush == nil {
		return // no reply to look for
	}
	if len(ca.batch)-ca.next < chanInbox {
		// Two arrays in turn, as pump does: a wait woken per message
		// takes a few frames at a time.
		got := ca.in.Drain(ca.ahead)
		ca.batch = append(ca.batch, got...)
		clear(got)
		ca.ahead = got[:0]
	}
	if lp := ca.leavePush(); lp != nil {
		for i := ca.next; i < len(ca.batch); i++ {
			it := &ca.batch[i]
			if ref, ok := it.m.Ref.Get(); ok && it.m.Event == wire.EventReply && ref == lp.ref && it.h == ca.view.h {
				ca.f.force = true
				ca.pump()
				ca.f.force = false
				return
			}
		}
	}
	for i := ca.next; i < len(ca.batch); i++ {
		it := &ca.batch[i]
		if st := it.h.st; st != nil && st.gen > ca.view.gen {
			return
		}
		if it.answered || it.h != ca.view.h || it.m.Event != wire.EventReply {
			continue
		}
		ref, ok := it.m.Ref.Get()
		if !ok {
			continue
		}
		if p := ca.sent(ref); p == nil || p.kind != kindUser {
			continue
		}
		it.answered = true
		ca.handleReply(&it.m)
	}
}

func (ca *chanActor) subsChanged() {
	b := false
	for _, sub := range ca.f.subs {
		b = b || sub.overflow == Block || sub.overflow == Backpressure
	}
	if ca.blocking.Load() != b {
		ca.blocking.Store(b)
	}
}
