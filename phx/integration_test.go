package phx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/wire"
)

// Integration tests: the client against phxtest over real loopback
// WebSockets. Timings are shortened through Config.

func fast(cfg *phx.Config) *phx.Config {
	if cfg == nil {
		cfg = &phx.Config{}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Rejoin == nil {
		cfg.Rejoin = func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) }
	}
	if cfg.Reconnect == nil {
		cfg.Reconnect = func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) }
	}
	return cfg
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, srv *phxtest.Server, cfg *phx.Config) *phx.Socket {
	t.Helper()
	sock, err := phx.Connect(context.Background(), srv.URL(), fast(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return sock
}

func demo(t *testing.T) *phxtest.Server {
	return phxtest.NewServer(t, phxtest.DemoConfig())
}

func waitStatus[T phx.Status](t *testing.T, ctx context.Context, sock *phx.Socket, ok func(T) bool) T {
	t.Helper()
	for {
		select {
		case st, open := <-sock.Status():
			if !open {
				t.Fatal("status stream closed")
			}
			if v, is := st.(T); is && (ok == nil || ok(v)) {
				return v
			}
		case <-ctx.Done():
			var zero T
			t.Fatalf("no %T status: %v", zero, ctx.Err())
		}
	}
}

func TestIntegrationJoinPushReplies(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), nil)
	ch := sock.Channel("room:lobby", map[string]any{"device": "test"})
	resp, err := ch.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(resp, []byte(`"joined":"room:lobby"`)) {
		t.Fatalf("join response %s", resp)
	}
	r, err := ch.Push(ctx, "echo", map[string]int{"n": 1})
	if err != nil || r.Status != "ok" || string(r.Response) != `{"n":1}` {
		t.Fatalf("echo = %+v, %v", r, err)
	}
	r, err = ch.Push(ctx, "echo", json.RawMessage(`"a string"`))
	if err != nil || string(r.Response) != `"a string"` {
		t.Fatalf("echo raw = %+v, %v", r, err)
	}
	_, err = ch.Push(ctx, "error", nil)
	if re, ok := phx.AsReplyError(err); !ok || string(re.Response) != `{"reason":"nope"}` {
		t.Fatalf("error = %v", err)
	}
	_, err = ch.Push(ctx, "noreply", nil, phx.WithTimeout(50*time.Millisecond))
	if !errors.Is(err, phx.ErrTimeout) {
		t.Fatalf("noreply = %v", err)
	}
	r, err = ch.Push(ctx, "binary", phx.Binary{0, 1, 2, 255})
	if err != nil || !r.Binary || !bytes.Equal(r.Response, []byte{0, 1, 2, 255}) {
		t.Fatalf("binary = %+v, %v", r, err)
	}
	if d, err := sock.Ping(ctx); err != nil || d <= 0 {
		t.Fatalf("ping %v %v", d, err)
	}
	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if ch.State() != phx.ChannelClosed {
		t.Fatal(ch.State())
	}
}

func TestIntegrationBroadcastAndPresence(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, &phx.Config{Params: url.Values{"user": {"ann"}}})
	ch := sock.Channel("room:b", nil)
	sub := mustSub(t, ch, phx.Events("new_msg", "presence_state", "presence_diff"))
	defer sub.Close()
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "new_msg", map[string]string{"body": "hi"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]phx.Message{}
	for len(seen) < 3 {
		select {
		case m := <-sub.C():
			seen[m.Event] = m
		case <-ctx.Done():
			t.Fatalf("saw only %v", seen)
		}
	}
	jr := seen["presence_state"].JoinRef
	if jr == "" || seen["presence_diff"].JoinRef != jr || seen["new_msg"].JoinRef != jr {
		t.Fatalf("join refs %+v", seen)
	}
	if string(seen["new_msg"].Payload) != `{"body":"hi"}` {
		t.Fatal(seen["new_msg"])
	}
	// Server-side broadcasts reach the subscription too.
	if err := srv.Broadcast("room:b", "new_msg", map[string]int{"i": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.C():
		if string(m.Payload) != `{"i":1}` {
			t.Fatal(m)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func TestIntegrationJoinRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), nil)
	ch := sock.Channel("room:secret", nil)
	_, err := ch.Join(ctx)
	var je *phx.JoinError
	re, ok := phx.AsReplyError(err)
	if !errors.As(err, &je) || !ok || string(re.Response) != `{"reason":"unauthorized"}` {
		t.Fatalf("join = %v", err)
	}
	if ch.State() != phx.ChannelClosed {
		t.Fatal(ch.State())
	}
	// Unmatched topic: refused the same way.
	_, err = sock.Channel("nope:1", nil).Join(ctx)
	if re, ok := phx.AsReplyError(err); !ok || string(re.Response) != `{"reason":"unmatched topic"}` {
		t.Fatalf("join = %v", err)
	}
}

