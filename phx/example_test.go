package phx_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// startDemo runs the in-process Phoenix-compatible server with the demo
// application ("room:*" channels) on a random loopback port.
func startDemo() *phxtest.Server {
	srv, err := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	if err != nil {
		log.Fatal(err)
	}
	return srv
}

// Connect, join a channel, push and read the reply, close.
func Example() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()

	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:lobby", map[string]string{"device": "cli"})
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

	_, err = ch.Push(ctx, "error", nil)
	if re, ok := phx.AsReplyError(err); ok {
		fmt.Printf("error reply: %s\n", re.Response)
	}
	// Output:
	// joined: {"joined":"room:lobby","params":{"device":"cli"}}
	// reply: ok {"body":"hi"}
	// error reply: {"reason":"nope"}
}

// Subscribe before joining so that nothing of the session is missed; range
// over C until the subscription ends.
func ExampleChannel_Subscribe() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:chat", nil)
	sub := ch.Subscribe("new_msg")
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	for _, body := range []string{"one", "two"} {
		if _, err := ch.Push(ctx, "new_msg", map[string]string{"body": body}); err != nil {
			log.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		m := <-sub.C()
		fmt.Printf("%s %s\n", m.Event, m.Payload)
	}
	sub.Close()
	_, open := <-sub.C()
	fmt.Println("open:", open, "err:", sub.Err())
	// Output:
	// new_msg {"body":"one"}
	// new_msg {"body":"two"}
	// open: false err: <nil>
}

// Decode payloads into a type as they are taken; the payload stays raw
// until then, and a payload that does not decode is an error value, not the
// end of the subscription.
func ExampleSubscribeAs() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	type blast struct {
		I    int    `json:"i"`
		Data string `json:"data"`
	}
	ch := sock.Channel("room:typed", nil)
	sub := phx.SubscribeAs[blast](ch, "blast")
	defer sub.Close()
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := ch.Push(ctx, "blast", map[string]int{"n": 3, "size": 2}); err != nil {
		log.Fatal(err)
	}
	n := 0
	for v, err := range sub.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v.Event, v.Value.I, v.Value.Data)
		if n++; n == 3 {
			break
		}
	}
	// Output:
	// blast 1 xx
	// blast 2 xx
	// blast 3 xx
}

// A join refused by the server is a *phx.JoinError holding the server's
// response; the channel is then closed and does not retry.
func ExampleChannel_Join_refused() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:secret", nil)
	_, err = ch.Join(ctx)
	var je *phx.JoinError
	re, _ := phx.AsReplyError(err)
	fmt.Println(errors.As(err, &je), re.Status, string(re.Response), ch.State())
	// Output:
	// true error {"reason":"unauthorized"} closed
}

// Close ends everything: subscriptions close with ErrClosed, pushes and
// joins return ErrClosed, and the status stream ends with Closed.
func ExampleSocket_Close() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	ch := sock.Channel("room:bye", nil)
	sub := ch.Subscribe()
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("close:", sock.Close(), sock.State())
	for range sub.C() {
	}
	fmt.Println("subscription:", sub.Err())
	_, err = ch.Push(ctx, "echo", nil)
	fmt.Println("push:", err)
	var last phx.Status
	for st := range sock.Status() {
		last = st
	}
	fmt.Printf("last status: %T\n", last)
	// Output:
	// close: <nil> closed
	// subscription: phx: closed
	// push: phx: closed
	// last status: phx.Closed
}
