package phxtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// chanMsg is one item in a channel's mailbox.
type chanMsg struct {
	in       *inFrame
	leave    bool
	badEvent bool // a non-string event crashes the channel
	crash    bool
	info     any
	isInfo   bool
	barrier  chan struct{} // closed once the messages before it are handled
}

type joinResult struct {
	ok       bool
	response json.RawMessage
}

// chanProc is one joined channel: a goroutine running the handler.
type chanProc struct {
	conn     *Conn
	h        Handler
	topic    string
	topicRaw json.RawMessage
	joinRef  json.RawMessage
	// sockRef is the join_ref the join carried, null included: the socket
	// matches a phx_leave against it and puts it in phx_close and
	// phx_error, where joinRef is what the channel puts in its frames.
	sockRef json.RawMessage
	pub     *Channel

	ctx     context.Context
	cancel  context.CancelCauseFunc
	mbox    chan chanMsg
	joined  chan joinResult // capacity 1
	proceed chan struct{}   // closed by the session once the join reply is queued
	dead    chan struct{}   // closed when the channel stops handling messages

	// Presence diffs to this channel are held while its handler handles a
	// push and until the reply is queued, when Interleave chose the reply
	// first; diffs that come meanwhile queue behind them, so diffs keep
	// their order. inPush is set while HandleIn runs.
	inPush  atomic.Bool
	heldMu  sync.Mutex
	holding bool
	held    []*outFrame
}

type reasonError struct{ r Reason }

func (e reasonError) Error() string { return "phxtest: channel " + string(e.r) }

func newChanProc(c *Conn, h Handler, topic string, topicRaw, joinRef json.RawMessage) *chanProc {
	p := &chanProc{conn: c, h: h, topic: topic, topicRaw: topicRaw, joinRef: joinRef,
		mbox: make(chan chanMsg, 256), joined: make(chan joinResult, 1),
		proceed: make(chan struct{}), dead: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancelCause(c.ctx)
	assigns := make(map[string]any, len(c.sock.Assigns))
	for k, v := range c.sock.Assigns {
		assigns[k] = v
	}
	p.pub = &Channel{p: p, Assigns: assigns}
	return p
}

// tell queues m; it reports false when the channel has stopped.
func (p *chanProc) tell(ctx context.Context, m chanMsg) bool {
	select {
	case <-p.dead:
		return false
	default:
	}
	select {
	case p.mbox <- m:
		return true
	case <-p.dead:
		return false
	case <-ctx.Done():
		return false
	}
}

// stop makes the channel end with reason, without telling the session.
func (p *chanProc) stop(r Reason) { p.cancel(reasonError{r}) }

// run is the channel goroutine: join, then messages until it stops.
func (p *chanProc) run(payload json.RawMessage) {
	defer p.cancel(nil)
	resp, err := p.safeJoin(payload)
	if err != nil {
		var refused *JoinRefused
		r := joinResult{response: joinCrashed}
		if errors.As(err, &refused) {
			r.response, _ = marshal(refused.Response)
		}
		p.joined <- r
		close(p.dead)
		return
	}
	p.joined <- joinResult{ok: true, response: resp}
	select {
	case <-p.proceed:
	case <-p.ctx.Done():
		p.finish(ReasonClosed, false)
		return
	}
	for {
		select {
		case <-p.ctx.Done():
			p.finish(ReasonClosed, false)
			return
		case m := <-p.mbox:
			r, stop := p.handle(m)
			p.release()
			if stop {
				p.finish(r, true)
				return
			}
		}
	}
}

func (p *chanProc) safeJoin(payload json.RawMessage) (resp json.RawMessage, err error) {
	defer func() {
		if recover() != nil {
			err = errChannelCrash
		}
	}()
	v, err := p.h.Join(p.ctx, p.pub, payload)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return json.RawMessage("{}"), nil
	}
	return marshal(v)
}

// finish stops the channel: Terminate, then (when the channel stopped by
// itself) a report to the session, which sends phx_close or phx_error.
func (p *chanProc) finish(r Reason, report bool) {
	if cause := context.Cause(p.ctx); cause != nil {
		var re reasonError
		if errors.As(cause, &re) {
			r, report = re.r, false
		}
	}
	close(p.dead)
	func() {
		defer func() { _ = recover() }()
		p.h.Terminate(p.pub, r)
	}()
	if report {
		select {
		case p.conn.inbox <- msgExit{p: p, reason: r}:
		case <-p.conn.ctx.Done():
		}
	}
}

