package phxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// sessionMsg is what a session goroutine handles; a sealed sum type.
type sessionMsg interface{ sessionMsg() }

type msgFrame struct{ f inFrame }
type msgBatch struct{ fs []inFrame }
type msgExit struct {
	p      *chanProc
	reason Reason
}
type msgCrash struct {
	topic string
	done  chan error // capacity 1
}

func (msgFrame) sessionMsg() {}
func (msgBatch) sessionMsg() {}
func (msgExit) sessionMsg()  {}
func (msgCrash) sessionMsg() {}

var (
	unmatchedTopic   = replyPayload("error", json.RawMessage(`{"reason":"unmatched topic"}`))
	okEmpty          = replyPayload("ok", json.RawMessage(`{}`))
	tooManyChannels  = replyPayload("error", json.RawMessage(`{"reason":"too many channels joined"}`))
	joinCrashed      = json.RawMessage(`{"reason":"join crashed"}`)
	errChannelCrash  = errors.New("phxtest: channel crashed")
	crashPayload17   = json.RawMessage(`{}`)
	crashPayload18   = json.RawMessage(`{"reason":"channel_crash"}`)
	phoenixTopicJSON = quote(topicPhoenix)
)

// session is the transport-independent core of a connection: it consumes
// decoded client frames from c.inbox and emits frames into c.out. It owns
// the channel table; channel goroutines report to it through c.inbox.
type session struct {
	c     *Conn
	chans map[string]*chanProc
	wg    sync.WaitGroup
}

// run serves the connection until its context ends, then stops every
// channel and removes their subscriptions and presences.
func (s *session) run() {
	c := s.c
	defer func() {
		c.cancel()
		s.wg.Wait()
		c.tasks.Wait()
		for _, p := range s.chans {
			s.detach(p)
		}
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case m := <-c.inbox:
			switch m := m.(type) {
			case msgFrame:
				s.handle(m.f)
			case msgBatch:
				s.handleBatch(m.fs)
			case msgExit:
				s.exited(m.p, m.reason)
			case msgCrash:
				p := s.chans[m.topic]
				if p == nil {
					m.done <- ErrNotJoined
					continue
				}
				p.tell(c.ctx, chanMsg{crash: true})
				m.done <- nil
			}
		}
	}
}

func (s *session) emit(f *outFrame) { _ = s.c.enqueue(s.c.ctx, f) }

func (s *session) unmatched(f *inFrame) {
	s.emit(&outFrame{joinRef: jsonNull, ref: f.ref, topic: f.topic, event: eventReply, payload: unmatchedTopic})
}

func (f *inFrame) isHeartbeat() bool {
	topic, topicOK := f.topicString()
	event, eventOK := f.eventString()
	// Phoenix answers the event whatever the payload, a binary one too.
	return topicOK && topic == topicPhoenix && eventOK && event == eventHeartbeat
}

// handleBatch handles the frames of one long-poll POST in order, except
// that pushes to joined channels followed by a heartbeat are answered
// either all before the heartbeat (the order recorded from Phoenix) or
// after it, as Interleave chooses: held until the heartbeat is answered.
func (s *session) handleBatch(fs []inFrame) {
	var held []inFrame
	flush := func() {
		for _, f := range held {
			s.handle(f)
		}
		held = held[:0]
	}
	for _, f := range fs {
		switch {
		case f.isHeartbeat() && len(held) > 0:
			if s.c.swap() {
				s.handle(f)
				flush()
				continue
			}
			chans := map[*chanProc]struct{}{}
			for _, h := range held {
				if topic, ok := h.topicString(); ok && s.chans[topic] != nil {
					chans[s.chans[topic]] = struct{}{}
				}
			}
			flush()
			s.settle(chans)
			s.handle(f)
		case s.isPush(&f):
			held = append(held, f)
		default:
			flush()
			s.handle(f)
		}
	}
	flush()
}

// sameRef reports whether a leave's join_ref matches a channel joined with
// join_ref joined: a channel joined with a null join_ref matches any.
func sameRef(joined, leave json.RawMessage) bool {
	j := bytes.TrimSpace(joined)
	return string(j) == "null" || string(j) == string(bytes.TrimSpace(orNull(leave)))
}

// isPush reports whether f goes to a joined channel's handler.
func (s *session) isPush(f *inFrame) bool {
	topic, ok := f.topicString()
	if !ok || s.chans[topic] == nil {
		return false
	}
	event, ok := f.eventString()
	return !ok || (event != eventJoin && event != eventLeave)
}

// settle waits until every channel of chans has handled what it was given
// so far (or stopped), so that their replies are queued.
func (s *session) settle(chans map[*chanProc]struct{}) {
	for p := range chans {
		b := make(chan struct{})
		if !p.tell(s.c.ctx, chanMsg{barrier: b}) {
			continue
		}
		select {
		case <-b:
		case <-p.dead:
		case <-s.c.ctx.Done():
			return
		}
	}
}

