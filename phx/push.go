package phx

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/wire"
)

type pushKind uint8

const (
	kindUser pushKind = iota
	kindSend          // a Send: resolved once written, no reply awaited
	kindJoin
	kindLeave
	kindHeartbeat
	kindPing
)

// push is one outbound request awaiting its outcome. The caller fills it in
// before handing it to an actor (the channel's, or the socket's for pings
// and heartbeats) and afterwards only receives from reply; every other
// field belongs to that actor.
type push struct {
	kind    pushKind
	event   string
	payload []byte
	binary  bool
	reply   chan pushResult // capacity 1; nil for internal pushes
	timeout time.Duration
	start   time.Time

	ref, joinRef string
	sent, done   bool
	listed       bool            // in its channel's waiting table (see deliverDirect)
	ctx          context.Context // the caller's, for observers
	rejoin       bool            // a join push after the first
	observed     bool            // a join push whose outcome was observed
	dl           deadline

	// given is set by whoever sends the one result on reply: the channel
	// actor, or the reader for a reply it delivers itself.
	given atomic.Bool
}

type pushResult struct {
	reply Reply
	rtt   time.Duration
	err   error
}

func (ca *chanActor) handleReply(m *wire.Message) {
	ref, ok := m.Ref.Get()
	var p *push
	switch {
	case !ok:
	case ca.joinPush != nil && ca.joinPush.sent && ca.joinPush.ref == ref:
		p = ca.joinPush
	case ca.leavePush() != nil && ca.b.leavePush.ref == ref:
		p = ca.b.leavePush
	default:
		p = ca.sent(ref)
	}
	if p == nil {
		ca.s.nUnrouted.Add(1)
		return
	}
	if jr, ok := m.JoinRef.Get(); ok && jr != p.joinRef {
		ca.s.nStale.Add(1)
		return
	}
	ca.replied(p, m)
}

// replied gives p its reply m.
func (ca *chanActor) replied(p *push, m *wire.Message) {
	r, err := wire.ParseReply(m)
	if err != nil {
		ca.badReply(p, err)
		return
	}
	switch p.kind {
	case kindUser:
		ca.userReply(p, Reply{Status: r.Status, Response: r.Response, Binary: r.Binary})
	case kindJoin:
		ca.joinReply(Reply{Status: r.Status, Response: r.Response, Binary: r.Binary})
	case kindLeave:
		ca.closeChannel(ErrLeft)
	}
}

func (ca *chanActor) badReply(p *push, err error) {
	ca.s.nMalformed.Add(1)
	if p.kind == kindUser {
		ca.resolve(p, pushResult{err: fmt.Errorf("%w: %w", ErrProtocol, err)})
	}
}

func (ca *chanActor) userReply(p *push, rep Reply) {
	if rep.Status != "ok" {
		ca.s.stats.pushesErrored.Add(1)
	} else {
		ca.s.stats.pushesReplied.Add(1)
	}
	ca.s.stats.pushLatency.observe(time.Since(p.start))
	ca.resolve(p, userResult(rep))
}

// userResult is a user push's outcome for its reply rep.
func userResult(rep Reply) pushResult {
	res := pushResult{reply: rep}
	if rep.Status != "ok" {
		res.err = &ReplyError{Status: rep.Status, Response: rep.Response}
	}
	return res
}

// deliverDirect, run by the reader (see routeDirect), gives a waiting
// push its reply m at once, so that the caller wakes without waiting for
// the channel's goroutine; the channel then takes the same frame from its
// inbox to forget the push, and finds its outcome given already. The
// channel lists a push in its waiting table before writing it, with every
// field read here set, and unlists it when it resolves it.
func (ca *chanActor) deliverDirect(m *wire.Message, joinRef string) {
	ref, ok := m.Ref.Get()
	if !ok {
		return
	}
	w := ca.waiting.Load()
	if w == nil {
		return
	}
	v, ok := w.Load(ref)
	if !ok {
		return
	}
	p := v.(*push)
	if p.joinRef != joinRef {
		return
	}
	r, err := wire.ParseReply(m)
	if err != nil {
		return // the channel reports it
	}
	if p.given.CompareAndSwap(false, true) {
		p.reply <- userResult(Reply{Status: r.Status, Response: r.Response, Binary: r.Binary})
	}
}

func (ca *chanActor) cancelPush(p *push) {
	if !p.done {
		ca.resolve(p, pushResult{err: context.Canceled})
	}
}

func (ca *chanActor) handlePush(p *push) {
	p.dl.idx = -1
	p.dl.p = p
	switch {
	case !ca.joinedOnce:
		ca.resolve(p, pushResult{err: ErrNotJoined})
		return
	case ca.state == ChannelLeaving:
		ca.resolve(p, pushResult{err: ErrLeft})
		return
	}
	b := ca.busy()
	b.dls.schedule(&p.dl, p.start.Add(p.timeout))
	if ca.view.h != nil && ca.state == ChannelJoined {
		ca.sendPush(p)
		return
	}
	if len(b.buf) >= ca.s.cfg.PushBuffer {
		ca.resolve(p, pushResult{err: ErrPushBufferFull})
		return
	}
	b.buf = append(b.buf, p)
}

