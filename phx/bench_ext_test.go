package phx_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
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
// against phxtest's echo over loopback, beside
// BenchmarkPushRoundTripRawFloor (the same exchange on a bare connection to
// the same server). Besides ns/op it reports the median and 99th percentile
// of single round trips (p50-ns, p99-ns). Allocations count the in-process
// server's too, as the floor's do.
func BenchmarkPushRoundTrip(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.DemoConfig())
	benchRoundTrip(b, srv.URL())
}

// BenchmarkPushRoundTripRawFloor: the same exchange with a bare
// gorilla/websocket connection writing and reading in one goroutine, the
// floor of BenchmarkPushRoundTrip, with the same latency percentiles.
func BenchmarkPushRoundTripRawFloor(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.DemoConfig())
	benchRoundTripRaw(b, srv.WebSocketURL())
}

// BenchmarkPushRoundTripFastEcho is BenchmarkPushRoundTrip against fastEcho
// in another process, beside BenchmarkPushRoundTripFastEchoRawFloor: the
// server takes a few microseconds instead of phxtest's tens, so the client's
// share of the round trip shows, and allocations are the client's alone.
func BenchmarkPushRoundTripFastEcho(b *testing.B) {
	benchRoundTrip(b, serverProcess(b, "echo"))
}

// BenchmarkPushRoundTripFastEchoRawFloor is the floor of
// BenchmarkPushRoundTripFastEcho: a bare connection to the same server.
func BenchmarkPushRoundTripFastEchoRawFloor(b *testing.B) {
	benchRoundTripRaw(b, serverProcess(b, "echo")+"/websocket")
}

