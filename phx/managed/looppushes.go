package managed

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
)

func (l *loop) addPush(cfg Push, w chan pushResult) (*pushRec, error) {
	if cfg.Topic == "" || cfg.Event == "" {
		return nil, fmt.Errorf("%w: a push needs a topic and an event", ErrInvalid)
	}
	if l.live >= l.cfg.MaxPushes {
		return nil, ErrQueueFull
	}
	l.live++
	l.seq++
	p := &pushRec{cfg: cfg, sched: cfg.Retry.schedule(), waiter: w, cancel: func() {}}
	l.goOnline()
	l.queuePush(p)
	return p, nil
}

func (l *loop) queuePush(p *pushRec) {
	p.state = Queued
	t := l.topicFor(p.cfg.Topic)
	t.queue = append(t.queue, p)
	l.kick(t)
}

// kick sends t's next push when t is joined and has none in flight. One
// push per topic is in flight at a time: phx's Push blocks until the
// reply, and only a single caller keeps the order of a topic's pushes.
func (l *loop) kick(t *topic) {
	if t.state != tsJoined || t.inflight != nil || len(t.queue) == 0 {
		return
	}
	p := t.queue[0]
	t.queue[0] = nil
	t.queue = t.queue[1:]
	p.state = InFlight
	p.attempt++
	p.try++
	ctx, cancel := context.WithCancel(l.ctx)
	p.cancel = cancel
	t.inflight = p
	timeout := p.cfg.Timeout
	if timeout <= 0 {
		timeout = l.cfg.PushTimeout
	}
	if l.logging() {
		l.c.logger.Debug("phx push", "topic", p.cfg.Topic, "event", p.cfg.Event, "ref", p.cfg.Ref,
			"attempt", p.attempt, "payload", logPayload(p.cfg.Payload))
	}
	l.enqueue(pushJob{p: p, try: p.try, ctx: ctx, ch: t.ch, timeout: timeout})
}

func (l *loop) pushed(d pushDone) {
	p := d.p
	if t := l.topics[p.cfg.Topic]; t != nil && t.inflight == p && p.try == d.try {
		t.inflight = nil
		defer l.kick(t)
	}
	if p.try != d.try || p.canceled {
		return
	}
	p.cancel()
	err := d.err
	l.logf("phx reply", "topic", p.cfg.Topic, "event", p.cfg.Event, "ref", p.cfg.Ref, "err", err)
	switch resp, isReply := replyError(err); {
	case err == nil:
		l.finish(p, PushOK{Push: p.cfg, Response: d.reply.Response}, pushResult{reply: d.reply})
	case isReply:
		l.finish(p, PushError{Push: p.cfg, Response: resp}, pushResult{err: err})
	case timedOut(err):
		next := p.sched.NextBackOff()
		if next == backoff.Stop {
			l.finish(p, PushTimeout{Push: p.cfg, Attempt: p.attempt}, pushResult{err: err})
			return
		}
		p.state = TimedOut
		p.retryAt = time.Now().Add(next)
		l.timedOut[p] = struct{}{}
		l.dirty = true
		l.emit(PushTimeout{Push: p.cfg, Attempt: p.attempt, Retry: true, RetryAt: p.retryAt})
	default:
		l.finish(p, PushFailed{Push: p.cfg, Err: err}, pushResult{err: err})
	}
}

// finish ends a push: reported once, waiter resolved, no longer counted.
func (l *loop) finish(p *pushRec, ev Event, r pushResult) {
	if p.canceled {
		return
	}
	p.canceled = true // no further outcome
	delete(l.timedOut, p)
	l.live--
	l.emit(ev)
	p.resolve(r)
}

// cancelPush drops p wherever it is: a queued push is never sent, a timed
// out one never retried, one in flight is withdrawn from phx (never sent if
// still buffered there) and its reply ignored.
func (l *loop) cancelPush(p *pushRec) bool {
	if p.canceled {
		return false
	}
	if t := l.topics[p.cfg.Topic]; t != nil {
		t.queue = slices.DeleteFunc(t.queue, func(x *pushRec) bool { return x == p })
		if t.inflight == p {
			t.inflight = nil
			defer l.kick(t)
		}
	}
	p.try++
	p.cancel()
	l.finish(p, PushCancelled{Push: p.cfg}, pushResult{err: ErrCancelled})
	return true
}

// each calls f on every live push, topic by topic in name order, then the
// timed-out ones in retry order.
func (l *loop) each(f func(p *pushRec)) {
	names := make([]string, 0, len(l.topics))
	for n := range l.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := l.topics[n]
		if t.inflight != nil {
			f(t.inflight)
		}
		for _, p := range t.queue {
			f(p)
		}
	}
	for _, p := range l.sortedTimedOut() {
		f(p)
	}
}

func (l *loop) sortedTimedOut() []*pushRec {
	ps := make([]*pushRec, 0, len(l.timedOut))
	for p := range l.timedOut {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *pushRec) int { return a.retryAt.Compare(b.retryAt) })
	return ps
}

// ---- timer: push retries and redials

func (l *loop) arm() {
	l.dirty = false
	var at time.Time
	for p := range l.timedOut {
		if at.IsZero() || p.retryAt.Before(at) {
			at = p.retryAt
		}
	}
	for _, s := range l.sockets {
		if !s.redialAt.IsZero() && (at.IsZero() || s.redialAt.Before(at)) {
			at = s.redialAt
		}
	}
	if at.Equal(l.timerAt) {
		return
	}
	l.timer.Stop()
	l.timerAt = at
	if !at.IsZero() {
		l.timer.Reset(time.Until(at))
	}
}

func (l *loop) fire() {
	now := time.Now()
	l.dirty = true
	for _, p := range l.sortedTimedOut() {
		if p.retryAt.After(now) {
			break
		}
		delete(l.timedOut, p)
		p.retryAt = time.Time{}
		l.goOnline()
		l.queuePush(p)
	}
	for _, s := range l.sockets {
		if !s.redialAt.IsZero() && !s.redialAt.After(now) {
			s.redialAt = time.Time{}
			l.enqueue(dialJob{sock: s, endpoint: l.c.endpoint, cfg: l.cfg.Socket})
		}
	}
}
