package managed

import (
	"context"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/actor"
)

func (l *loop) newSock() *sockRec {
	l.sockSeq++
	s := &sockRec{id: l.sockSeq, state: sDialing}
	l.sockets = append(l.sockets, s)
	l.enqueue(dialJob{sock: s, endpoint: l.c.endpoint, cfg: l.cfg.Socket})
	return s
}

func (l *loop) sockWithRoom() *sockRec {
	for _, s := range l.sockets {
		if s.state != sClosing && !s.full && s.topics < l.cfg.MaxChannelsPerSocket {
			return s
		}
	}
	return nil
}

func (l *loop) dialed(d dialDone) {
	s := d.sock
	if s.state == sClosing {
		if d.s != nil {
			s.s, s.cancel = d.s, d.cancel
			l.closing[s] = struct{}{}
			l.enqueue(closeJob{s})
		}
		return
	}
	if d.err != nil {
		l.lastDown = d.err
		l.emit(SocketError{Socket: s.id, Err: d.err})
		for _, w := range l.waiters {
			w <- d.err
		}
		l.waiters = nil
		if s.retry == nil {
			s.retry = l.reconnectSchedule()
		}
		next := s.retry.NextBackOff()
		if next == backoff.Stop {
			l.dropSock(s)
			return
		}
		s.redialAt = time.Now().Add(next)
		l.dirty = true
		return
	}
	s.s, s.cancel, s.state, s.retry = d.s, d.cancel, sOpen, nil
	l.g.Spawn(l.ctx, actor.Func(func(ctx context.Context) error {
		forwardStatus(ctx, d.s, l.send, s)
		return nil
	}))
	for _, t := range l.topics {
		if t.sock == s && t.state == tsQueued {
			l.startJoin(t)
		}
	}
}

func (l *loop) reconnectSchedule() backoff.BackOff {
	if l.cfg.Socket.Reconnect != nil {
		return l.cfg.Socket.Reconnect()
	}
	ms := []time.Duration{10, 50, 100, 150, 200, 250, 500, 1000, 2000}
	for i := range ms {
		ms[i] *= time.Millisecond
	}
	return &listBackOff{delays: ms, max: 5 * time.Second}
}

// closeSock takes s out of the pool and closes it.
func (l *loop) closeSock(s *sockRec) {
	l.sockets = slices.DeleteFunc(l.sockets, func(x *sockRec) bool { return x == s })
	prev := s.state
	s.state = sClosing
	if prev == sOpen {
		l.closing[s] = struct{}{}
		l.enqueue(closeJob{s})
	}
}

// dropSock forgets a socket that cannot be dialled; its topics wait for the
// next Connect, Join or Push.
func (l *loop) dropSock(s *sockRec) {
	l.closeSock(s)
	for _, t := range l.topics {
		if t.sock == s {
			t.sock = nil
		}
	}
	l.online = false
}

// release closes s when its last channel has gone, unless it is the only
// socket left: a client that connected stays connected.
func (l *loop) release(s *sockRec) {
	if s == nil {
		return
	}
	s.topics--
	if s.topics == 0 && len(l.sockets) > 1 && s.state != sClosing {
		l.closeSock(s)
	}
}

func (l *loop) status(m sockMsg) {
	s, ev := m.sock, m.ev
	if s.state == sClosing {
		if ev.kind == evClosed {
			code := s.code
			if code == 0 {
				code = 1000
			}
			l.emit(SocketClosed{Socket: s.id, Code: code})
		}
		return
	}
	switch ev.kind {
	case evConnected:
		s.connected = true
		l.emit(SocketOpened{Socket: s.id, URL: ev.url})
		for _, w := range l.waiters {
			w <- nil
		}
		l.waiters = nil
	case evDisconnected:
		s.connected = false
		l.lastDown = ev.err
		l.emit(SocketClosed{Socket: s.id, Code: ev.code, Err: ev.err, Reconnect: ev.reconnect})
		for _, t := range l.topics {
			if t.sock == s && t.state == tsJoined {
				t.state = tsRejoining
			}
		}
	case evClosed:
		// The socket ended by itself (a normal close from the server, a
		// refused reconnect): its topics wait for the next demand. A
		// Disconnected without reconnect has reported it already.
		if ev.err != nil {
			l.lastDown = ev.err
		}
		if s.connected {
			l.emit(SocketClosed{Socket: s.id, Code: ev.code, Err: ev.err})
		}
		s.connected = false
		l.closeSock(s)
		for _, t := range l.topics {
			if t.sock == s {
				l.unbind(t)
			}
		}
		l.online = false
	case evJoined:
		if t := l.topics[ev.topic]; t != nil && t.sock == s && t.state == tsRejoining {
			l.joinOK(t, nil, true)
		}
	case evRejoining:
		if t := l.topics[ev.topic]; t != nil && t.sock == s && (t.state == tsJoined || t.state == tsRejoining) {
			t.state = tsRejoining
			l.emit(ChannelErrored{Topic: t.name, Err: ev.err})
		}
	}
}
