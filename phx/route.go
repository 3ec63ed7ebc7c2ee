package phx

import (
	"errors"
	"slices"
	"time"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// route is where a topic's frames go: the channel that claimed it last,
// and channels that left it (or were superseded on it) but still wait for
// frames of their own join session.
type route struct {
	cur     *chanActor
	curRef  string
	olds    []oldRoute
	slow    bool // in an inbox overflow episode
	dropped uint64
	replies uint8 // replies routed here, up to 2: see publishRoute
	pub     bool  // published for routeDirect
}

type oldRoute struct {
	ca    *chanActor
	ref   string // its join ref
	leave string // the ref of its phx_leave, once sent
}

// byJoinRef is the channel of the join session jr: the current one, an
// old one, or the current channel when none matches (which counts the
// frame as stale).
func (rt *route) byJoinRef(jr string) *chanActor {
	if jr != rt.curRef {
		for _, o := range rt.olds {
			if o.ref == jr {
				return o.ca
			}
		}
	}
	return rt.cur
}

// byReplyRef is the channel that waits for the reply ref when the reply
// names no join session, as on vsn 1.0.0 (where no server frame carries a
// join_ref) and in Phoenix's "unmatched topic" replies: a channel that
// left or was superseded gets the replies to its own join and leave, the
// current channel the rest, and with no current channel the latest old
// one gets them (its pushes sent before it left).
func (rt *route) byReplyRef(ref string) *chanActor {
	if ref != "" && ref != rt.curRef {
		for _, o := range rt.olds {
			if o.ref == ref || o.leave == ref {
				return o.ca
			}
		}
	}
	if rt.cur == nil && len(rt.olds) > 0 {
		return rt.olds[len(rt.olds)-1].ca
	}
	return rt.cur
}

// release moves ca, leaving with the phx_leave leaveRef, from the current
// route to the old ones, or records leaveRef when it is old already (a
// channel superseded by another).
func (rt *route) release(ca *chanActor, leaveRef string) {
	if rt.cur == ca {
		rt.olds = append(rt.olds, oldRoute{ca: ca, ref: rt.curRef, leave: leaveRef})
		rt.cur, rt.curRef = nil, ""
		return
	}
	for i := range rt.olds {
		if rt.olds[i].ca == ca {
			rt.olds[i].leave = leaveRef
		}
	}
}

// routeView is a topic's route as the socket actor publishes it for the
// reader (see routeDirect): its one channel and that channel's join ref.
// Immutable.
type routeView struct {
	ca  *chanActor
	ref string
}

// publishRoute updates topic's published route for routeDirect after a
// change. Only a route with a current channel and no old ones is
// published, the only case where the reader may route a reply itself, and
// only once the channel has had a reply besides its join's (see
// handleFrame): a channel that only joins and listens costs the table
// nothing.
func (a *sockActor) publishRoute(topic string) {
	rt := a.routes[topic]
	if rt == nil || rt.cur == nil || len(rt.olds) > 0 || rt.replies < 2 {
		if rt != nil {
			rt.replies = 0 // another session: count anew
		}
		if rt == nil || rt.pub {
			a.direct.Delete(topic)
		}
		if rt != nil {
			rt.pub = false
		}
		return
	}
	if v, ok := a.direct.Load(topic); ok {
		if rv := v.(*routeView); rv.ca == rt.cur && rv.ref == rt.curRef {
			return
		}
	}
	a.direct.Store(topic, &routeView{ca: rt.cur, ref: rt.curRef})
	rt.pub = true
}

// routeDirect, run by the reader, puts a channel's reply straight into the
// channel's inbox when the socket actor has nothing left to do with it:
// every frame read before it routed (so the reply overtakes none of its
// channel's frames), the connection proven healthy already, no
// socket-wide subscription to show it to, and the route published with
// the reply's join session. The socket actor's goroutine is then not
// woken for it: a push's round trip crosses one goroutine less. It reports
// false, with nothing done, when the frame must go through the actor.
//
// The table is a sync.Map: read on every reply by the reader, written by
// the socket actor alone, once per join and leave, with topics that stay
// put; a copy-on-write map would copy all of a socket's topics at every
// join (10,000 channels joined: 50 million entries copied).
func (a *sockActor) routeDirect(h *connHandle, m *wire.Message) bool {
	if h.inflight.Load() != 0 || !h.proven.Load() || a.tapsOn.Load() || m.Binary || m.Topic == wire.TopicPhoenix {
		return false
	}
	v, ok := a.direct.Load(m.Topic)
	if !ok {
		return false
	}
	rv := v.(*routeView)
	if jr, ok := m.JoinRef.Get(); !ok || jr != rv.ref {
		return false
	}
	p, err := wire.CheckPayload(m.Payload)
	if err != nil {
		return false // the actor reports it
	}
	m.Payload = p
	rv.ca.deliverDirect(m, rv.ref)
	ref, _ := m.Ref.Get()
	return rv.ca.in.TryPutKey(inItem{h: h, m: *m}, ref) == nil
}

// handleFrame routes one frame: heartbeat and ping replies to the socket
// itself, everything else by topic (a map lookup) to the channel actor
// that owns it, through that channel's inbox. It never waits for a channel
// (see chanInbox): a frame that finds the inbox full is dropped, counted
// (Stats.Overflowed) and reported as a SlowConsumer for the topic, unless
// the channel has a subscription that waits for its consumer, in which
// case the socket stops taking frames (and only frames) until the inbox
// has room. Past the bound go only the replies the channel waits for (it
// holds a ticket for each ref it sent) and one phx_error and one phx_close
// per overflow, which bring it to a state where it sends no more: so the
// inbox stays within chanInbox plus the channel's pending pushes plus two,
// whatever the server sends.
//
// lent is the reusable buffer m's payload is in (see readLoop), or nil:
// the channel m is routed to takes it over.
func (a *sockActor) handleFrame(h *connHandle, m *wire.Message, lent *frameBuf) {
	if !a.routed {
		if !a.route(h, m, lent) {
			return // stalled before the channel took it
		}
		a.routed = true
	}
	if a.ownReply {
		a.ownReply = false
		return // a heartbeat's reply stays inside the socket
	}
	a.tap(m)
}

// route hands m to its channel, or handles it when it is the socket's own;
// false when m must wait for room in its channel's inbox.
func (a *sockActor) route(h *connHandle, m *wire.Message, lent *frameBuf) bool {
	if m.Event == wire.EventReply {
		a.proveHealthy()
		if !h.proven.Load() {
			h.proven.Store(true)
		}
	}
	if m.Topic == wire.TopicPhoenix && m.Event == wire.EventReply {
		a.ownReply = a.handleReply(m)
		return true
	}
	rt := a.routes[m.Topic]
	jr, hasJR := m.JoinRef.Get()
	v1Ctl := false
	if !hasJR && a.s.ser == wire.V1 && (m.Event == wire.EventClose || m.Event == wire.EventError) {
		// vsn 1.0.0 sends no join_ref: Phoenix puts the join ref of the
		// session that ended in the ref of phx_close and phx_error.
		jr, hasJR = m.Ref.Get()
		v1Ctl = hasJR
	}
	var ca *chanActor
	switch {
	case rt == nil:
	case hasJR:
		ca = rt.byJoinRef(jr)
	case m.Event == wire.EventReply:
		ref, _ := m.Ref.Get()
		ca = rt.byReplyRef(ref)
	default:
		ca = rt.cur
	}
	if ca == nil {
		a.s.nUnrouted.Add(1)
	} else {
		it := inItem{h: h, m: *m, lent: lent}
		if v1Ctl {
			it.m.JoinRef = m.Ref // the channel checks it as a join_ref
		}
		var err error
		switch m.Event {
		case wire.EventReply:
			ref, _ := m.Ref.Get()
			err = ca.in.TryPutKey(it, ref)
		case wire.EventError, wire.EventClose:
			err = ca.in.TryPut(it)
			if errors.Is(err, actor.ErrFull) && ca.ctlOver < 2 {
				ca.ctlOver++
				err = ca.in.Force(it)
			} else if err == nil {
				ca.ctlOver = 0
			}
		default:
			err = ca.in.TryPut(it)
			if err == nil {
				ca.ctlOver = 0
			}
		}
		switch {
		case err == nil:
			rt.slow = false
			if m.Event == wire.EventReply && rt.replies < 2 && ca == rt.cur && hasJR {
				if rt.replies++; rt.replies == 2 {
					a.publishRoute(m.Topic)
				}
			}
		case errors.Is(err, actor.ErrFull):
			if ca.blocking.Load() {
				a.stall = ca
				return false
			}
			a.s.nOverflowed.Add(1)
			rt.dropped++
			if !rt.slow {
				rt.slow = true
				a.emit(SlowConsumer{Topic: m.Topic, Dropped: rt.dropped, Err: ErrSlowConsumer})
			}
		default:
			a.s.nUnrouted.Add(1) // the channel has just stopped
		}
	}
	return true
}

// pruneTaps ends the socket-wide subscriptions closed by a Close that
// found the mailbox full (see Subscription.Close).
func (a *sockActor) pruneTaps() {
	for i := 0; i < len(a.taps); i++ {
		sub := a.taps[i]
		if sub.closing.Load() {
			a.removeTap(sub)
			i--
		}
	}
}

// handleReply handles a reply on the phoenix topic: a heartbeat's or a
// ping's.
// It reports whether m was a heartbeat's reply, which stays inside the
// socket; a ping's reply, and a reply to nothing, go to the socket-wide
// subscriptions too.
func (a *sockActor) handleReply(m *wire.Message) (heartbeat bool) {
	ref, ok := m.Ref.Get()
	p := a.pending[ref]
	if !ok || p == nil {
		a.s.nUnrouted.Add(1)
		return false
	}
	if p == a.hbPush {
		a.s.heartbeatDone(time.Since(p.start))
		a.hbPush = nil
		a.unpend(p)
		a.hbTimer.Reset(a.s.cfg.HeartbeatInterval)
		return true
	}
	a.resolve(p, pushResult{rtt: time.Since(p.start)})
	return false
}

func removeSub(list []*Subscription, sub *Subscription) []*Subscription {
	for i, x := range list {
		if x == sub {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			return list[:len(list)-1]
		}
	}
	return list
}

func (a *sockActor) claim(m claimMsg) claimResult {
	topic := m.ca.ch.topic
	rt := a.routes[topic]
	if rt == nil {
		rt = &route{}
		a.routes[topic] = rt
	}
	for _, o := range rt.olds {
		if o.ca == m.ca {
			return claimResult{}
		}
	}
	prev := rt.cur
	if prev == m.ca {
		prev = nil
	} else if prev != nil {
		rt.olds = append(rt.olds, oldRoute{ca: prev, ref: rt.curRef})
	}
	rt.cur, rt.curRef = m.ca, m.joinRef
	a.publishRoute(topic)
	return claimResult{prev: prev, ok: true}
}

// forget drops a channel actor that stopped or retired, and its routes.
func (a *sockActor) forget(ca *chanActor) {
	delete(a.chans, ca)
	if a.stall == ca {
		a.stall = nil
	}
	topic := ca.ch.topic
	rt := a.routes[topic]
	if rt == nil {
		return
	}
	if rt.cur == ca {
		rt.cur, rt.curRef = nil, ""
	}
	rt.olds = slices.DeleteFunc(rt.olds, func(o oldRoute) bool { return o.ca == ca })
	if rt.cur == nil && len(rt.olds) == 0 {
		delete(a.routes, topic)
	}
	a.publishRoute(topic)
}
