package phxtest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/phxgo/phxgo/phx/phxtest"
)

var benchPayload = map[string]any{"body": strings.Repeat("x", 64)}

// BenchmarkBroadcast measures Server.Broadcast to one joined WebSocket
// client that reads every frame: the path of the client's ordering and
// throughput tests.
func BenchmarkBroadcast(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.Config{Channels: map[string]phxtest.Handler{"t": phxtest.Echo{}}})
	ws, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","1","t","phx_join",{}]`))
	if _, _, err := ws.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, _, err := ws.ReadMessage(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if err := srv.Broadcast("t", "ev", benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBroadcastFloor is the floor for BenchmarkBroadcast: a bare
// gorilla/websocket server writing the same frames to the same client.
func BenchmarkBroadcastFloor(b *testing.B) {
	frame := []byte(`[null,null,"t","ev",{"body":"` + strings.Repeat("x", 64) + `"}]`)
	start := make(chan int, 1)
	finished := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(finished)
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		n := <-start
		for i := 0; i < n; i++ {
			if c.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		}
	}))
	defer hs.Close()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	b.ReportAllocs()
	b.ResetTimer()
	start <- b.N
	for i := 0; i < b.N; i++ {
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	<-finished
}

// BenchmarkEchoRoundTrip measures one push and its reply through a channel
// goroutine, one at a time.
func BenchmarkEchoRoundTrip(b *testing.B) {
	srv := phxtest.NewServer(b, phxtest.Config{Channels: map[string]phxtest.Handler{"t": phxtest.Echo{}}})
	ws, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","1","t","phx_join",{}]`))
	if _, _, err := ws.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	push := []byte(`["1","2","t","echo",{"body":"` + strings.Repeat("x", 64) + `"}]`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, push); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