func benchRoundTrip(b *testing.B, url string) {
	ctx := context.Background()
	sock, err := phx.Connect(ctx, url, &phx.Config{HeartbeatInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("echo:rt", nil)
	if _, err := ch.Join(ctx); err != nil {
		b.Fatal(err)
	}
	payload := map[string]int{"n": 1}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := ch.Push(ctx, "echo", payload); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func benchRoundTripRaw(b *testing.B, wsURL string) {
	c, _, err := websocket.DefaultDialer.Dial(wsURL+"?vsn=2.0.0", nil)
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
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		msg := `["1","` + strconv.Itoa(i+2) + `","echo:rt","echo",{"n":1}]`
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// reportLatency reports the median and 99th percentile of lat, which it
// sorts; the caller has stopped the timer.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ns")
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

// benchReceive receives b.N broadcasts of size bytes; with lend, through a
// subscription with lent payloads taken with Next.
func benchReceive(b *testing.B, size int, lend bool) {
	url := blaster(b, size)
	ctx := context.Background()
	sock, err := phx.Connect(ctx, url, &phx.Config{HeartbeatInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("room:blast", nil)
	opts := []phx.SubscribeOption{phx.WithBuffer(4096), phx.WithOverflow(phx.Block), phx.Events("blast")}
	if lend {
		opts = append(opts, phx.Lend())
	}
	sub := mustSub(b, ch, opts...)
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
		if lend {
			if _, err := sub.Next(ctx); err != nil {
				b.Fatal(err)
			}
		} else {
			<-sub.C()
		}
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

func BenchmarkReceive100B(b *testing.B)     { benchReceive(b, 100-len(`{"i":1,"data":""}`), false) }
func BenchmarkReceive100BLent(b *testing.B) { benchReceive(b, 100-len(`{"i":1,"data":""}`), true) }
func BenchmarkReceive100BRawFloor(b *testing.B) {
	benchReceiveRaw(b, 100-len(`{"i":1,"data":""}`), false)
}
func BenchmarkReceive100BRawWireDecode(b *testing.B) {
	benchReceiveRaw(b, 100-len(`{"i":1,"data":""}`), true)
}
func BenchmarkReceive4KB(b *testing.B)         { benchReceive(b, 4096, false) }
func BenchmarkReceive4KBLent(b *testing.B)     { benchReceive(b, 4096, true) }
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

// benchServerEnv, when set in the environment of this test binary, makes it
// a server process instead of running tests: "phxtest" serves a phxtest
// server with no idle timeout, "echo" serves fastEcho. The process prints
// the socket URL on a line of stdout and serves until its stdin closes, so
// it also ends when the benchmark that started it dies. It lets benchmarks
// measure the client alone: memory, allocations and goroutines of the server
// are not in the benchmark's process.
const benchServerEnv = "PHXGO_BENCH_SERVER"

func init() {
	kind := os.Getenv(benchServerEnv)
	if kind == "" {
		return
	}
	// The hook runs before the tests' TestMain, which it never reaches: the
	// process exits once the server has stopped.
	os.Exit(serveBenchProcess(kind))
}

func serveBenchProcess(kind string) int {
	var url string
	var stop func()
	switch kind {
	case "phxtest":
		srv, err := phxtest.Start("127.0.0.1:0", phxtest.Config{IdleTimeout: -1})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		url, stop = srv.URL(), srv.Close
	case "echo":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		hs := &http.Server{Handler: http.HandlerFunc(fastEcho)}
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = hs.Serve(ln)
		}()
		url = "ws://" + ln.Addr().String() + "/socket"
		stop = func() {
			_ = hs.Close()
			<-served
		}
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want phxtest or echo\n", benchServerEnv, kind)
		return 2
	}
	fmt.Println(url)
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
	return 0
}

// serverProcess starts this test binary again as a server of the given kind
// (see benchServerEnv) and returns its socket URL. The process is stopped,
// and waited for, when the benchmark ends.
func serverProcess(b *testing.B, kind string) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// Closing stdin asks the server to stop; one that does not within
		// a few seconds is killed, so that no process outlives the run.
		_ = stdin.Close()
		kill := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
		defer kill.Stop()
		if err := cmd.Wait(); err != nil {
			b.Errorf("server process: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	return strings.TrimSpace(line)
}

// fastEcho is a minimal Phoenix-speaking server for pipelined pushes: it
// answers a join with ok and any other push with an ok reply whose response
// is the push's payload, same refs and topic. Replies are queued by the
// reading goroutine and written by another straight to the TCP connection,
// as many as have piled up in one write, so that the server keeps up with a
// client that has many pushes in flight.
func fastEcho(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, CheckOrigin: func(*http.Request) bool { return true }}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	var (
		mu     sync.Mutex
		queued = sync.NewCond(&mu)
		out    []byte // unmasked text frames waiting for the writer
		ended  bool   // the reader has stopped; out is the last of it
	)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc := c.UnderlyingConn()
		var batch []byte
		for {
			mu.Lock()
			for len(out) == 0 && !ended {
				queued.Wait()
			}
			if len(out) == 0 {
				mu.Unlock()
				return
			}
			out, batch = batch[:0], out
			mu.Unlock()
			if _, err := nc.Write(batch); err != nil {
				// The reader fails on the closed connection and ends.
				_ = nc.Close()
				return
			}
		}
	}()
	var body, resp []byte
	for {
		op, data, err := c.ReadMessage()
		if err != nil {
			break
		}
		m, err := wire.V2.DecodeClient(wire.Opcode(op), data)
		if err != nil {
			break
		}
		var echo json.RawMessage
		if m.Event != wire.EventJoin {
			echo = m.Payload
		}
		resp = wire.AppendReplyPayload(resp[:0], "ok", echo)
		reply := wire.Message{JoinRef: m.JoinRef, Ref: m.Ref, Topic: m.Topic, Event: wire.EventReply, Payload: resp}
		if body, _, err = wire.V2.EncodeServer(body[:0], &reply); err != nil {
			break
		}
		mu.Lock()
		out = appendTextFrame(out, body)
		queued.Signal()
		mu.Unlock()
	}
	mu.Lock()
	ended = true
	queued.Signal()
	mu.Unlock()
	wg.Wait()
}

// appendTextFrame appends payload as one unmasked WebSocket text frame, as a
// server sends it.
func appendTextFrame(dst, payload []byte) []byte {
	switch l := len(payload); {
	case l < 126:
		dst = append(dst, 0x81, byte(l))
	case l < 1<<16:
		dst = append(dst, 0x81, 126, byte(l>>8), byte(l))
	default:
		dst = append(dst, 0x81, 127, 0, 0, 0, 0, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return append(dst, payload...)
}

// inUse returns the heap and stack memory the process uses after a full
// collection, and its resident set size (0 where /proc/self/status does not
// exist). FreeOSMemory returns freed pages to the system first, so that RSS
// measured after an earlier phase's memory was freed starts low.
func inUse() (mem, rss uint64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, vmRSS()
}

func vmRSS() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// BenchmarkIdleSockets reports what an idle connected socket costs the
// client: B/socket is the heap and stacks in use per socket, RSS/socket the
// growth of the process's resident set per socket. Beside them, B/raw-conn
// and RSS/raw-conn measure a bare gorilla/websocket client connection to the
// same server in the same way, the floor. The phxtest server runs in another
// process (serverProcess), so that nothing of it is counted. Sockets are
// measured first, from a freshly released heap, then the raw connections:
// RSS the runtime keeps from the sockets could only make the floor look
// smaller (measured the other way round, the figures hardly move). One
// connection of each kind is opened and closed first so that code pages and
// runtime structures touched once are not counted. RSS/raw-conn comes out
// below B/raw-conn because gorilla's buffers, allocated zeroed from fresh
// pages and never written on an idle connection, are never made resident.
//
// 1,000 connections need 1,000 file descriptors in each process; Go raises
// the soft limit to the hard one at start-up, and the benchmark fails on the
// first dial refused for want of them.
func BenchmarkIdleSockets(b *testing.B) {
	const n = 1000
	url := serverProcess(b, "phxtest")
	ctx := context.Background()
	dialRaw := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url+"/websocket?vsn=2.0.0", nil)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	dialSocket := func() *phx.Socket {
		s, err := phx.Connect(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	_ = dialSocket().Close()
	_ = dialRaw().Close()
	for i := 0; i < b.N; i++ {
		mem0, rss0 := inUse()
		socks := make([]*phx.Socket, n)
		for j := range socks {
			socks[j] = dialSocket()
		}
		mem1, rss1 := inUse()
		for _, s := range socks {
			_ = s.Close()
		}

		mem2, rss2 := inUse()
		raws := make([]*websocket.Conn, n)
		for j := range raws {
			raws[j] = dialRaw()
		}
		mem3, rss3 := inUse()
		for _, c := range raws {
			_ = c.Close()
		}

		b.ReportMetric((float64(mem1)-float64(mem0))/n, "B/socket")
		b.ReportMetric((float64(mem3)-float64(mem2))/n, "B/raw-conn")
		if rss0 != 0 {
			b.ReportMetric((float64(rss1)-float64(rss0))/n, "RSS/socket")
			b.ReportMetric((float64(rss3)-float64(rss2))/n, "RSS/raw-conn")
		}
	}
}

// pipelined is how many pushes BenchmarkPipelinedPushes makes per
// iteration, and window how many of them are in flight at once.
const (
	pipelined = 1_000_000
	window    = 1024
)

// BenchmarkPipelinedPushes: one iteration is 1,000,000 pushes through the
// client with 1,024 in flight (one goroutine per outstanding push, since
// Push waits for its reply), to fastEcho in another process, so that
// allocations and memory are the client's alone. Every push carries its
// index and must come back with exactly its own reply: any loss, error or
// mismatch fails the benchmark, and lost (always 0 then) is reported with
// pushes/s and allocs/push. Its floor is BenchmarkPipelinedPushesRawFloor.
// Run it with -benchtime=1x: a million is the measure.
func BenchmarkPipelinedPushes(b *testing.B) {
	url := serverProcess(b, "echo")
	ctx := context.Background()
	sock, err := phx.Connect(ctx, url, &phx.Config{HeartbeatInterval: -1, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("echo:pipelined", nil)
	if _, err := ch.Join(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		got := make([]uint8, pipelined) // got[k] is written by the one goroutine that pushed k
		var failed atomic.Int64
		var next atomic.Int64
		var wg sync.WaitGroup
		m0 := mallocs()
		b.StartTimer()
		for range window {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var want []byte
				for {
					k := next.Add(1) - 1
					if k >= pipelined {
						return
					}
					want = strconv.AppendInt(want[:0], k, 10)
					r, err := ch.Push(ctx, "echo", json.RawMessage(want))
					if err != nil || !bytes.Equal(r.Response, want) {
						if failed.Add(1) <= 10 {
							b.Errorf("push %s: reply %s, %v", want, r.Response, err)
						}
						continue
					}
					got[k]++
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		reportPipelined(b, got, failed.Load(), m0)
		b.StartTimer()
	}
}

// BenchmarkPipelinedPushesRawFloor is the floor of BenchmarkPipelinedPushes:
// the same 1,000,000 pushes, 1,024 in flight, to the same server, on a bare
// gorilla/websocket connection with one goroutine writing and one reading,
// replies decoded with package wire to check each against its push.
func BenchmarkPipelinedPushesRawFloor(b *testing.B) {
	url := serverProcess(b, "echo")
	c, _, err := websocket.DefaultDialer.Dial(url+"/websocket?vsn=2.0.0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`["1","1","echo:pipelined","phx_join",{}]`)); err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	const refBase = 2 // push k has ref k+2; the join had 1
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		got := make([]uint8, pipelined) // written by the reader only
		var failed int64
		slots := make(chan struct{}, window)
		readerDone := make(chan struct{})
		// A lost reply fails the reader at this deadline instead of
		// leaving it waiting forever, as a push times out in the client.
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		m0 := mallocs()
		b.StartTimer()
		go func() {
			defer close(readerDone)
			for n := 0; n < pipelined; n++ {
				_, data, err := c.ReadMessage()
				if err != nil {
					b.Error(err)
					return
				}
				m, err := wire.V2.DecodeServer(wire.Text, data)
				if err != nil {
					b.Error(err)
					return
				}
				r, err := wire.ParseReply(&m)
				ref, _ := m.Ref.Get()
				k, rerr := strconv.ParseInt(ref, 10, 64)
				k -= refBase
				if err != nil || rerr != nil || k < 0 || k >= pipelined || r.Status != "ok" ||
					string(r.Response) != strconv.FormatInt(k, 10) {
					if failed++; failed <= 10 {
						b.Errorf("reply %s: %v", data, err)
					}
				} else {
					got[k]++
				}
				<-slots
			}
		}()
		var frame []byte
	send:
		for k := 0; k < pipelined; k++ {
			select {
			case slots <- struct{}{}:
			case <-readerDone:
				break send
			}
			frame = append(frame[:0], `["1","`...)
			frame = strconv.AppendInt(frame, int64(k+refBase), 10)
			frame = append(frame, `","echo:pipelined","echo",`...)
			frame = strconv.AppendInt(frame, int64(k), 10)
			frame = append(frame, ']')
			if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
				b.Error(err)
				break
			}
		}
		if b.Failed() {
			_ = c.Close() // the reader may wait for replies that will not come
		}
		<-readerDone
		b.StopTimer()
		reportPipelined(b, got, failed, m0)
		b.StartTimer()
	}
}

// mallocs counts the allocations the process has made so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// reportPipelined fails the benchmark unless every push got exactly one
// reply, and reports for the iteration that just ended the pushes lost (0),
// pushes/s and allocs/push (allocations since m0 per push; the timer is
// stopped).
func reportPipelined(b *testing.B, got []uint8, failed int64, m0 uint64) {
	var lost, dup int
	for _, n := range got {
		switch {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
	}
	if lost != 0 || dup != 0 || failed != 0 {
		b.Fatalf("%d pushes: %d lost, %d answered twice, %d failed", len(got), lost, dup, failed)
	}
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(len(got))*float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
	b.ReportMetric(float64(mallocs()-m0)/float64(len(got)), "allocs/push")
}
