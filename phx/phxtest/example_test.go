package phxtest_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// A channel handler written with HandlerFuncs, and a raw client talking to
// it.
func Example() {
	srv, err := phxtest.Start("127.0.0.1:0", phxtest.Config{
		Channels: map[string]phxtest.Handler{"greet:*": phxtest.HandlerFuncs{
			InFunc: func(_ context.Context, ch *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
				return phxtest.Reply("ok", map[string]string{"hello": ch.Topic()})
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	ws, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0", nil)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","1","greet:world","phx_join",{}]`))
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","2","greet:world","hi",{}]`))
	for i := 0; i < 2; i++ {
		_, data, _ := ws.ReadMessage()
		fmt.Println(string(data))
	}
	// Replies on different topics are not ordered (as in Phoenix), so the
	// next push waits for the previous reply.
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","3","nope","phx_join",{}]`))
	_, data, _ := ws.ReadMessage()
	fmt.Println(string(data))
	// Output:
	// ["1","1","greet:world","phx_reply",{"response":{},"status":"ok"}]
	// ["1","2","greet:world","phx_reply",{"response":{"hello":"greet:world"},"status":"ok"}]
	// [null,"3","nope","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]
}

// Fault switches: a server that stops answering heartbeats, and waiting
// for a client to join.
func ExampleServer_SetFaults() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	srv.SetFaults(phxtest.Faults{IgnoreHeartbeats: true})

	ws, resp, _ := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0&user=ann", nil)
	resp.Body.Close()
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`[null,"1","phoenix","heartbeat",{}]`))
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","2","room:lobby","phx_join",{}]`))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := srv.WaitJoined(ctx, "room:lobby")
	if err != nil {
		panic(err)
	}
	for _, m := range conn.Received() {
		fmt.Println(m.Topic, m.Event)
	}
	_, reply, _ := ws.ReadMessage() // the heartbeat got nothing: the join reply comes first
	fmt.Println(string(reply))
	// Output:
	// phoenix heartbeat
	// room:lobby phx_join
	// ["1","2","room:lobby","phx_reply",{"response":{"joined":"room:lobby","params":{}},"status":"ok"}]
}

// Mounting the server in an existing HTTP server under any path.
func ExampleNew() {
	srv := phxtest.New(phxtest.Config{Channels: map[string]phxtest.Handler{"echo": phxtest.Echo{}}})
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/live/", srv) // serves /live/websocket and /live/longpoll
	fmt.Println("mounted")
	// Output: mounted
}
