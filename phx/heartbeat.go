package phx

import (
	"time"

	"github.com/phxgo/phxgo/wire"
)

func (a *sockActor) resetHeartbeat() {
	a.stopHeartbeat()
	if a.s.cfg.HeartbeatInterval > 0 {
		a.hbTimer.Reset(a.s.cfg.HeartbeatInterval)
	}
}

func (a *sockActor) stopHeartbeat() {
	a.hbTimer.Stop()
	if a.hbPush != nil {
		a.unpend(a.hbPush)
		a.hbPush = nil
	}
}

func (a *sockActor) heartbeatTick() error {
	if !a.open {
		return nil
	}
	if a.hbPush != nil {
		recv := a.s.nReceived.Load()
		if a.stalled() || a.batch != nil || a.evq.Len() > 0 || (a.heldBack && recv != a.hbRecv) {
			// The socket itself holds frames back (waiting for a
			// consumer), has not handled all it read, or is still reading
			// the backlog its own stall left: the reply may be behind
			// those frames, which is no sign of a dead server. Wait
			// another HeartbeatTimeout; a window with nothing held back
			// and, after a stall, nothing read decides.
			a.heldBack = a.heldBack || a.stalled()
			a.hbRecv = recv
			a.hbTimer.Reset(a.s.cfg.HeartbeatTimeout)
			return nil
		}
		// Unanswered for HeartbeatTimeout: the connection is presumed dead
		// (half-open, blackholed). Close it and reconnect.
		a.unpend(a.hbPush)
		a.hbPush = nil
		return a.onLost(ErrHeartbeatTimeout, &closeReq{code: 1000, reason: "heartbeat timeout"})
	}
	p := &push{kind: kindHeartbeat, event: wire.EventHeartbeat, start: time.Now()}
	p.dl.idx = -1
	if a.sendRaw(p) != nil {
		return nil
	}
	a.hbPush = p
	a.heldBack = a.stalled()
	a.hbRecv = a.s.nReceived.Load()
	a.hbTimer.Reset(a.s.cfg.HeartbeatTimeout)
	return nil
}

// sendRaw assigns p a ref on the phoenix topic and writes it; p then waits
// in pending.
func (a *sockActor) sendRaw(p *push) error {
	p.ref = a.nextRef()
	m := wire.Message{Ref: wire.NewRef(p.ref), Topic: wire.TopicPhoenix, Event: p.event, Payload: emptyObject}
	if err := a.write(&m); err != nil {
		return err
	}
	p.sent = true
	a.pending[p.ref] = p
	return nil
}

// unpend forgets a sent push's ref.
func (a *sockActor) unpend(p *push) {
	if p.sent && a.pending[p.ref] == p {
		delete(a.pending, p.ref)
	}
}

// resolve gives a ping its one outcome and forgets it.
func (a *sockActor) resolve(p *push, r pushResult) {
	if p.done {
		return
	}
	p.done = true
	a.dls.cancel(&p.dl)
	a.unpend(p)
	if p.reply != nil {
		p.reply <- r // capacity 1, sent once
	}
}