func TestIntegrationCrashRejoinsStopCloses(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), nil)
	ch := sock.Channel("room:crash", nil)
	sub := mustSub(t, ch, phx.Events("new_msg"))
	defer sub.Close()
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	first := waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:crash" })
	if _, err := ch.Push(ctx, "crash", nil); !errors.Is(err, phx.ErrDisconnected) {
		t.Fatalf("crash push = %v", err)
	}
	again := waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:crash" })
	if again.JoinRef == first.JoinRef {
		t.Fatal("rejoin reused the join_ref")
	}
	if _, err := ch.Push(ctx, "new_msg", map[string]int{"after": 1}); err != nil {
		t.Fatal(err)
	}
	if m := <-sub.C(); m.JoinRef != again.JoinRef {
		t.Fatalf("message of session %s, want %s", m.JoinRef, again.JoinRef)
	}
	// {:stop, :normal}: phx_close, closed for good.
	if _, err := ch.Push(ctx, "stop", nil, phx.WithTimeout(time.Second)); !errors.Is(err, phx.ErrClosed) {
		t.Fatalf("stop push = %v", err)
	}
	if ch.State() != phx.ChannelClosed {
		t.Fatal(ch.State())
	}
	if _, ok := <-sub.C(); ok || !errors.Is(sub.Err(), phx.ErrClosed) {
		t.Fatal(sub.Err())
	}
}

func TestIntegrationRestartRejoins(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, nil)
	var chans []*phx.Channel
	var subs []*phx.Subscription
	for _, topic := range []string{"room:r1", "room:r2", "room:r3"} {
		ch := sock.Channel(topic, nil)
		subs = append(subs, mustSub(t, ch, phx.Events("new_msg")))
		if _, err := ch.Join(ctx); err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, sock, func(d phx.Disconnected) bool { return d.Reconnect })
	waitStatus[phx.Connected](t, ctx, sock, nil)
	for i, ch := range chans {
		if _, err := ch.Push(ctx, "new_msg", map[string]int{"i": i}); err != nil {
			t.Fatalf("%s: %v", ch.Topic(), err)
		}
		select {
		case m := <-subs[i].C():
			if string(m.Payload) != `{"i":`+string(rune('0'+i))+`}` {
				t.Fatal(m)
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if sock.Stats().Reconnects != 1 {
		t.Fatal(sock.Stats())
	}
}

func TestIntegrationServerDisconnect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		phoenix18 bool
		cfg       phx.Config
		reconnect bool
	}{
		{"1.7-1000-stops", false, phx.Config{}, false},
		{"1.7-1000-option", false, phx.Config{ReconnectOnNormalClose: true}, true},
		{"1.8-1001", true, phx.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			cfg := phxtest.DemoConfig()
			cfg.Phoenix18 = tc.phoenix18
			srv := phxtest.NewServer(t, cfg)
			c := tc.cfg
			c.Params = url.Values{"user": {"dc"}}
			sock := dial(t, srv, &c)
			if _, err := srv.WaitConn(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if n := srv.Disconnect("user_socket:dc"); n != 1 {
				t.Fatalf("disconnected %d sockets", n)
			}
			d := waitStatus[phx.Disconnected](t, ctx, sock, nil)
			if d.Reconnect != tc.reconnect {
				t.Fatalf("%+v", d)
			}
			if tc.reconnect {
				waitStatus[phx.Connected](t, ctx, sock, nil)
				return
			}
			<-sock.Done()
			if phx.CloseCode(sock.Err()) != 1000 {
				t.Fatal(sock.Err())
			}
		})
	}
}

func TestIntegrationHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, &phx.Config{HeartbeatInterval: 30 * time.Millisecond})
	c, err := srv.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.SetFaults(phxtest.Faults{IgnoreHeartbeats: true})
	start := time.Now()
	d := waitStatus[phx.Disconnected](t, ctx, sock, nil)
	if !errors.Is(d.Err, phx.ErrHeartbeatTimeout) || !d.Reconnect {
		t.Fatalf("%+v", d)
	}
	// The exact bound (interval + timeout) is checked under synctest; on a
	// shared machine under -race only detection itself is checked here.
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("dead connection found after %v", el)
	}
	waitStatus[phx.Connected](t, ctx, sock, nil)
}

func TestIntegrationConnectRefusedAndAuth(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	var mu sync.Mutex
	var tokens []string
	cfg := phxtest.DemoConfig()
	cfg.Connect = func(info phxtest.ConnectInfo) (phxtest.Socket, error) {
		mu.Lock()
		tokens = append(tokens, info.AuthToken)
		mu.Unlock()
		return phxtest.DemoConnect(info)
	}
	srv := phxtest.NewServer(t, cfg)
	_, err := phx.Connect(ctx, srv.URL(), &phx.Config{Params: url.Values{"token": {"bad"}}})
	var de *phx.DialError
	if !errors.As(err, &de) || de.Status != 403 || !de.Unauthorized() {
		t.Fatalf("Connect = %v", err)
	}
	sock := dial(t, srv, &phx.Config{AuthToken: "s3cret"})
	_ = sock
	mu.Lock()
	defer mu.Unlock()
	if tokens[len(tokens)-1] != "s3cret" {
		t.Fatalf("tokens %q", tokens)
	}
}

func TestIntegrationVsn1(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, &phx.Config{Vsn: "1.0.0"})
	ch := sock.Channel("room:v1", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := ch.Push(ctx, "echo", map[string]int{"v": 1})
	if err != nil || string(r.Response) != `{"v":1}` {
		t.Fatalf("%+v %v", r, err)
	}
	c, _ := srv.WaitConn(ctx, 1)
	if c.Vsn() != "1.0.0" {
		t.Fatal(c.Vsn())
	}
}

func TestIntegrationGarbageReconnects(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, nil)
	ch := sock.Channel("room:g", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	for i, bad := range [][]byte{[]byte(`{`), []byte(`[1,2]`), {}, []byte(`[null,null,"t","e"`), []byte(`[null,null,"room:g","e",{"a":]`)} {
		c, err := srv.WaitJoined(ctx, "room:g")
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SendRaw(wire.Text, bad)
		d := waitStatus[phx.Disconnected](t, ctx, sock, nil)
		if !errors.Is(d.Err, phx.ErrProtocol) {
			t.Fatalf("%d: %+v", i, d)
		}
		waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:g" })
	}
	if _, err := ch.Push(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationCloseBlackholed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, &phx.Config{CloseTimeout: 100 * time.Millisecond, WriteTimeout: 5 * time.Second})
	ch := sock.Channel("room:bh", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	c, _ := srv.WaitConn(ctx, 1)
	c.PauseReading()
	defer c.ResumeReading()
	big := bytes.Repeat([]byte("x"), 256<<10)
	var wg sync.WaitGroup
	for range 64 { // enough to fill the kernel buffers and the writer queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = ch.Push(ctx, "echo", phx.Binary(big))
		}()
	}
	start := time.Now()
	var cw sync.WaitGroup
	for range 5 {
		cw.Add(1)
		go func() { defer cw.Done(); sock.Close() }()
	}
	cw.Wait()
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Close took %v", el)
	}
	wg.Wait()
}