// sendPush sends a push in the channel's current join session; it then
// waits in pending for its reply.
func (ca *chanActor) sendPush(p *push) {
	p.ref = ca.nextRef()
	p.joinRef = ca.joinRef
	ca.in.Admit(p.ref) // before the reply can come
	if p.kind == kindUser && p.reply != nil {
		w := ca.waiting.Load()
		if w == nil {
			w = new(sync.Map)
			ca.waiting.Store(w)
		}
		w.Store(p.ref, p)
		p.listed = true
	}
	if err := ca.writePush(p); err != nil {
		ca.in.Revoke(p.ref)
		ca.resolve(p, pushResult{err: err})
		return
	}
	p.sent = true
	ca.s.stats.pushesSent.Add(1)
	if p.kind == kindSend {
		ca.resolve(p, pushResult{}) // written: nothing to wait for
		return
	}
	b := ca.busy()
	if b.pending == nil {
		b.pending = make(map[string]*push)
	}
	b.pending[p.ref] = p
}

func (ca *chanActor) writePush(p *push) error {
	return ca.send(p.joinRef, p.ref, p.event, p.payload, p.binary)
}

// send encodes a frame of the channel (joinRef "" sends null; a nil
// payload sends {}) and queues it for the connection the channel knows of.
// The frame's buffer is sized beforehand, so that the encoder need not
// grow it.
func (ca *chanActor) send(joinRef, ref, event string, payload []byte, binary bool) error {
	h := ca.view.h
	if h == nil {
		return ErrDisconnected
	}
	m := wire.Message{Ref: wire.NewRef(ref), Topic: ca.ch.topic, Event: event, Payload: payload, Binary: binary}
	if joinRef != "" {
		m.JoinRef = wire.NewRef(joinRef)
	}
	if m.Payload == nil {
		m.Payload = emptyObject
	}
	// Both encodings take less than this unless topic or event need
	// escapes, and then the encoder grows the buffer itself.
	buf := make([]byte, 0, len(m.Payload)+len(m.Topic)+len(event)+len(joinRef)+len(ref)+32)
	data, op, err := ca.s.ser.EncodeClient(buf, &m)
	if err != nil {
		return err
	}
	return ca.out(h, outFrame{op: op, data: data})
}

// out writes a frame to connection h: itself when the connection is idle
// (see connHandle), or through the socket's writer. It waits when the
// writer is behind (bounded by WriteTimeout, after which the writer drops
// the connection) and gives up when the connection or the socket stops.
func (ca *chanActor) out(h *connHandle, f outFrame) error {
	if ok, err := h.tryWrite(f, ca.s.cfg.WriteTimeout); ok {
		if err != nil {
			return ErrDisconnected
		}
		return nil
	}
	if h.enqueue(f) {
		return nil
	}
	h.queued.Add(1)
	select {
	case h.out <- f:
		h.kick()
		return nil
	case <-h.wdone:
		h.queued.Add(-1)
		return ErrDisconnected
	case <-ca.ctx.Done():
		h.queued.Add(-1)
		return ErrClosed
	}
}

// nextRef mints a ref from the socket's counter. Replies are routed by
// topic, so a ref need only be unique among this channel's waiting pushes,
// even after the counter wraps.
func (ca *chanActor) nextRef() string {
	for {
		n := ca.s.ref.Add(1)
		if n == 0 {
			continue
		}
		r := strconv.FormatUint(n, 10)
		if ca.sent(r) != nil {
			continue
		}
		if lp := ca.leavePush(); (ca.joinPush != nil && ca.joinPush.ref == r) || (lp != nil && lp.ref == r) {
			continue
		}
		return r
	}
}

var emptyObject = []byte("{}")

// resolve gives a user push its one outcome and forgets it everywhere.
func (ca *chanActor) resolve(p *push, r pushResult) {
	if p.done {
		return
	}
	p.done = true
	ca.cancel(&p.dl)
	if p.listed {
		ca.waiting.Load().Delete(p.ref)
	}
	if b := ca.b; b == nil {
		// nothing of it was kept
	} else if p.sent {
		ca.in.Revoke(p.ref)
		if b.pending[p.ref] == p {
			delete(b.pending, p.ref) // the map goes with b once the channel is idle
		}
	} else if i := slices.Index(b.buf, p); i >= 0 {
		b.buf = slices.Delete(b.buf, i, i+1)
	}
	ca.observePush(p, &r)
	if p.reply != nil && p.given.CompareAndSwap(false, true) {
		p.reply <- r // capacity 1, sent once
	}
}

func (ca *chanActor) pushTimeout(p *push) {
	switch p.kind {
	case kindUser, kindSend:
		ca.s.stats.pushesTimed.Add(1)
		ca.resolve(p, pushResult{err: ErrTimeout})
	case kindJoin:
		ca.joinTimeout(p)
	case kindLeave:
		ca.closeChannel(ErrLeft)
	}
}