// handle runs one message; it returns the stop reason when the channel ends.
func (p *chanProc) handle(m chanMsg) (Reason, bool) {
	switch {
	case m.barrier != nil:
		close(m.barrier)
		return "", false
	case m.crash || m.badEvent:
		return ReasonCrash, true
	case m.leave:
		p.reply(m.in, Reply("ok", nil), false)
		return ReasonLeft, true
	case m.isInfo:
		res, crashed := p.safeInfo(m.info)
		if crashed || res.kind == resCrash {
			return ReasonCrash, true
		}
		if res.kind == resStop || res.kind == resStopReply {
			return ReasonStop, true
		}
		return "", false
	}
	f := m.in
	ev, _ := f.eventString()
	in := Inbound{Event: ev, Payload: f.payload, Binary: f.binary,
		ref: ReplyRef{c: p.conn, joinRef: p.joinRef, ref: f.ref, topic: p.topicRaw}}
	p.inPush.Store(true)
	res, crashed := p.safeIn(in)
	p.inPush.Store(false)
	if crashed {
		return ReasonCrash, true
	}
	switch res.kind {
	case resReply:
		p.reply(f, res, true)
	case resStopReply:
		p.reply(f, res, true)
		return ReasonStop, true
	case resStop:
		return ReasonStop, true
	case resCrash:
		return ReasonCrash, true
	}
	return "", false
}

// holdDiffs starts holding presence diffs to this channel when the
// handler, in the middle of a push, changed a presence and Interleave
// chooses the push's reply first. It runs under the presence lock, before
// the diff is broadcast.
func (p *chanProc) holdDiffs() {
	if !p.inPush.Load() {
		return
	}
	p.heldMu.Lock()
	defer p.heldMu.Unlock()
	if !p.holding && p.conn.swap() {
		p.holding = true
	}
}

// holdDiff keeps diff f back while holding; a hold that reaches the outbox
// size is given up, in order, so that it stays bounded.
func (p *chanProc) holdDiff(f *outFrame) bool {
	p.heldMu.Lock()
	defer p.heldMu.Unlock()
	if !p.holding {
		return false
	}
	p.held = append(p.held, f)
	if len(p.held) >= p.conn.srv.cfg.Outbox {
		p.flushLocked()
	}
	return true
}

// release sends the held diffs, after the push's reply.
func (p *chanProc) release() {
	p.heldMu.Lock()
	defer p.heldMu.Unlock()
	if p.holding {
		p.flushLocked()
	}
}

// flushLocked queues the held diffs while holding heldMu, so that a diff
// broadcast meanwhile cannot overtake them.
func (p *chanProc) flushLocked() {
	for _, f := range p.held {
		_ = p.conn.enqueue(p.conn.ctx, f)
	}
	p.held, p.holding = nil, false
}

func (p *chanProc) safeIn(in Inbound) (res Result, crashed bool) {
	defer func() {
		if recover() != nil {
			crashed = true
		}
	}()
	return p.h.HandleIn(p.ctx, p.pub, in), false
}

func (p *chanProc) safeInfo(msg any) (res Result, crashed bool) {
	defer func() {
		if recover() != nil {
			crashed = true
		}
	}()
	return p.h.HandleInfo(p.ctx, p.pub, msg), false
}

// reply answers push f with the channel's current join ref (fact 3).
func (p *chanProc) reply(f *inFrame, res Result, faultable bool) {
	faults := p.conn.effectiveFaults()
	if faultable && faults.DropReplies {
		return
	}
	if d := faults.ReplyDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
	}
	out := &outFrame{joinRef: p.joinRef, ref: f.ref, topic: p.topicRaw, event: eventReply}
	if res.binary {
		out.binary, out.status, out.payload = true, res.status, res.data
	} else {
		body, err := marshal(res.response)
		if err != nil {
			body = json.RawMessage(`{"reason":"unencodable response"}`)
		}
		out.payload = replyPayload(res.status, body)
	}
	_ = p.conn.enqueue(p.ctx, out)
}

// Channel is a joined channel as its Handler sees it. Its methods are safe
// for concurrent use, also from goroutines the handler starts; they return
// ErrConnClosed once the connection has ended.
type Channel struct {
	p *chanProc
	// Assigns starts as a copy of the socket's assigns; the handler may
	// change it freely from its own callbacks (it is not locked).
	Assigns map[string]any
}

// Topic is the channel's topic.
func (ch *Channel) Topic() string { return ch.p.topic }

