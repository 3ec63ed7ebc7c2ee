package phx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

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
	sub, err := ch.Subscribe(ctx, phx.Events("new_msg"), phx.WithBuffer(64))
	if err != nil {
		log.Fatal(err)
	}
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
	sub.Close() // does not wait: C closes right after
	for range sub.C() {
	}
	fmt.Println("err:", sub.Err())
	// Output:
	// new_msg {"body":"one"}
	// new_msg {"body":"two"}
	// err: <nil>
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
	sub, err := phx.SubscribeAs[blast](ctx, ch, phx.Events("blast"))
	if err != nil {
		log.Fatal(err)
	}
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
	sub, err := ch.Subscribe(ctx)
	if err != nil {
		log.Fatal(err)
	}
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

// Connect's ctx bounds the dial only, as for net.Dialer: the usual
// WithTimeout and deferred cancel leave the socket running until Close.
func ExampleConnect() {
	srv := startDemo()
	defer srv.Close()

	connect := func() (*phx.Socket, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return phx.Connect(ctx, srv.URL(), nil)
	}
	sock, err := connect()
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:lobby", nil)
	if _, err := ch.Join(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sock.State(), ch.State())
	// Output:
	// connected joined
}

// Send suits events the server does not answer ({:noreply, socket} in the
// Phoenix guides' chat channel): it returns once the frame is written,
// where a Push would wait for its timeout.
func ExampleChannel_Send() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:send", nil)
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("send:", ch.Send(ctx, "noreply", map[string]string{"body": "fire and forget"}))
	// A push of the same channel is sent after it, in order.
	reply, err := ch.Push(ctx, "echo", map[string]int{"n": 1}, phx.WithTimeout(2*time.Second))
	fmt.Println("push:", reply.Status, string(reply.Response), err)
	// Output:
	// send: <nil>
	// push: ok {"n":1} <nil>
}

// Binary payloads are explicit: phx.Binary goes as a binary frame, while a
// plain []byte is a JSON value (base64), as encoding/json makes it.
func ExampleBinary() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:bin", nil)
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	bin, err := ch.Push(ctx, "echo", phx.Binary{1, 2, 3})
	if err != nil {
		log.Fatal(err)
	}
	js, err := ch.Push(ctx, "echo", []byte{1, 2, 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(bin.Binary, []byte(bin.Response))
	fmt.Println(js.Binary, string(js.Response))
	// Output:
	// true [1 2 3]
	// false "AQID"
}

// ParamsFunc computes the join parameters before every join and rejoin,
// for example a token that expires while the socket is offline.
func ExampleParamsFunc() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	joins := 0
	ch := sock.Channel("room:params", phx.ParamsFunc(func() any {
		joins++ // called by the channel's actor, one join at a time
		return map[string]int{"join": joins}
	}))
	resp, err := ch.Join(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", resp)
	// Output:
	// {"joined":"room:params","params":{"join":1}}
}

// A consumer that is done with each message before it takes the next
// (it hashes, forwards or decodes it) lets the socket lend it payloads:
// large frames are then read into buffers reused from message to message.
// A payload kept past the next Next is copied first.
func ExampleLend() {
	srv := startDemo()
	defer srv.Close()
	ctx := context.Background()
	sock, err := phx.Connect(ctx, srv.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sock.Close()

	ch := sock.Channel("room:lent", nil)
	sub, err := ch.Subscribe(ctx, phx.Events("blast"), phx.Lend())
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	if _, err := ch.Join(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := ch.Push(ctx, "blast", map[string]int{"n": 3, "size": 4096}); err != nil {
		log.Fatal(err)
	}
	var first json.RawMessage
	total := 0
	for i := 0; i < 3; i++ {
		m, err := sub.Next(ctx) // gives back the message taken before
		if err != nil {
			log.Fatal(err)
		}
		if i == 0 {
			first = bytes.Clone(m.Payload) // kept: copied
		}
		total += len(m.Payload)
	}
	fmt.Println(total, len(first))
	// Output:
	// 12339 4113
}
