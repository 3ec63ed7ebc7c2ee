package managed_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
)

// Disconnect keeps the configs and topics: Connect rejoins them as they
// were configured.
func TestDisconnectKeepsConfigs(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, nil)
	ctx := ctxFor(t)
	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "room:1", Events: []string{"new_msg"}, Payload: map[string]int{"v": 1}})
	if _, err := c.Join(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	conn, err := srv.WaitJoined(ctx, "room:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(ctx, 4000); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-ctx.Done():
		t.Fatal("the server's connection did not end")
	}
	if code := conn.ClientCloseCode(); code != 4000 {
		t.Fatalf("the server saw close code %d, want 4000", code)
	}
	if ev := next[managed.SocketClosed](t, c); ev.Code != 4000 || ev.Reconnect {
		t.Fatalf("closed %+v", ev)
	}
	var de *managed.DisconnectError
	if r, _ := c.DisconnectReason(ctx); !errors.As(r, &de) || de.Code != 4000 {
		t.Fatalf("reason %v", r)
	}
	if st, _ := c.State(ctx); st != managed.Disconnected {
		t.Fatalf("state %v", st)
	}
	if q, _ := c.ChannelQueued(ctx, "room:1"); !q {
		t.Fatal("room:1 not kept for the next connect")
	}
	if err := srv.WaitActive(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	j := next[managed.ChannelJoined](t, c)
	if j.Topic != "room:1" || string(j.Response) != `{"joined":"room:1","params":{"v":1}}` {
		t.Fatalf("rejoin %+v", j)
	}
	if err := srv.Broadcast("room:1", "new_msg", map[string]string{"b": "1"}); err != nil {
		t.Fatal(err)
	}
	if ev := next[managed.ChannelEvent](t, c); ev.Event != "new_msg" {
		t.Fatalf("event %+v", ev)
	}
}

// DisconnectAndReset forgets every config, topic, queued and timed-out
// push: the client is as new.
func TestDisconnectAndResetForgetsAll(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	c := newClient(t, srv, &managed.Config{Socket: phx.Config{
		Reconnect: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) },
	}})
	ctx := ctxFor(t)
	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "room:1", Events: []string{"new_msg"}})
	if err := c.Send(ctx, managed.Push{Topic: "room:1", Event: "noreply", Ref: "t",
		Timeout: 50 * time.Millisecond, Retry: managed.Every(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	next[managed.PushTimeout](t, c)
	if err := c.DisconnectAndReset(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if ev := next[managed.PushCancelled](t, c); ev.Push.Ref != "t" {
		t.Fatalf("cancelled %+v", ev)
	}
	for _, q := range []func() (int, error){
		func() (int, error) { ps, err := c.Pushes(ctx, nil); return len(ps), err },
		func() (int, error) { ts, err := c.JoinedChannels(ctx); return len(ts), err },
		func() (int, error) { ts, err := c.QueuedChannels(ctx); return len(ts), err },
		func() (int, error) { p, err := c.Presence(ctx, "room:1"); return len(p.List) + len(p.Joins), err },
	} {
		if n, err := q(); n != 0 || err != nil {
			t.Fatalf("after reset: %d, %v", n, err)
		}
	}
	// A push queued while the socket cannot open is forgotten too.
	if err := srv.WaitActive(ctx, 0); err != nil {
		t.Fatal(err)
	}
	srv.RefuseNext(1)
	if err := c.Send(ctx, managed.Push{Topic: "room:2", Event: "echo", Ref: "q"}); err != nil {
		t.Fatal(err)
	}
	next[managed.SocketError](t, c)
	if q, _ := c.PushQueued(ctx, managed.RefIs("q")); !q {
		t.Fatal("q not queued")
	}
	_ = c.DisconnectAndReset(ctx, 0)
	if ev := next[managed.PushCancelled](t, c); ev.Push.Ref != "q" {
		t.Fatalf("cancelled %+v", ev)
	}
	if w, _ := c.PushWaiting(ctx, nil); w {
		t.Fatal("pushes left after reset")
	}
	// The config is gone: new_msg is no longer delivered.
	if _, err := c.Join(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	_ = c.AddEvents(ctx, "room:1", "sentinel")
	_ = srv.Broadcast("room:1", "new_msg", map[string]string{})
	_ = srv.Broadcast("room:1", "sentinel", map[string]string{})
	if ev := next[managed.ChannelEvent](t, c); ev.Event != "sentinel" {
		t.Fatalf("event %+v after reset", ev)
	}
	conn, _ := srv.WaitConn(ctx, 1)
	for _, f := range frames(conn) {
		if strings.HasPrefix(f, "room:2") || strings.Contains(f, "noreply") {
			t.Fatalf("forgotten push sent: %q", frames(conn))
		}
	}
}

// The stream's overflow policies; blocking calls work without the stream.
func TestStreamOverflow(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	topics := []string{"room:1", "room:2", "room:3", "room:4", "room:5"}

	t.Run("DropNewest", func(t *testing.T) {
		c := newClient(t, srv, &managed.Config{Buffer: 1})
		ctx := ctxFor(t)
		for _, tp := range topics {
			if _, err := c.Join(ctx, tp); err != nil {
				t.Fatal(err)
			}
		}
		if d, _ := c.Dropped(ctx); d == 0 {
			t.Fatal("nothing dropped")
		}
		<-c.Events()
		_ = c.Leave(ctx, "room:1")
		if ev := next[managed.Overflowed](t, c); ev.Dropped == 0 {
			t.Fatalf("overflowed %+v", ev)
		}
	})
	t.Run("DropOldest", func(t *testing.T) {
		c := newClient(t, srv, &managed.Config{Buffer: 1, Overflow: phx.DropOldest})
		ctx := ctxFor(t)
		for _, tp := range topics {
			if _, err := c.Join(ctx, tp); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.Leave(ctx, "room:1")
		if d, _ := c.Dropped(ctx); d == 0 {
			t.Fatal("nothing dropped")
		}
		if ev := next[managed.ChannelLeft](t, c); ev.Topic != "room:1" {
			t.Fatalf("newest %+v", ev)
		}
	})
	t.Run("CloseWithError", func(t *testing.T) {
		c := newClient(t, srv, &managed.Config{Buffer: 1, Overflow: phx.CloseWithError})
		ctx := ctxFor(t)
		for _, tp := range topics {
			if _, err := c.Join(ctx, tp); err != nil {
				t.Fatal(err)
			}
		}
		for range c.Events() {
		}
		if !errors.Is(c.Err(), phx.ErrSlowConsumer) {
			t.Fatalf("Err = %v", c.Err())
		}
		if _, err := c.Push(ctx, managed.Push{Topic: "room:1", Event: "echo"}); err != nil {
			t.Fatalf("push after the stream closed: %v", err)
		}
	})
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logging is switched on and off on a running client; join payloads, where
// tokens go, are never logged.
func TestLoggingSwitch(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	var buf syncBuf
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, srv, &managed.Config{Logger: lg})
	ctx := ctxFor(t)
	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "room:1", Payload: map[string]string{"token": "s3cret"}})
	if _, err := c.Push(ctx, managed.Push{Topic: "room:1", Event: "echo", Payload: map[string]int{"quiet": 1}}); err != nil {
		t.Fatal(err)
	}
	c.Log("not logged")
	if buf.String() != "" || c.Logging() {
		t.Fatalf("logged while off: %s", buf.String())
	}
	c.StartLogging()
	if _, err := c.Push(ctx, managed.Push{Topic: "room:1", Event: "echo", Payload: map[string]int{"loud": 2}, Ref: "L"}); err != nil {
		t.Fatal(err)
	}
	c.Log("hello", "k", 1)
	out := buf.String()
	for _, want := range []string{"phx push", "topic=room:1", "event=echo", "ref=L", "phx reply", "hello"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
	c.StopLogging()
	n := len(buf.String())
	if _, err := c.Push(ctx, managed.Push{Topic: "room:1", Event: "echo"}); err != nil {
		t.Fatal(err)
	}
	if len(buf.String()) != n {
		t.Fatalf("logged after StopLogging:\n%s", buf.String()[n:])
	}
	// The rejoin's payload holds a token: logged joins never show it.
	c.StartLogging()
	_ = c.Leave(ctx, "room:1")
	if _, err := c.Join(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "phx join") || strings.Contains(out, "s3cret") {
		t.Fatalf("join log:\n%s", out)
	}
}
