package phx

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// onFrame is called by a connection's reader for every frame it reads and
// by its writer for every frame it wrote: it counts the frame, hands it to
// the frame taps and logs it at Debug. With no tap and Debug off it costs
// a few atomic operations and the logger's level check.
func (s *Socket) onFrame(ctx context.Context, dir Direction, op wire.Opcode, data []byte) {
	s.countFrame(dir, data)
	if taps := s.frameTaps.Load(); taps != nil {
		s.tapFrame(*taps, dir, op, data)
	}
	if s.debugOn(ctx) {
		s.logFrame(ctx, dir, op, data)
	}
}

// countFrame counts a frame in Stats.
func (s *Socket) countFrame(dir Direction, data []byte) {
	if dir == Sent {
		s.stats.sent.Add(1)
		s.stats.bytesOut.Add(uint64(len(data)))
	} else {
		s.stats.bytesIn.Add(uint64(len(data)))
	}
}

// Frame is one frame as it went over the connection, in a frame tap.
type Frame struct {
	Dir    Direction
	Time   time.Time // when the reader got it, or just before the writer wrote it
	Binary bool
	// Data is the raw frame, shared with the socket (a received frame's
	// bytes are those its delivered payloads alias): read it, do not change
	// it. It is not redacted; String is.
	Data []byte
}

// String is the frame on one line, direction first, secrets redacted
// (secret-named JSON keys at any depth).
func (f Frame) String() string { return f.Dir.String() + " " + f.Text() }

// Text is the frame's text, secrets redacted (secret-named JSON keys at any
// depth); a binary frame by its size.
func (f Frame) Text() string {
	if f.Binary {
		return "<binary " + strconv.Itoa(len(f.Data)) + " bytes>"
	}
	return string(redactPayload(f.Data))
}

// FrameTap receives a copy of every frame the socket sends and receives,
// heartbeats included, on every connection, for debugging tools (phx
// listen -v): see Socket.Frames.
//
// C is closed in the end, always: after Close (Err is then nil), when the
// tap's context is done (ctx.Err()) or when the socket stops (ErrClosed).
// A tap never slows the socket: frames that find its buffer full are
// dropped and counted (Dropped).
//
// Concurrency: all methods are safe for concurrent use.
type FrameTap struct {
	c        chan Frame
	q        *actor.Queue[Frame]
	quit     chan struct{}
	quitOnce sync.Once
	done     chan struct{}         // closed once C is
	err      atomic.Pointer[error] // set before C is closed
	ctx      context.Context       // the caller's
	dropped  atomic.Uint64
}

// C is the receive side, closed when the tap ends.
func (t *FrameTap) C() <-chan Frame { return t.c }

// Err says why C was closed; nil before it is and after Close.
func (t *FrameTap) Err() error {
	if p := t.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Dropped counts the frames dropped because the tap's buffer was full.
func (t *FrameTap) Dropped() uint64 { return t.dropped.Load() }

// Close ends the tap; C is closed when Close returns. Idempotent.
func (t *FrameTap) Close() {
	t.quitOnce.Do(func() { close(t.quit) })
	<-t.done // the relay selects on quit, so this wait is short
}

// Frames taps the socket's frames in both directions until ctx is done,
// Close, or the socket stops. buffer bounds the frames waiting for the
// reader (zero: 256); beyond it frames are dropped and counted. While no
// tap is open, the socket pays one atomic load per frame for the feature.
func (s *Socket) Frames(ctx context.Context, buffer int) (*FrameTap, error) {
	if buffer <= 0 {
		buffer = 256
	}
	t := &FrameTap{
		c:    make(chan Frame),
		q:    actor.NewQueue[Frame](buffer),
		quit: make(chan struct{}),
		done: make(chan struct{}),
		ctx:  ctx,
	}
	_, err := actor.Ask(ctx, s.mb, func(r chan<- struct{}) sockMsg { return tapStartMsg{t: t, reply: r} })
	if err != nil {
		return nil, s.stoppedErr(err)
	}
	return t, nil
}

// tapStartMsg registers a tap and starts its relay in the socket's group.
type tapStartMsg struct {
	t     *FrameTap
	reply chan<- struct{}
}

// tapStopMsg forgets a tap whose relay ended.
type tapStopMsg struct{ t *FrameTap }

func (tapStartMsg) isSockMsg() {}
func (tapStopMsg) isSockMsg()  {}

func (m tapStartMsg) runOn(a *sockActor) {
	old := a.s.frameTaps.Load()
	var list []*FrameTap
	if old != nil {
		list = append(list, *old...)
	}
	list = append(list, m.t)
	a.s.frameTaps.Store(&list)
	chCtx, t, s := a.chCtx, m.t, a.s
	a.g.Go(chCtx, actor.Func(func(ctx context.Context) error {
		t.relay(ctx, s)
		return nil
	}))
	m.reply <- struct{}{}
}

func (m tapStopMsg) runOn(a *sockActor) {
	old := a.s.frameTaps.Load()
	if old == nil {
		return
	}
	list := slices.DeleteFunc(slices.Clone(*old), func(t *FrameTap) bool { return t == m.t })
	if len(list) == 0 {
		a.s.frameTaps.Store(nil)
		return
	}
	a.s.frameTaps.Store(&list)
}

// relay moves frames from the tap's queue to C, until the tap or the
// socket ends. It is the tap's one goroutine, owned by the socket.
func (t *FrameTap) relay(ctx context.Context, s *Socket) {
	var err error
	var buf []Frame
loop:
	for {
		select {
		case <-t.q.Ready():
			batch := t.q.Drain(buf)
			for _, f := range batch {
				select {
				case t.c <- f:
				case <-t.quit:
					break loop
				case <-t.ctx.Done():
					err = t.ctx.Err()
					break loop
				case <-ctx.Done():
					err = ErrClosed
					break loop
				}
			}
			buf = batch
		case <-t.quit:
			break loop
		case <-t.ctx.Done():
			err = t.ctx.Err()
			break loop
		case <-ctx.Done():
			err = ErrClosed
			break loop
		}
	}
	t.q.Close()
	t.err.Store(&err)
	close(t.c)
	close(t.done)
	_ = s.mb.Tell(ctx, tapStopMsg{t: t})
}

// tapFrame hands a frame to every open tap, never waiting.
func (s *Socket) tapFrame(taps []*FrameTap, dir Direction, op wire.Opcode, data []byte) {
	f := Frame{Dir: dir, Time: time.Now(), Binary: op == wire.Binary, Data: data}
	for _, t := range taps {
		if err := t.q.TryPut(f); errors.Is(err, actor.ErrFull) {
			t.dropped.Add(1)
		}
	}
}
