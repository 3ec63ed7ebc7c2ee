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
	if err == nil && m.Event == wire.EventJoin {
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
	sub := ch.SubscribeWith([]Option{WithBuffer(4096), WithOverflow(Block)})
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
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkJoin10000Channels joins 10,000 channels on one socket and
// reports the memory each idle joined channel keeps (heap and stacks).
func BenchmarkJoin10000Channels(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sock, _ := newFeedSocket(b)
		before := heapInUse()
		b.StartTimer()
		chans := make([]*Channel, n)
		for j := range chans {
			chans[j] = sock.Channel("room:"+strconv.Itoa(j), nil)
			if _, err := chans[j].Join(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "B/channel")
		runtime.KeepAlive(chans)
		sock.Close()
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
