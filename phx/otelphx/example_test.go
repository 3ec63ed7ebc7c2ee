package otelphx_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/otelphx"
	"github.com/phxgo/phxgo/phx/phxtest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A socket with both: slog records whose level an operator can change at
// run time, and OpenTelemetry spans and metrics (the global meter provider
// here, a recording tracer provider to show the spans).
func Example() {
	srv, err := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	var level slog.LevelVar // Info; level.Set(slog.LevelDebug) logs every frame
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	obs, err := otelphx.New(otelphx.Config{TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{Logger: logger, Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	reg, err := obs.Register(sock) // frames, bytes, gauges from sock.Stats()
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()

	ch := sock.Channel("echo:1", nil)
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := ch.Push(ctx, "hello", map[string]string{"body": "hi"}); err != nil {
		log.Fatal(err)
	}
	sock.Close()
	for _, s := range spans.Ended() {
		fmt.Println(s.Name())
	}
	// Output:
	// phx_join echo:*
	// hello echo:*
	// phx.socket
}