// TestIntegrationChurn: repeated server restarts, dropped connections and
// crashes while pushes are in flight. Every push gets exactly one outcome,
// every topic is rejoined after each cycle, nothing leaks.
func TestIntegrationChurn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	srv := demo(t)
	sock := dial(t, srv, &phx.Config{HeartbeatInterval: 50 * time.Millisecond, Timeout: time.Second})
	topics := []string{"room:c1", "room:c2", "room:c3", "room:c4", "room:c5"}
	var chans []*phx.Channel
	for _, tp := range topics {
		ch := sock.Channel(tp, nil)
		// Under load a heartbeat timeout can end the connection before the
		// join's reply; the channel then rejoins by itself (waitAllJoined).
		if _, err := ch.Join(ctx); err != nil && !errors.Is(err, phx.ErrDisconnected) && !errors.Is(err, phx.ErrTimeout) {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	var pushers sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	outcomes := map[string]int{}
	for _, ch := range chans {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := ch.Push(ctx, "echo", map[string]string{"t": ch.Topic()})
				key := "ok"
				switch {
				case err == nil:
				case errors.Is(err, phx.ErrDisconnected):
					key = "disconnected"
				case errors.Is(err, phx.ErrTimeout):
					key = "timeout"
				case errors.Is(err, phx.ErrPushBufferFull):
					key = "full"
				default:
					t.Errorf("push: %v", err)
					return
				}
				mu.Lock()
				outcomes[key]++
				mu.Unlock()
			}
		}()
	}
	allJoined := func() bool {
		for _, ch := range chans {
			if ch.State() != phx.ChannelJoined {
				return false
			}
		}
		return true
	}
	waitAllJoined := func(cycle int) {
		for !allJoined() {
			select {
			case <-sock.Status():
			case <-ctx.Done():
				t.Fatalf("cycle %d: not all rejoined", cycle)
			}
		}
	}
	waitAllJoined(-1)
	// crashC1 crashes room:c1's channel on the server and waits until the
	// client's join session of it has ended: a Rejoining for it, or the
	// connection lost (a heartbeat timeout under load can come first, and
	// the phx_error is lost with it; every channel rejoins anyway).
	crashC1 := func(cycle int) {
		for {
			// The newest connection with room:c1 joined is the client's,
			// unless the client has just left it and the server has not
			// seen it close yet: once it has, the crash went nowhere, and
			// the next connection gets one.
			c, err := srv.WaitJoined(ctx, "room:c1")
			if err != nil {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
			if c.CrashChannel(ctx, "room:c1") != nil {
				continue
			}
		wait:
			for {
				select {
				case st := <-sock.Status():
					if r, ok := st.(phx.Rejoining); ok && r.Topic == "room:c1" {
						return
					}
					if _, ok := st.(phx.Disconnected); ok {
						return
					}
				case <-c.Done():
					break wait
				case <-ctx.Done():
					t.Fatalf("cycle %d: room:c1 not crashed: %v", cycle, ctx.Err())
				}
			}
		}
	}
	for cycle := range 20 {
		switch cycle % 3 {
		case 0:
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		case 1:
			for _, c := range srv.Conns() {
				c.Drop()
			}
		case 2:
			crashC1(cycle)
		}
		if cycle%3 != 2 {
			waitStatus[phx.Disconnected](t, ctx, sock, nil)
		}
		waitAllJoined(cycle)
	}
	close(stop)
	pushers.Wait()
	if outcomes["ok"] == 0 {
		t.Fatalf("outcomes %v", outcomes)
	}
	if st := sock.Stats(); st.Reconnects < 13 || st.Malformed != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("outcomes %v, stats %+v", outcomes, sock.Stats())
}

