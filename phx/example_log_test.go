package phx_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/phxgo/phxgo/phx"
)

// Switch a live socket's frame logging on and off, as an operator would
// from an admin endpoint: the caller owns the level, the socket asks it at
// every frame. While Debug is off a frame costs that one question.
func ExampleConfig_logger() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()

	var level slog.LevelVar // Info
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: &level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "url" {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{Logger: logger, HeartbeatInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("echo:1", nil)
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}

	level.Set(slog.LevelDebug) // start logging frames
	if _, err := ch.Push(ctx, "hello", map[string]string{"token": "s3cret", "body": "hi"}); err != nil {
		log.Fatal(err)
	}
	level.Set(slog.LevelInfo) // stop
	if _, err := ch.Push(ctx, "hello", nil); err != nil {
		log.Fatal(err)
	}
	sock.Close()
	fmt.Println("done")
	// Output:
	// level=INFO msg="phx: connected"
	// level=INFO msg="phx: joined" topic=echo:1 join_ref=1
	// level=DEBUG msg="phx: frame" dir=sent topic=echo:1 event=hello join_ref=1 ref=2 size=57 payload_size=30 payload="{\"body\":\"hi\",\"token\":\"REDACTED\"}"
	// level=DEBUG msg="phx: frame" dir=received topic=echo:1 event=phx_reply join_ref=1 ref=2 size=88 payload_size=57 payload="{\"response\":{\"body\":\"hi\",\"token\":\"REDACTED\"},\"status\":\"ok\"}"
	// level=INFO msg="phx: closed"
	// done
}
