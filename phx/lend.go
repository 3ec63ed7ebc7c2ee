package phx

import (
	"sync"
	"sync/atomic"
)

// Lend makes a subscription's payloads lent instead of owned: a message
// taken with Next or All (or a TypedSubscription's) keeps its Payload only
// until the same subscription's next Next or All step. The socket then
// reads the frames such subscriptions receive into buffers it reuses once
// every lent message of a frame has been given back: no allocation and no
// copy per message. Use it in a consumer that is done with a message
// before it takes the next (decodes it, writes it out) and copies what it
// keeps (bytes.Clone).
//
// Messages taken from C are never given back: their payloads stay valid
// and their buffers are left to the garbage collector, as with owned
// payloads. Frames under 1 KiB are not lent (their copy is cheaper than
// the buffer's way back), and Lend has no effect on Socket.Subscribe, whose frames may be
// any topic's; and no frame is lent while the socket has a frame tap, a
// socket-wide subscription or payload logging on, or on vsn 1.0.0.
func Lend() SubscribeOption { return subOptFunc(func(o *subOpts) { o.lend = true }) }

// frameBuf is a frame read into a reusable buffer. refs counts who holds
// it: the reader until the frame's channel has delivered it, and each lent
// message until its consumer takes the next. The last to let go returns it
// to lentBufs. A holder that never lets go (a message dropped by an
// overflow policy, a subscription closed with messages buffered) only
// leaves the buffer to the garbage collector: a count can err on the side
// of keeping a buffer, never of reusing one still held.
type frameBuf struct {
	b    []byte
	refs atomic.Int32
}

// lentBufs holds the buffers no message holds. Shared by all sockets, so
// that an idle socket keeps none.
var lentBufs = sync.Pool{New: func() any { return &frameBuf{b: make([]byte, 0, 4096)} }}

// maxLentBuf is the largest buffer kept for reuse: a rare huge frame does
// not stay in the pool.
const maxLentBuf = 1 << 20

func getFrameBuf() *frameBuf {
	fb := lentBufs.Get().(*frameBuf)
	fb.refs.Store(1)
	return fb
}

func (fb *frameBuf) hold() { fb.refs.Add(1) }

func (fb *frameBuf) release() {
	if fb.refs.Add(-1) == 0 && cap(fb.b) <= maxLentBuf {
		fb.b = fb.b[:0]
		lentBufs.Put(fb)
	}
}