// TestIntegrationSlowConsumer: one topic is never read while others are;
// the socket keeps reading, the healthy topics get everything, and the
// stuck topic's drops equal what did not fit its buffer.
func TestIntegrationSlowConsumer(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	// Heartbeats keep their default: with a short interval on a loaded
	// machine a reconnect would cut the sessions (and the counts) short.
	sock := dial(t, srv, nil)
	const n, buf = 2000, 16
	stuckCh := sock.Channel("room:stuck", nil)
	stuck := mustSub(t, stuckCh, phx.WithBuffer(buf), phx.Events("n"))
	if _, err := stuckCh.Join(ctx); err != nil {
		t.Fatal(err)
	}
	var healthy []*phx.Subscription
	for _, tp := range []string{"room:h1", "room:h2", "room:h3"} {
		ch := sock.Channel(tp, nil)
		// Room for all: under -race on a shared machine a reader can be
		// descheduled long enough to overflow the default buffer.
		healthy = append(healthy, mustSub(t, ch, phx.WithBuffer(n), phx.Events("n")))
		if _, err := ch.Join(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var readers sync.WaitGroup
	for k, sub := range healthy {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := range n {
				select {
				case m := <-sub.C():
					var v struct{ I int }
					if err := json.Unmarshal(m.Payload, &v); err != nil || v.I != i {
						t.Errorf("%s: got %s, want %d", m.Topic, m.Payload, i)
						return
					}
				case <-ctx.Done():
					t.Errorf("topic %d: got %d of %d", k+1, i, n)
					return
				}
			}
		}()
	}
	for i := range n {
		for _, tp := range []string{"room:stuck", "room:h1", "room:h2", "room:h3"} {
			if err := srv.Broadcast(tp, "n", map[string]int{"i": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	readers.Wait()
	// The stuck topic's last messages may still be on their way; a ping
	// is a round trip's wait.
	for stuck.Dropped() < n-buf {
		if _, err := sock.Ping(ctx); err != nil {
			t.Fatalf("dropped %d, want %d: %v", stuck.Dropped(), n-buf, err)
		}
	}
	if stuck.Dropped() != n-buf {
		t.Fatalf("dropped %d, want %d", stuck.Dropped(), n-buf)
	}
	for i := range buf {
		select {
		case m := <-stuck.C():
			var v struct{ I int }
			if err := json.Unmarshal(m.Payload, &v); err != nil || v.I != i {
				t.Fatalf("stuck: got %s, want %d", m.Payload, i)
			}
		case <-ctx.Done():
			t.Fatalf("stuck: buffered %d of %d", i, buf)
		}
	}
	if sock.State() != phx.StateConnected {
		t.Fatal(sock.State())
	}
}

// subscriber is a Channel or a Socket.
type subscriber interface {
	Subscribe(context.Context, ...phx.SubscribeOption) (*phx.Subscription, error)
}

// mustSub subscribes to x or fails the test.
func mustSub(t testing.TB, x subscriber, opts ...phx.SubscribeOption) *phx.Subscription {
	t.Helper()
	sub, err := x.Subscribe(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// Leave, a duplicate topic and a crash against phxtest under both
// serializers: vsn 1.0.0 carries no join_ref, so the client must route the
// leave's reply by its ref and phx_close / phx_error by the join ref
// Phoenix puts in their ref.
func TestIntegrationChannelsBothVsns(t *testing.T) {
	t.Parallel()
	for _, vsn := range []string{"2.0.0", "1.0.0"} {
		t.Run("vsn="+vsn, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			sock := dial(t, demo(t), &phx.Config{Vsn: vsn, Timeout: 3 * time.Second})

			// Leave returns on the server's reply, not on its timeout.
			ch := sock.Channel("room:leave", nil)
			if _, err := ch.Join(ctx); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := ch.Leave(ctx); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Leave took %v: it waited for its timeout", d)
			}

			// A second Channel value on a joined topic: the older leaves,
			// the newer stays joined through the server's phx_close of the
			// older session.
			old := sock.Channel("room:dup", nil)
			if _, err := old.Join(ctx); err != nil {
				t.Fatal(err)
			}
			nw := sock.Channel("room:dup", nil)
			if _, err := nw.Join(ctx); err != nil {
				t.Fatalf("second join: %v", err)
			}
			if r, err := nw.Push(ctx, "echo", map[string]int{"n": 1}); err != nil || string(r.Response) != `{"n":1}` {
				t.Fatalf("push on the newer channel: %+v %v", r, err)
			}
			if old.State() != phx.ChannelClosed || nw.State() != phx.ChannelJoined {
				t.Fatalf("older %v, newer %v", old.State(), nw.State())
			}

			// A crash errors the channel, which rejoins; a stop closes it.
			_, err := nw.Push(ctx, "crash", nil)
			var se *phx.ServerError
			if !errors.Is(err, phx.ErrDisconnected) || !errors.As(err, &se) || se.Topic != "room:dup" {
				t.Fatalf("crash push = %v, want ErrDisconnected with the *ServerError", err)
			}
			waitStatus(t, ctx, sock, func(j phx.Joined) bool { return j.Topic == "room:dup" })
			if _, err := nw.Push(ctx, "stop", nil, phx.WithTimeout(time.Second)); !errors.Is(err, phx.ErrClosed) {
				t.Fatalf("stop push = %v", err)
			}
			if nw.State() != phx.ChannelClosed {
				t.Fatal(nw.State())
			}
		})
	}
}
