package phx_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
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