// JoinRef is the channel's join ref (the join's ref when the join carried
// a null join_ref).
func (ch *Channel) JoinRef() string { return refText(ch.p.joinRef) }

// SocketID is the socket id the Connect hook gave.
func (ch *Channel) SocketID() string { return ch.p.conn.sock.ID }

// Params are the connection's query parameters.
func (ch *Channel) Params() url.Values { return ch.p.conn.params }

// Conn is the connection the channel belongs to.
func (ch *Channel) Conn() *Conn { return ch.p.conn }

// Push sends [join_ref, null, topic, event, payload] to this client, as
// push/3 does.
func (ch *Channel) Push(event string, payload any) error {
	body, err := marshal(payload)
	if err != nil {
		return err
	}
	return ch.p.conn.enqueue(ch.p.conn.ctx, &outFrame{joinRef: ch.p.joinRef, ref: jsonNull, topic: ch.p.topicRaw, event: event, payload: body})
}

// PushBinary sends a binary push ({:binary, data}).
func (ch *Channel) PushBinary(event string, data []byte) error {
	return ch.p.conn.enqueue(ch.p.conn.ctx, &outFrame{joinRef: ch.p.joinRef, ref: jsonNull, topic: ch.p.topicRaw, event: event, payload: data, binary: true})
}

// Broadcast sends event to every channel on the topic, this one included,
// as broadcast!/3 does. Subscribers' frames are queued before it returns,
// so a broadcast made in HandleIn reaches the sender before the reply.
func (ch *Channel) Broadcast(event string, payload any) error {
	body, err := marshal(payload)
	if err != nil {
		return err
	}
	return ch.p.conn.srv.pubsub.broadcast(ch.p.ctx, ch.p.topic, event, body, false, nil, false)
}

// BroadcastBinary broadcasts a binary payload.
func (ch *Channel) BroadcastBinary(event string, data []byte) error {
	return ch.p.conn.srv.pubsub.broadcast(ch.p.ctx, ch.p.topic, event, data, true, nil, false)
}

// BroadcastFrom broadcasts to every channel on the topic except this one,
// as broadcast_from!/3 does.
func (ch *Channel) BroadcastFrom(event string, payload any) error {
	body, err := marshal(payload)
	if err != nil {
		return err
	}
	return ch.p.conn.srv.pubsub.broadcast(ch.p.ctx, ch.p.topic, event, body, false, ch.p, false)
}

// Go runs f on a goroutine owned by the connection, as a handler would
// spawn a process holding a socket_ref: f may outlive the channel (its
// ReplyRef still answers), and ctx ends when the connection does, which
// waits for f to return.
func (ch *Channel) Go(f func(ctx context.Context)) {
	c := ch.p.conn
	c.tasks.Add(1)
	go func() {
		defer c.tasks.Done()
		f(c.ctx)
	}()
}

// Send delivers msg to the handler's HandleInfo on the channel goroutine,
// after the messages already queued, as send(self(), msg) does. It fails
// with ErrOutboxFull instead of blocking when the mailbox is full, so a
// handler may call it from its own callbacks.
func (ch *Channel) Send(msg any) error {
	select {
	case <-ch.p.dead:
		return ErrConnClosed
	default:
	}
	select {
	case ch.p.mbox <- chanMsg{info: msg, isInfo: true}:
		return nil
	default:
		return ErrOutboxFull
	}
}

// Track adds a presence for key with meta on this channel's topic, as
// Presence.track does: a presence_diff with the join goes to every
// subscriber, this channel included. The server adds "phx_ref".
func (ch *Channel) Track(key string, meta map[string]any) error {
	return ch.p.conn.srv.pres.track(ch.p, key, meta)
}

// Update replaces the meta of this channel's presence for key; the diff has
// the key in both joins (new meta with "phx_ref_prev") and leaves.
func (ch *Channel) Update(key string, meta map[string]any) error {
	return ch.p.conn.srv.pres.update(ch.p, key, meta)
}

// Untrack removes this channel's presence for key.
func (ch *Channel) Untrack(key string) error { return ch.p.conn.srv.pres.untrack(ch.p, key) }

// Meta returns the current meta of this channel's presence for key (phx_ref
// included), or nil.
func (ch *Channel) Meta(key string) map[string]any { return ch.p.conn.srv.pres.meta(ch.p, key) }

// Presence returns the topic's presence list in presence_state's shape.
func (ch *Channel) Presence() map[string]any { return ch.p.conn.srv.pres.list(ch.p.topic) }
