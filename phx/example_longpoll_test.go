package phx_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// Talk to Phoenix over HTTP long-polling instead of a WebSocket: the same
// endpoint URL, the same channels.
func ExampleLongPoll() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()

	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{Transport: &phx.LongPoll{}})
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:lobby", map[string]string{"device": "longpoll"})
	resp, err := ch.Join(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("joined: %s\n", resp)
	reply, err := ch.Push(ctx, "echo", map[string]string{"body": "hi"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reply: %s %s\n", reply.Status, reply.Response)
	fmt.Println("server sees:", srv.Conns()[0].Transport())
	// Output:
	// joined: {"joined":"room:lobby","params":{"device":"longpoll"}}
	// reply: ok {"body":"hi"}
	// server sees: longpoll
}

// Try the WebSocket first and fall back to long-polling when it does not
// work, here because the server only serves long-poll.
func ExampleFallback() {
	srv := phxtest.New(phxtest.DemoConfig())
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/socket/longpoll", srv) // no /socket/websocket
	hts := httptest.NewServer(mux)
	defer hts.Close()
	ctx := context.Background()

	cfg := &phx.Config{Transport: phx.Fallback(nil, &phx.LongPoll{}, 2500*time.Millisecond)}
	sock, err := phx.Connect(ctx, "ws://"+hts.Listener.Addr().String()+"/socket", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:fallback", nil)
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	reply, err := ch.Push(ctx, "echo", map[string]int{"n": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reply: %s %s\n", reply.Status, reply.Response)
	fmt.Println("server sees:", srv.Conns()[0].Transport())
	// Output:
	// reply: ok {"n":1}
	// server sees: longpoll
}
