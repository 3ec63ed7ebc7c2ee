package phx

import "context"

// The status streams. Every actor of a socket emits status events, but
// only the socket actor writes them to the streams: the others queue them
// (statq) and it hands them on in order. So it alone can drop a stream's
// oldest event exactly when the stream is full, and close a stream whose
// reader went away while nobody else may still send to it.

// statusWatch is one status stream: the Status stream, or one of
// WatchStatus.
type statusWatch struct {
	c    chan Status
	stop func() bool // unregisters the ctx watch; nil for Status
}

type watchMsg struct {
	w   *statusWatch
	ctx context.Context // the reader's: the stream ends with it
	ack chan struct{}
}

type unwatchMsg struct{ w *statusWatch }

func (watchMsg) isSockMsg() {}

func (unwatchMsg) isSockMsg() {}

// statusQueue bounds the events the other actors queue for the socket
// actor, which takes them as soon as it runs.
const statusQueue = 256

// WatchStatus returns a status stream of the caller's own: every event
// from the call on (Connected, Disconnected, ..., as Status), whatever
// other readers of Status or other WatchStatus streams take. It holds
// Config.StatusBuffer events; when it is full its oldest event is dropped
// and counted (Stats.StatusDropped). It is closed after the final Closed
// event, or once ctx is done; on a socket that has stopped it is closed at
// once.
func (s *Socket) WatchStatus(ctx context.Context) <-chan Status {
	w := &statusWatch{c: make(chan Status, s.cfg.StatusBuffer)}
	ack := make(chan struct{}, 1)
	if s.mb.Tell(ctx, watchMsg{w: w, ctx: ctx, ack: ack}) != nil {
		close(w.c)
		return w.c
	}
	select {
	case <-ack:
	case <-s.proc.Done():
		select {
		case <-ack:
		default:
			close(w.c) // never taken: the actor stopped with it queued
		}
	}
	return w.c
}

// emit queues st for the status streams; an event that finds the queue
// full is dropped and counted.
func (s *Socket) emit(st Status) {
	s.noteStatus(st)
	if s.statq.TryPut(st) != nil {
		s.nStatusDropped.Add(1)
	}
}

// emit hands st to the streams after what the other actors queued before.
func (a *sockActor) emit(st Status) {
	a.s.noteStatus(st)
	a.flushStatus()
	a.fanOut(st)
}

// flushStatus hands on the events the other actors queued.
func (a *sockActor) flushStatus() {
	for _, st := range a.s.statq.Drain(nil) {
		a.fanOut(st)
	}
}

// fanOut puts st on every stream, dropping a full stream's oldest event.
func (a *sockActor) fanOut(st Status) {
	for _, w := range a.watchers {
		select {
		case w.c <- st:
			continue
		default:
		}
		select {
		case <-w.c:
			a.s.nStatusDropped.Add(1)
		default: // its reader took one meanwhile
		}
		select {
		case w.c <- st:
		default: // cannot happen: the socket actor is the only sender
			a.s.nStatusDropped.Add(1)
		}
	}
}

func (a *sockActor) watch(m watchMsg) {
	w := m.w
	a.watchers = append(a.watchers, w)
	m.ack <- struct{}{}
	// Registered only now, so that the unwatch follows the watch.
	s := a.s
	w.stop = context.AfterFunc(m.ctx, func() {
		_ = s.mb.Tell(context.Background(), unwatchMsg{w: w})
	})
}

func (a *sockActor) unwatch(w *statusWatch) {
	for i, x := range a.watchers {
		if x == w {
			a.watchers = append(a.watchers[:i], a.watchers[i+1:]...)
			close(w.c)
			return
		}
	}
}

// closeStatus ends every stream after the final event.
func (a *sockActor) closeStatus(final Status) {
	a.emit(final)
	a.s.statq.Close()
	for _, w := range a.watchers {
		if w.stop != nil {
			w.stop()
		}
		close(w.c)
	}
	a.watchers = nil
}
