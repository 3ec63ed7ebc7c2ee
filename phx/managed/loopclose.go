package managed

import (
	"slices"
	"time"
)

func (l *loop) disconnect(code int, reset bool) {
	l.online = false
	for _, s := range slices.Clone(l.sockets) {
		s.code = code
		s.redialAt = time.Time{}
		l.closeSock(s)
	}
	l.dirty = true
	l.lastDown = &DisconnectError{Code: code}
	for _, w := range l.waiters {
		w <- l.lastDown
	}
	l.waiters = nil
	for _, t := range l.topics {
		t.sock = nil // its socket is gone: nothing to release
		l.unbind(t)
	}
	if !reset {
		return
	}
	var all []*pushRec
	l.each(func(p *pushRec) { all = append(all, p) })
	for _, p := range all {
		l.cancelPush(p)
	}
	for _, t := range l.topics {
		for _, w := range t.joinWaiters {
			w <- joinResult{err: ErrReset}
		}
		for _, w := range t.leaveWaiters {
			w <- nil
		}
	}
	l.topics = map[string]*topic{}
	l.cfgs = map[string]*topicCfg{}
	l.pres = map[string]*presTopic{}
	l.timedOut = map[*pushRec]struct{}{}
}

// shutdown closes every socket (the pool's and those still closing: Close
// is idempotent) and fails whatever waits.
func (l *loop) shutdown() {
	for _, s := range l.sockets {
		if s.state == sOpen {
			closeSocket(s.s, s.cancel)
		}
	}
	for s := range l.closing {
		closeSocket(s.s, s.cancel)
	}
	for _, w := range l.waiters {
		w <- ErrClosed
	}
	for _, t := range l.topics {
		for _, w := range t.joinWaiters {
			w <- joinResult{err: ErrClosed}
		}
		for _, w := range t.leaveWaiters {
			w <- ErrClosed
		}
	}
	var all []*pushRec
	l.each(func(p *pushRec) { all = append(all, p) })
	for _, p := range all {
		p.cancel()
		p.resolve(pushResult{err: ErrClosed})
	}
}
