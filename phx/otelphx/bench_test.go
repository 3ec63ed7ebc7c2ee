package otelphx_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/otelphx"
	"github.com/phxgo/phxgo/wire"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The receive and round-trip benchmarks of the client's own pipeline over
// an in-memory connection (no network, no server: the only cost measured is
// the client's), each run with no logger, with a logger whose level is Info
// (Debug off), with Debug on (to a discarded output), and with the
// OpenTelemetry adapter recording into the SDK:
//
//	go test -run '^$' -bench . -count 6 ./phx/otelphx/

// memConn is a Conn in memory: reads return feed frames (n copies of frame)
// or replies queued by writes; a join or push written is answered at once.
type memConn struct {
	frame   []byte
	n       atomic.Int64
	replies chan []byte
	closed  chan struct{}
}

func newMemConn(frame []byte) *memConn {
	return &memConn{frame: frame, replies: make(chan []byte, 16), closed: make(chan struct{})}
}

func (c *memConn) ReadMessage() (wire.Opcode, []byte, error) {
	if c.n.Load() > 0 {
		c.n.Add(-1)
		b := make([]byte, len(c.frame))
		copy(b, c.frame)
		return wire.Text, b, nil
	}
	select {
	case r := <-c.replies:
		return wire.Text, r, nil
	case <-c.closed:
		return 0, nil, errors.New("closed")
	}
}

func (c *memConn) WriteMessage(op wire.Opcode, data []byte, _ time.Time) error {
	m, err := wire.V2.DecodeClient(op, data)
	if err != nil {
		return err
	}
	r := `["` + m.JoinRef.String() + `","` + m.Ref.String() + `","` + m.Topic + `","phx_reply",{"status":"ok","response":{"n":1}}]`
	select {
	case c.replies <- []byte(r):
	case <-c.closed:
	}
	return nil
}

func (c *memConn) WriteClose(int, string, time.Time) error { return nil }

func (c *memConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

type memTransport struct{ c *memConn }

func (t memTransport) Dial(context.Context, string, http.Header) (phx.Conn, error) { return t.c, nil }

// variants are the observability settings compared.
func variants(b *testing.B) []struct {
	name string
	cfg  func() phx.Config
} {
	return []struct {
		name string
		cfg  func() phx.Config
	}{
		{"none", func() phx.Config { return phx.Config{} }},
		{"logger-debug-off", func() phx.Config {
			return phx.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}
		}},
		{"logger-debug-on", func() phx.Config {
			return phx.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		}},
		{"otel", func() phx.Config {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
			obs, err := otelphx.New(otelphx.Config{TracerProvider: tp, MeterProvider: mp})
			if err != nil {
				b.Fatal(err)
			}
			return phx.Config{Observer: obs}
		}},
	}
}

func BenchmarkReceive100B(b *testing.B) {
	body := `{"i":1,"data":"` + strings.Repeat("x", 100-len(`{"i":1,"data":""}`)) + `"}`
	frame := []byte(`[null,null,"room:1","msg",` + body + `]`)
	for _, v := range variants(b) {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			c := newMemConn(frame)
			cfg := v.cfg()
			cfg.Transport, cfg.HeartbeatInterval = memTransport{c}, -1
			sock, err := phx.Connect(ctx, "ws://bench/socket", &cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer sock.Close()
			ch := sock.Channel("room:1", nil)
			sub, err := ch.Subscribe(ctx, phx.WithBuffer(4096), phx.WithOverflow(phx.Block))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ch.Join(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			c.n.Store(int64(b.N))
			select { // wake the reader, parked on replies
			case c.replies <- frame:
			default:
			}
			for i := 0; i <= b.N; i++ {
				if _, ok := <-sub.C(); !ok {
					b.Fatal(sub.Err())
				}
			}
		})
	}
}

func BenchmarkPushRoundTrip(b *testing.B) {
	for _, v := range variants(b) {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			c := newMemConn(nil)
			cfg := v.cfg()
			cfg.Transport, cfg.HeartbeatInterval = memTransport{c}, -1
			sock, err := phx.Connect(ctx, "ws://bench/socket", &cfg)
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
		})
	}
}
