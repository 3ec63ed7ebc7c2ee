package managed

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/presence"
)

func (l *loop) cfgFor(name string) *topicCfg {
	tc := l.cfgs[name]
	if tc == nil {
		tc = &topicCfg{join: JoinConfig{Topic: name}, events: map[string]bool{}}
		l.cfgs[name] = tc
	}
	return tc
}

// goOnline is the demand that connects: Connect, Join, Push. Topics kept
// by a Disconnect are placed again.
func (l *loop) goOnline() {
	if l.online {
		return
	}
	l.online = true
	names := make([]string, 0, len(l.topics))
	for n, t := range l.topics {
		if t.sock == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		l.place(l.topics[n])
	}
}

func (l *loop) topicFor(name string) *topic {
	t := l.topics[name]
	if t == nil {
		t = &topic{name: name}
		l.topics[name] = t
		l.place(t)
	}
	return t
}

// place puts t on a socket with room, opening one if none has.
func (l *loop) place(t *topic) {
	if !l.online || t.sock != nil {
		return
	}
	s := l.sockWithRoom()
	if s == nil {
		s = l.newSock()
	}
	t.sock = s
	s.topics++
	t.state = tsQueued
	if s.state == sOpen {
		l.startJoin(t)
	}
}

func (l *loop) paramsFunc(tc *topicCfg) func() any {
	payload := tc.join.Payload
	var param string
	if cu := tc.join.CatchUp; cu != nil {
		param = cu.param()
	}
	pos := &tc.pos
	return func() any {
		v := payload
		if f, ok := v.(func() any); ok {
			v = f()
		}
		if param == "" {
			return v
		}
		p := pos.Load()
		if p == nil {
			return v
		}
		return withParam(v, param, *p)
	}
}

// withParam adds name: value to the JSON object v. A v that is not an
// object (or nil, taken as {}) is returned as is.
func withParam(v any, name string, value json.RawMessage) any {
	obj := map[string]json.RawMessage{}
	if v != nil {
		raw, err := json.Marshal(v)
		if err != nil || json.Unmarshal(raw, &obj) != nil || obj == nil {
			return v
		}
	}
	obj[name] = value
	return obj
}

func (l *loop) startJoin(t *topic) {
	tc := l.cfgFor(t.name)
	t.gen++
	gen := t.gen
	ch, sub, subErr := openChannel(l.ctx, t.sock.s, t.name, l.paramsFunc(tc), l.cfg.ChannelBuffer)
	t.ch, t.state = ch, tsJoining
	l.g.Spawn(l.ctx, actor.Func(func(ctx context.Context) error {
		forwardChannel(ctx, sub, l.send, t, gen, subErr)
		return nil
	}))
	timeout := tc.join.Timeout
	if timeout <= 0 {
		timeout = l.cfg.JoinTimeout
	}
	l.logf("phx join", "topic", t.name, "socket", t.sock.id)
	t.sock.joinQ = append(t.sock.joinQ, joinJob{sock: t.sock, t: t, gen: gen, ch: ch, timeout: timeout})
}

func (l *loop) current(t *topic, gen int) bool { return l.topics[t.name] == t && t.gen == gen }

func (l *loop) joined(d joinDone) {
	t := d.t
	if !l.current(t, d.gen) || t.state != tsJoining {
		return
	}
	err := d.err
	switch {
	case err == nil:
		l.joinOK(t, d.resp, false)
	case tooManyChannels(err):
		// The server's limit is lower than ours: this socket is full;
		// take the topic elsewhere (a refused channel is closed for good).
		t.sock.full = true
		l.logf("phx join refused: too many channels", "topic", t.name, "socket", t.sock.id)
		s := t.sock
		t.gen++
		t.ch, t.sock = nil, nil
		l.place(t)
		l.release(s)
	case timedOut(err):
		if channelJoined(t.ch) {
			l.joinOK(t, nil, false)
			return
		}
		t.state = tsRejoining
		l.emit(ChannelJoinTimeout{Topic: t.name})
		for _, w := range t.joinWaiters {
			w <- joinResult{err: err}
		}
		t.joinWaiters = nil
		if t.leaveAfterJoin {
			l.startLeave(t)
		}
	default:
		resp, refused := replyError(err)
		if refused {
			l.emit(ChannelJoinError{Topic: t.name, Response: resp})
		} else {
			l.emit(ChannelErrored{Topic: t.name, Err: err})
		}
		l.removeTopic(t, err, err)
	}
}

func (l *loop) joinOK(t *topic, resp json.RawMessage, rejoin bool) {
	t.state = tsJoined
	if resp != nil {
		t.joinResp = resp
	}
	if l.pres[t.name] == nil {
		l.pres[t.name] = newPresTopic(l.cfg.PresenceHistory)
	}
	l.logf("phx joined", "topic", t.name, "rejoin", rejoin)
	l.emit(ChannelJoined{Topic: t.name, Response: resp, Rejoin: rejoin})
	for _, w := range t.joinWaiters {
		w <- joinResult{resp: t.joinResp}
	}
	t.joinWaiters = nil
	if t.leaveAfterJoin {
		l.startLeave(t)
		return
	}
	l.kick(t)
}

