package phx

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phxgo/phxgo/wire"
)

// feedConn is a Conn whose reads return a prepared frame n times, each in a
// fresh buffer as gorilla/websocket's ReadMessage does, then block until
// closed. It measures the client's own pipeline: decode, hand-off, routing,
// delivery.
type feedConn struct {
	frame  []byte
	n      atomic.Int64
	closed chan struct{}
	start  chan struct{}
	join   chan []byte
}

func (c *feedConn) ReadMessage() (wire.Opcode, []byte, error) {
	select {
	case j := <-c.join:
		return wire.Text, j, nil
	default:
	}
	if c.n.Load() > 0 {
		c.n.Add(-1)
		b := make([]byte, len(c.frame))
		copy(b, c.frame)
		return wire.Text, b, nil
	}
	select {
	case j := <-c.join:
		return wire.Text, j, nil
	case <-c.start:
		return c.ReadMessage()
	case <-c.closed:
		return 0, nil, errors.New("closed")
	}
}

func (c *feedConn) WriteMessage(op wire.Opcode, data []byte, _ time.Time) error {
	m, err := wire.V2.DecodeClient(op, data)
	if err == nil && (m.Event == wire.EventJoin || m.Event == "ping") {
		r := `["` + m.JoinRef.String() + `","` + m.Ref.String() + `","` + m.Topic + `","phx_reply",{"status":"ok","response":{}}]`
		select {
		case c.join <- []byte(r):
		case <-c.closed:
		}
	}
	return nil
}
func (c *feedConn) WriteClose(int, string, time.Time) error { return nil }
func (c *feedConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

type feedTransport struct{ c *feedConn }

func (t feedTransport) Dial(context.Context, string, http.Header) (Conn, error) { return t.c, nil }

func BenchmarkReceiveSubscription100B(b *testing.B) {
	body := `{"i":1,"data":"` + strings.Repeat("x", 100-len(`{"i":1,"data":""}`)) + `"}`
	frame := []byte(`[null,null,"room:1","msg",` + body + `]`)
	c := &feedConn{frame: frame, closed: make(chan struct{}), start: make(chan struct{}, 1), join: make(chan []byte, 1)}
	sock, err := Connect(context.Background(), "ws://bench/socket", &Config{Transport: feedTransport{c}, HeartbeatInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("room:1", nil)
	sub := mustSub(b, ch, WithBuffer(4096), WithOverflow(Block))
	if _, err := ch.Join(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	c.n.Store(int64(b.N))
	c.start <- struct{}{}
	for i := 0; i < b.N; i++ {
		<-sub.C()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func newFeedSocket(tb testing.TB) (*Socket, *feedConn) {
	c := &feedConn{closed: make(chan struct{}), start: make(chan struct{}, 1), join: make(chan []byte, 1)}
	sock, err := Connect(context.Background(), "ws://bench/socket", &Config{Transport: feedTransport{c}, HeartbeatInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	return sock, c
}

func heapInUse() uint64 {
	m := memNow()
	return m.heap + m.stack
}

type memUse struct{ heap, stack, live uint64 }

// memNow is the memory in use after two collections: the first frees what
// is garbage, the second lets the runtime shrink stacks that shrank.
func memNow() memUse {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return memUse{heap: ms.HeapInuse, stack: ms.StackInuse, live: ms.HeapAlloc}
}

// reportPer reports what grew from before to after, per item: heap spans
// in use and stacks apart, and their sum; and the live heap objects alone
// (liveB), without the free room left in the spans they share with the
// garbage made meanwhile.
func reportPer(b *testing.B, before, after memUse, n int, unit string) {
	heap := float64(int64(after.heap-before.heap)) / float64(n)
	stack := float64(int64(after.stack-before.stack)) / float64(n)
	b.ReportMetric(heap+stack, "B/"+unit)
	b.ReportMetric(heap, "heapB/"+unit)
	b.ReportMetric(stack, "stackB/"+unit)
	b.ReportMetric(float64(int64(after.live-before.live))/float64(n), "liveB/"+unit)
}

// BenchmarkJoin10000Channels joins 10,000 channels on one socket and
// reports the memory each idle joined channel keeps (heap and stacks,
// the socket's routing entries for it included).
func BenchmarkJoin10000Channels(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sock, _ := newFeedSocket(b)
		chans := make([]*Channel, n)
		before := memNow()
		b.StartTimer()
		for j := range chans {
			chans[j] = sock.Channel("room:"+strconv.Itoa(j), nil)
			if _, err := chans[j].Join(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportPer(b, before, memNow(), n, "channel")
		runtime.KeepAlive(chans)
		sock.Close()
	}
}

// BenchmarkIdleAfterPush10000Channels is BenchmarkJoin10000Channels with
// one push round trip on each channel after its join: what a channel that
// was busy keeps once it is idle again. A channel tidies up at most once a
// second (see chanActor.tidy), so the measure waits for that second to
// pass after the last push.
func BenchmarkIdleAfterPush10000Channels(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sock, _ := newFeedSocket(b)
		chans := make([]*Channel, n)
		before := memNow()
		b.StartTimer()
		for j := range chans {
			chans[j] = sock.Channel("room:"+strconv.Itoa(j), nil)
			if _, err := chans[j].Join(context.Background()); err != nil {
				b.Fatal(err)
			}
			if _, err := chans[j].Push(context.Background(), "ping", nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		time.Sleep(1500 * time.Millisecond)
		reportPer(b, before, memNow(), n, "channel")
		runtime.KeepAlive(chans)
		sock.Close()
	}
}

// BenchmarkIdleGoroutineFloor is the floor under an idle joined channel:
// a goroutine parked in a select on two channels (its own mailbox and a
// shared stop signal), its mailbox and the 8-byte handle kept for it,
// measured the same way as BenchmarkJoin10000Channels.
//
// Two runtime effects weigh on both alike. Go starts goroutines with a
// stack sized from the average stack in use at the last collection: the
// join loop collects often, so its channels soon start at 2 KiB, and this
// loop collects once after the first 1% for the same effect (otherwise
// every goroutine here would start at 4 KiB, sized from the benchmark
// runner's own deep stacks). And neither counts the runtime's goroutine
// record (runtime.g, 456 bytes), which Go keeps for reuse when a goroutine
// ends: after the first iteration both reuse those of the last one.
func BenchmarkIdleGoroutineFloor(b *testing.B) {
	const n = 10000
	type parked struct {
		mb   chan struct{}
		done chan struct{}
	}
	for i := 0; i < b.N; i++ {
		stop := make(chan struct{})
		ps := make([]*parked, n)
		before := memNow()
		started := make(chan struct{})
		for j := range ps {
			if j == n/100 {
				runtime.GC()
			}
			p := &parked{mb: make(chan struct{}, 1), done: stop}
			ps[j] = p
			go func() {
				started <- struct{}{}
				select {
				case <-p.mb:
				case <-p.done:
				}
			}()
			<-started
		}
		reportPer(b, before, memNow(), n, "goroutine")
		close(stop)
		runtime.KeepAlive(ps)
	}
}

// BenchmarkIdleSocket reports the memory an idle connected socket keeps
// (heap and stacks, transport excluded).
func BenchmarkIdleSocket(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		before := heapInUse()
		socks := make([]*Socket, n)
		for j := range socks {
			socks[j], _ = newFeedSocket(b)
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "B/socket")
		for _, s := range socks {
			s.Close()
		}
	}
}
