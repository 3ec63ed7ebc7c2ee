package phx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/wire"
)

// BenchmarkPushRoundTrip: sequential push → reply through the client,
// against phxtest's echo over loopback.
func BenchmarkPushRoundTrip(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.DemoConfig())
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{HeartbeatInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("echo:rt", nil)
	if _, err := ch.Join(ctx); err != nil {
		b.Fatal(err)
	}
	payload := map[string]int{"n": 1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ch.Push(ctx, "echo", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPushRoundTripRawFloor: the same exchange with a bare
// gorilla/websocket connection writing and reading in one goroutine.
func BenchmarkPushRoundTripRawFloor(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.DemoConfig())
	c, _, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`["1","1","echo:rt","phx_join",{}]`)); err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := `["1","` + strconv.Itoa(i+2) + `","echo:rt","echo",{"n":1}]`
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func memInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleSockets reports the memory of idle connected sockets
// (client and phxtest server together in this process) next to the same
// number of bare gorilla/websocket connections to the same server.
func BenchmarkIdleSockets(b *testing.B) {
	const n = 200
	srv := phxtest.NewServer(b, phxtest.Config{IdleTimeout: -1})
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		base := memInUse()
		raws := make([]*websocket.Conn, n)
		for j := range raws {
			c, _, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0", nil)
			if err != nil {
				b.Fatal(err)
			}
			raws[j] = c
		}
		rawMem := memInUse() - base
		for _, c := range raws {
			c.Close()
		}
		_ = srv.WaitActive(ctx, 0)
		base = memInUse()
		socks := make([]*phx.Socket, n)
		for j := range socks {
			s, err := phx.Connect(ctx, srv.URL(), nil)
			if err != nil {
				b.Fatal(err)
			}
			socks[j] = s
		}
		sockMem := memInUse() - base
		b.ReportMetric(float64(rawMem)/n, "B/raw-conn")
		b.ReportMetric(float64(sockMem)/n, "B/socket")
		for _, s := range socks {
			s.Close()
		}
		_ = srv.WaitActive(ctx, 0)
	}
}

// blaster is a minimal Phoenix-speaking server for receive benchmarks: it
// answers any join with ok and, for a "blast" push {"n":N}, writes N copies
// of one prepared broadcast frame as fast as the connection takes them, so
// that the client, not the server, is measured.
func blaster(b *testing.B, size int) string {
	body := `{"i":1,"data":"` + strings.Repeat("x", size) + `"}`
	frame := []byte(`[null,null,"room:blast","blast",` + body + `]`)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		// Frames are written straight to the TCP connection in chunks of
		// many, so that the server does one syscall per chunk, not per
		// message, and the client is what is measured.
		hdr := []byte{0x81}
		switch l := len(frame); {
		case l < 126:
			hdr = append(hdr, byte(l))
		case l < 1<<16:
			hdr = append(hdr, 126, byte(l>>8), byte(l))
		default:
			hdr = append(hdr, 127, 0, 0, 0, 0, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		}
		one := append(hdr, frame...)
		per := max(1, (256<<10)/len(one))
		chunk := bytes.Repeat(one, per)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			m, err := wire.V2.DecodeClient(wire.Text, data)
			if err != nil {
				return
			}
			reply := wire.Message{JoinRef: m.JoinRef, Ref: m.Ref, Topic: m.Topic, Event: wire.EventReply,
				Payload: []byte(`{"status":"ok","response":{}}`)}
			out, _, _ := wire.V2.EncodeServer(nil, &reply)
			if err := c.WriteMessage(websocket.TextMessage, out); err != nil {
				return
			}
			if m.Event == "blast" {
				var p struct{ N int }
				_ = json.Unmarshal(m.Payload, &p)
				nc := c.UnderlyingConn()
				for left := p.N; left > 0; left -= per {
					k := min(left, per)
					if _, err := nc.Write(chunk[:k*len(one)]); err != nil {
						return
					}
				}
			}
		}
	}))
	b.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket"
}

func benchReceive(b *testing.B, size int) {
	url := blaster(b, size)
	ctx := context.Background()
	sock, err := phx.Connect(ctx, url, &phx.Config{HeartbeatInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("room:blast", nil)
	sub := ch.SubscribeWith([]phx.Option{phx.WithBuffer(4096), phx.WithOverflow(phx.Block)}, "blast")
	if _, err := ch.Join(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := ch.Push(ctx, "blast", map[string]int{"n": b.N}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		<-sub.C()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchReceiveRaw(b *testing.B, size int, decode bool) {
	url := blaster(b, size)
	c, _, err := websocket.DefaultDialer.Dial(url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte(`["1","1","room:blast","phx_join",{}]`))
	if _, _, err := c.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	_ = c.WriteMessage(websocket.TextMessage, []byte(`["1","2","room:blast","blast",{"n":`+strconv.Itoa(b.N)+`}]`))
	buf := make([]byte, 0, 1<<16)
	for got := 0; got < b.N; {
		_, r, err := c.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				break
			}
		}
		if decode {
			m, err := wire.V2.DecodeServer(wire.Text, buf)
			if err != nil {
				b.Fatal(err)
			}
			if m.Event == "blast" {
				got++
			}
		} else if bytes.Contains(buf[:min(len(buf), 64)], []byte(`"blast"`)) {
			got++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkReceive100B(b *testing.B) { benchReceive(b, 100-len(`{"i":1,"data":""}`)) }
func BenchmarkReceive100BRawFloor(b *testing.B) {
	benchReceiveRaw(b, 100-len(`{"i":1,"data":""}`), false)
}
func BenchmarkReceive100BRawWireDecode(b *testing.B) {
	benchReceiveRaw(b, 100-len(`{"i":1,"data":""}`), true)
}
func BenchmarkReceive4KB(b *testing.B)         { benchReceive(b, 4096) }
func BenchmarkReceive4KBRawFloor(b *testing.B) { benchReceiveRaw(b, 4096, false) }

// BenchmarkPush64InFlight: 64 goroutines pushing to phxtest's echo at once;
// every push must get its own reply.
func BenchmarkPush64InFlight(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.DemoConfig())
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{HeartbeatInterval: -1, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("echo:inflight", nil)
	if _, err := ch.Join(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				want := strconv.FormatInt(i, 10)
				r, err := ch.Push(ctx, "echo", json.RawMessage(want))
				if err != nil || string(r.Response) != want {
					b.Errorf("push %s: %s, %v", want, r.Response, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}
