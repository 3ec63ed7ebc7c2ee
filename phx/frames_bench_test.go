package phx

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/phxgo/phxgo/wire"
)

// BenchmarkOnFrame is the per-frame cost of the observability hooks the
// reader and writer call (counting, the tap check, the Debug check),
// without a logger and with a logger whose level is Info: the difference is
// what a received frame pays for a logger with Debug off, to be set against
// the ~0.5–1 µs the whole receive path takes (otelphx's
// BenchmarkReceive100B).
func BenchmarkOnFrame(b *testing.B) {
	frame := []byte(`[null,null,"room:1","msg",{"i":1}]`)
	for _, v := range []struct {
		name   string
		logger *slog.Logger
	}{
		{"none", nil},
		{"logger-debug-off", slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))},
	} {
		b.Run(v.name, func(b *testing.B) {
			s := &Socket{cfg: Config{Logger: v.logger}, ser: wire.V2}
			if v.logger != nil {
				s.logH = v.logger.Handler()
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				s.onFrame(ctx, Received, wire.Text, frame)
			}
		})
	}
}
