package managed_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// Push connects and joins by itself; everything the client does comes on
// one stream.
func Example() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), nil)
	defer c.Close()

	_ = c.Send(ctx, managed.Push{Topic: "echo:1", Event: "hi", Payload: map[string]string{"body": "hello"}, Ref: "first"})
	for ev := range c.Events() {
		switch ev := ev.(type) {
		case managed.SocketOpened:
			fmt.Println("socket open")
		case managed.ChannelJoined:
			fmt.Println("joined", ev.Topic)
		case managed.PushOK:
			fmt.Println("reply to", ev.Push.Ref, string(ev.Response))
			return
		}
	}
	// Output:
	// socket open
	// joined echo:1
	// reply to first {"body":"hello"}
}

// A push that times out is retried on its schedule, then dropped.
func Example_retry() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), nil)
	defer c.Close()

	// room:* never answers "noreply": two retries, then the push is dropped.
	_, err := c.Push(ctx, managed.Push{Topic: "room:1", Event: "noreply", Timeout: 20 * time.Millisecond,
		Retry: managed.Backoff([]time.Duration{10 * time.Millisecond, 30 * time.Millisecond}, 0)})
	fmt.Println(err)
	for ev := range c.Events() {
		if to, ok := ev.(managed.PushTimeout); ok {
			fmt.Println("timeout, attempt", to.Attempt, "retry:", to.Retry)
			if !to.Retry {
				return
			}
		}
	}
	// Output:
	// phx: timeout
	// timeout, attempt 1 retry: true
	// timeout, attempt 2 retry: true
	// timeout, attempt 3 retry: false
}

// Waiting pushes can be found by their config, counted down and dropped.
func Example_introspection() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), nil)
	defer c.Close()

	_ = c.Send(ctx, managed.Push{Topic: "room:1", Event: "noreply", Ref: "slow",
		Timeout: 20 * time.Millisecond, Retry: managed.Every(time.Hour)})
	for ev := range c.Events() {
		if _, ok := ev.(managed.PushTimeout); ok {
			break
		}
	}
	timedOut, _ := c.PushTimedOut(ctx, managed.RefIs("slow"))
	left, _, _ := c.RetryIn(ctx, managed.RefIs("slow"))
	fmt.Println("timed out:", timedOut, "retry in about", left.Round(time.Hour))
	n, _ := c.DropTimedOutPush(ctx, managed.RefIs("slow"))
	waiting, _ := c.PushWaiting(ctx, managed.TopicIs("room:1"))
	fmt.Println("dropped", n, "still waiting:", waiting)
	// Output:
	// timed out: true retry in about 1h0m0s
	// dropped 1 still waiting: false
}

// Join configs choose the events delivered; a batch does several things in
// one call.
func Example_batch() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), nil)
	defer c.Close()

	_ = c.Batch(ctx, managed.Batch{
		JoinConfigs: []managed.JoinConfig{{Topic: "room:1", Events: []string{"new_msg"}}},
		Push:        []managed.Push{{Topic: "room:1", Event: "new_msg", Payload: map[string]string{"body": "hi"}}},
	})
	for ev := range c.Events() {
		if e, ok := ev.(managed.ChannelEvent); ok {
			fmt.Println(e.Topic, e.Event, string(e.Payload))
			return
		}
	}
	// Output:
	// room:1 new_msg {"body":"hi"}
}

// The presence of a topic is folded as it comes.
func Example_presence() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), &managed.Config{Socket: phx.Config{Params: url.Values{"user": {"ann"}}}})
	defer c.Close()

	_, _ = c.Join(ctx, "room:lobby")
	for ev := range c.Events() {
		if st, ok := ev.(managed.PresenceState); ok {
			for _, p := range st.List {
				fmt.Println("present:", p.Key, len(p.Metas), "meta")
			}
			break
		}
	}
	info, _ := c.Presence(ctx, "room:lobby")
	fmt.Println("last join:", info.LastJoin.Key)
	// Output:
	// present: ann 1 meta
	// last join: ann
}

// Past a server's channel limit the client opens more sockets.
func Example_pool() {
	cfg := phxtest.DemoConfig()
	cfg.MaxChannels = 10
	srv, _ := phxtest.Start("127.0.0.1:0", cfg)
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), &managed.Config{MaxChannelsPerSocket: 10})
	defer c.Close()

	var topics []string
	for i := range 25 {
		topics = append(topics, fmt.Sprintf("echo:%d", i))
	}
	_ = c.JoinAll(ctx, topics...)
	joined := 0
	for ev := range c.Events() {
		if _, ok := ev.(managed.ChannelJoined); ok {
			if joined++; joined == len(topics) {
				break
			}
		}
	}
	fmt.Println(joined, "topics on", srv.Stats().Active, "sockets")
	// Output:
	// 25 topics on 3 sockets
}

// Disconnect keeps the topics and configs for the next Connect;
// DisconnectAndReset forgets them.
func Example_disconnect() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	c := managed.New(ctx, srv.URL(), nil)
	defer c.Close()

	_, _ = c.Join(ctx, "echo:1")
	_ = c.Disconnect(ctx, 4000)
	st, _ := c.State(ctx)
	reason, _ := c.DisconnectReason(ctx)
	fmt.Println(st, "-", reason)
	_ = c.Connect(ctx)
	_, _ = c.Join(ctx, "echo:1") // kept: it rejoins by itself; Join waits for it
	joined, _ := c.JoinedChannels(ctx)
	fmt.Println("joined again:", joined)
	_ = c.DisconnectAndReset(ctx, 0)
	queued, _ := c.QueuedChannels(ctx)
	fmt.Println("after reset:", len(queued), "topics")
	// Output:
	// disconnected - managed: disconnected by the client (code 4000)
	// joined again: [echo:1]
	// after reset: 0 topics
}

// Logging is switched on and off while the client runs.
func Example_logging() {
	srv, _ := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	defer srv.Close()
	ctx := context.Background()
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		}})
	c := managed.New(ctx, srv.URL(), &managed.Config{Logger: slog.New(h)})
	defer c.Close()

	_, _ = c.Push(ctx, managed.Push{Topic: "echo:1", Event: "quiet"})
	c.StartLogging()
	_, _ = c.Push(ctx, managed.Push{Topic: "echo:1", Event: "loud", Ref: "L", Payload: map[string]int{"n": 1}})
	c.StopLogging()
	_, _ = c.Push(ctx, managed.Push{Topic: "echo:1", Event: "quiet"})
	// Output:
	// msg="phx push" topic=echo:1 event=loud ref=L attempt=1 payload="{\"n\":1}"
	// msg="phx reply" topic=echo:1 event=loud ref=L err=<nil>
}
