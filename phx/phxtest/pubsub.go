package phxtest

import (
	"context"
	"sync"
)

// pubsub is the topic registry. Deliveries happen outside the lock.
type pubsub struct {
	mu   sync.RWMutex
	subs map[string]map[*chanProc]struct{}
}

// subscribeAfter runs queue (which queues the join reply) and subscribes ch
// with no broadcast in between, so the reply precedes every broadcast the
// channel receives.
func (p *pubsub) subscribeAfter(ch *chanProc, queue func()) {
	p.mu.Lock()
	queue()
	m := p.subs[ch.topic]
	if m == nil {
		m = map[*chanProc]struct{}{}
		p.subs[ch.topic] = m
	}
	m[ch] = struct{}{}
	p.mu.Unlock()
}

func (p *pubsub) unsubscribe(ch *chanProc) {
	p.mu.Lock()
	if m := p.subs[ch.topic]; m != nil {
		delete(m, ch)
		if len(m) == 0 {
			delete(p.subs, ch.topic)
		}
	}
	p.mu.Unlock()
}

// broadcast queues [null,null,topic,event,payload] on every subscriber but
// from, in subscription order of no importance (Phoenix gives none). A
// presence diff (diff) is held back from a subscriber that holds diffs.
func (p *pubsub) broadcast(ctx context.Context, topic, event string, payload []byte, binary bool, from *chanProc, diff bool) error {
	p.mu.RLock()
	targets := make([]*chanProc, 0, len(p.subs[topic]))
	for ch := range p.subs[topic] {
		if ch != from {
			targets = append(targets, ch)
		}
	}
	p.mu.RUnlock()
	tq := quote(topic)
	for _, ch := range targets {
		f := &outFrame{topic: tq, event: event, payload: payload, binary: binary}
		if diff && ch.holdDiff(f) {
			continue
		}
		// A subscriber whose connection is gone is skipped, not an error.
		_ = ch.conn.enqueue(ctx, f)
	}
	if ctx.Err() != nil {
		return ErrServerClosed
	}
	return nil
}