func (s *session) handle(f inFrame) {
	topic, topicOK := f.topicString()
	event, eventOK := f.eventString()
	switch {
	case f.isHeartbeat():
		if !s.c.effectiveFaults().IgnoreHeartbeats {
			s.emit(&outFrame{joinRef: jsonNull, ref: f.ref, topic: phoenixTopicJSON, event: eventReply, payload: okEmpty})
		}
	case !topicOK:
		s.unmatched(&f)
	case eventOK && event == eventJoin && !f.binary:
		s.join(f, topic)
	case eventOK && event == eventLeave && s.chans[topic] == nil:
		s.emit(&outFrame{joinRef: f.joinRef, ref: f.ref, topic: f.topic, event: eventReply, payload: okEmpty})
	case eventOK && event == eventLeave && !sameRef(s.chans[topic].sockRef, f.joinRef):
		// Phoenix's socket takes a leave whose join_ref is not the
		// channel's for a client that raced a close it was already sent,
		// and drops it: no reply, no phx_close, the channel stays.
	default:
		p := s.chans[topic]
		if p == nil {
			s.unmatched(&f)
			return
		}
		// A channel that has just stopped is still in the table until its
		// exit is handled; Phoenix sends the frame to the dead process, which
		// drops it, and the phx_error or phx_close follows.
		p.tell(s.c.ctx, chanMsg{in: &f, leave: eventOK && event == eventLeave, badEvent: !eventOK})
	}
}

// join runs a channel's Join while the session waits, as a Phoenix socket
// process does: frames that arrive meanwhile are handled after it.
func (s *session) join(f inFrame, topic string) {
	c := s.c
	h := c.srv.route(topic)
	if h == nil {
		s.unmatched(&f)
		return
	}
	old := s.chans[topic]
	// Phoenix's socket refuses the join itself, before any channel process
	// starts (so Join never runs), echoing the join's refs; a duplicate
	// join replaces its channel and so never counts against the limit.
	if old == nil && c.srv.cfg.MaxChannels > 0 && len(s.chans) >= c.srv.cfg.MaxChannels {
		s.emit(&outFrame{joinRef: f.joinRef, ref: f.ref, topic: f.topic, event: eventReply, payload: tooManyChannels})
		return
	}
	if old != nil {
		// Phoenix shuts the old channel down while the new one joins; its
		// presence leaves before the new channel subscribes, and its
		// phx_close comes after the new join's reply (fact 9).
		delete(s.chans, topic)
		s.detach(old)
		old.stop(ReasonReplaced)
	}
	jr := f.joinRef
	if string(orNull(jr)) == "null" {
		jr = f.ref // the channel adopts the join's ref
	}
	p := newChanProc(c, h, topic, f.topic, jr)
	p.sockRef = orNull(f.joinRef)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.run(f.payload)
	}()
	var res joinResult
	select {
	case res = <-p.joined:
	case <-c.ctx.Done():
		return
	}
	faults := c.effectiveFaults()
	if d := faults.ReplyDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
	status := "ok"
	if !res.ok {
		status = "error"
	}
	answer := func() {
		if !faults.DropJoinReplies {
			s.emit(&outFrame{joinRef: f.joinRef, ref: f.ref, topic: f.topic, event: eventReply,
				payload: replyPayload(status, res.response)})
		}
		if old != nil {
			s.emit(&outFrame{joinRef: old.sockRef, ref: old.sockRef, topic: f.topic, event: eventClose, payload: json.RawMessage("{}")})
		}
	}
	if !res.ok {
		answer()
		close(p.proceed) // lets the refused channel's goroutine end
		return
	}
	s.chans[topic] = p
	// Phoenix subscribes the channel before the socket sends the join reply,
	// and broadcasts reach the client only after that reply: a client that
	// broadcasts as soon as it sees "joined" must not be missed.
	c.srv.pubsub.subscribeAfter(p, answer)
	c.setJoined(topic, p.joinRef)
	close(p.proceed)
}

// exited handles a channel that stopped by itself.
func (s *session) exited(p *chanProc, reason Reason) {
	if s.chans[p.topic] != p {
		return // superseded by a duplicate join: already handled
	}
	delete(s.chans, p.topic)
	s.detach(p)
	payload := json.RawMessage("{}")
	event := eventClose
	if reason == ReasonCrash {
		event, payload = eventError, crashPayload17
		if s.c.srv.cfg.Phoenix18 {
			payload = crashPayload18
		}
	}
	// The socket, not the channel, sends these, with the join_ref it keeps
	// for the channel: the join's, null when the join carried null.
	s.emit(&outFrame{joinRef: p.sockRef, ref: p.sockRef, topic: p.topicRaw, event: event, payload: payload})
}

// detach unsubscribes p and removes its presences (broadcasting the leaves
// to the other subscribers).
func (s *session) detach(p *chanProc) {
	s.c.srv.pubsub.unsubscribe(p)
	s.c.srv.pres.untrackAll(p)
	if jr, ok := s.c.joinRefRaw(p.topic); ok && string(jr) == string(p.joinRef) {
		s.c.setJoined(p.topic, nil)
	}
}

// startSession runs a session for c in the server's goroutine group.
func startSession(c *Conn, wg *sync.WaitGroup) {
	s := &session{c: c, chans: map[string]*chanProc{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.run()
	}()
}

// deliver hands a decoded client frame to the session.
func (c *Conn) deliver(ctx context.Context, f inFrame) error {
	c.record(&f)
	return c.toSession(ctx, msgFrame{f: f})
}

// deliverBatch hands the frames of one long-poll POST to the session as
// one message, so that Interleave can order the replies to its pushes and
// heartbeats (see handleBatch).
func (c *Conn) deliverBatch(ctx context.Context, fs []inFrame) error {
	for i := range fs {
		c.record(&fs[i])
	}
	return c.toSession(ctx, msgBatch{fs: fs})
}