func (l *loop) received(m chanMsg) {
	t := m.t
	if !l.current(t, m.gen) {
		return
	}
	tc := l.cfgFor(t.name)
	in := m.m
	if l.logging() {
		l.c.logger.Debug("phx recv", "topic", t.name, "event", in.Event, "payload", string(in.Payload))
	}
	if cu := tc.join.CatchUp; cu != nil {
		if v, ok := field(in.Payload, cu.Field); ok {
			tc.pos.Store(&v)
		}
	}
	if in.Event == presence.DefaultStateEvent || in.Event == presence.DefaultDiffEvent {
		pt := l.pres[t.name]
		if pt == nil {
			pt = newPresTopic(l.cfg.PresenceHistory)
			l.pres[t.name] = pt
		}
		for _, ev := range pt.apply(t.name, in.Event, in.Payload, in.JoinRef) {
			l.emit(ev)
		}
	}
	if tc.events[in.Event] || tc.events["*"] {
		l.emit(ChannelEvent{Topic: t.name, Event: in.Event, Payload: in.Payload})
	}
}

// field returns the member name of a JSON object payload.
func field(payload json.RawMessage, name string) (json.RawMessage, bool) {
	if len(payload) == 0 || payload[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil {
		return nil, false
	}
	v, ok := obj[name]
	return v, ok && string(v) != "null"
}

func (l *loop) subEnded(m subEnded) {
	t := m.t
	if !l.current(t, m.gen) || t.state == tsJoining || t.state == tsLeaving {
		return
	}
	if t.sock != nil && t.sock.s != nil && socketDone(t.sock.s) {
		return // the socket's Closed status moves the topic
	}
	// The server closed the channel (phx_close).
	err := m.err
	if err == nil {
		err = phx.ErrClosed
	}
	l.emit(ChannelLeft{Topic: t.name, Err: err})
	l.removeTopic(t, err, err)
}

// unbind detaches t from its socket and channel, keeping it and its pushes
// for the next socket. A push in flight goes back to the head of the queue.
func (l *loop) unbind(t *topic) {
	t.gen++
	t.ch, t.sock = nil, nil
	if p := t.inflight; p != nil {
		t.inflight = nil
		p.try++
		p.cancel()
		p.state = Queued
		t.queue = append([]*pushRec{p}, t.queue...)
	}
	if t.state == tsLeaving {
		l.finishLeave(t)
		return
	}
	t.state = tsQueued
	delete(l.pres, t.name)
}

// removeTopic forgets t; its queued pushes fail with pushErr, its join
// waiters with joinErr.
func (l *loop) removeTopic(t *topic, pushErr, joinErr error) {
	delete(l.topics, t.name)
	delete(l.pres, t.name)
	t.gen++
	if joinErr == nil {
		joinErr = phx.ErrLeft
	}
	for _, w := range t.joinWaiters {
		w <- joinResult{err: joinErr}
	}
	t.joinWaiters = nil
	for _, w := range t.leaveWaiters {
		w <- nil
	}
	t.leaveWaiters = nil
	q := t.queue
	t.queue = nil
	for _, p := range q {
		l.finish(p, PushFailed{Push: p.cfg, Err: pushErr}, pushResult{err: pushErr})
	}
	if p := t.inflight; p != nil {
		t.inflight = nil
		// its try ends with ErrLeft or ErrClosed from phx and is reported then
		p.try++
		p.cancel()
		l.finish(p, PushFailed{Push: p.cfg, Err: pushErr}, pushResult{err: pushErr})
	}
	l.release(t.sock)
	t.sock = nil
}

func (l *loop) leave(t *topic, w chan error) {
	if w != nil {
		t.leaveWaiters = append(t.leaveWaiters, w)
	}
	// pushes queued before the leave are not sent on this channel
	q := t.queue
	t.queue = nil
	for _, p := range q {
		l.finish(p, PushFailed{Push: p.cfg, Err: phx.ErrLeft}, pushResult{err: phx.ErrLeft})
	}
	switch t.state {
	case tsQueued:
		l.finishLeave(t)
	case tsJoining:
		t.leaveAfterJoin = true
	case tsLeaving:
	default:
		l.startLeave(t)
	}
}

func (l *loop) startLeave(t *topic) {
	t.leaveAfterJoin = false
	t.state = tsLeaving
	timeout := l.cfgFor(t.name).leaveTimeout
	if timeout <= 0 {
		timeout = l.cfg.LeaveTimeout
	}
	l.logf("phx leave", "topic", t.name)
	l.enqueue(leaveJob{t: t, gen: t.gen, ch: t.ch, timeout: timeout})
}

func (l *loop) left(d leaveDone) {
	if l.current(d.t, d.gen) && d.t.state == tsLeaving {
		l.finishLeave(d.t)
	}
}

// finishLeave reports the leave. Pushes made while leaving wait for the
// topic's next channel.
func (l *loop) finishLeave(t *topic) {
	rest, waiters := t.queue, t.joinWaiters
	t.queue, t.joinWaiters = nil, nil
	l.emit(ChannelLeft{Topic: t.name})
	l.removeTopic(t, phx.ErrLeft, phx.ErrLeft)
	if t.rejoin || len(rest) > 0 || len(waiters) > 0 {
		nt := l.topicFor(t.name)
		nt.joinWaiters = waiters
		for _, p := range rest {
			l.queuePush(p)
		}
	}
}

// want marks t wanted joined: a topic being left is joined again after.
func (l *loop) want(name string) *topic {
	t := l.topicFor(name)
	if t.state == tsLeaving || t.leaveAfterJoin {
		t.rejoin = true
	}
	return t
}
