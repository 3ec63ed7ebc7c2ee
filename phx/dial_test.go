package phx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// silentServer accepts TCP connections and never answers: a dial to it
// hangs in the WebSocket upgrade or the long-poll request.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "ws://" + ln.Addr().String() + "/socket"
}

// A server that accepts and never upgrades fails the dial after
// DialTimeout (Config.Timeout by default), on every transport.
func TestDialTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  phx.Config
	}{
		{"websocket/Timeout", phx.Config{Timeout: 300 * time.Millisecond}},
		{"websocket/DialTimeout", phx.Config{Timeout: time.Minute, DialTimeout: 300 * time.Millisecond}},
		{"longpoll", phx.Config{Timeout: 300 * time.Millisecond, Transport: &phx.LongPoll{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := silentServer(t)
			start := time.Now()
			cfg := tc.cfg
			_, err := phx.Connect(context.Background(), u, &cfg)
			d := time.Since(start)
			var de *phx.DialError
			if !errors.As(err, &de) || !errors.Is(err, phx.ErrTimeout) {
				t.Fatalf("Connect = %v, want a *DialError wrapping ErrTimeout", err)
			}
			// Generous for a loaded machine; without the bound it is 45 s
			// (gorilla) or the long-poll client's own limits.
			if d < 300*time.Millisecond || d > 10*time.Second {
				t.Fatalf("Connect returned after %v", d)
			}
		})
	}
}

// Cancelling Connect's ctx ends a dial that hangs in the upgrade at once,
// even when the dial timeout is long.
func TestConnectCtxCancelsHangingDial(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tr   phx.Transport
	}{{"websocket", nil}, {"longpoll", &phx.LongPoll{}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := silentServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := phx.Connect(ctx, u, &phx.Config{Timeout: time.Minute, Transport: tc.tr})
			d := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Connect = %v, want the ctx's error", err)
			}
			if d > 10*time.Second {
				t.Fatalf("Connect returned %v after the ctx ended", d-200*time.Millisecond)
			}
		})
	}
}

// No secret of the connect URL (query values, the auth token) appears in an
// error string or a status event, while the full URL stays available.
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t"
	leaks := func(t *testing.T, what string, v any) {
		t.Helper()
		for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v)} {
			if strings.Contains(s, secret) {
				t.Fatalf("%s leaks a secret: %s", what, s)
			}
		}
	}
	params := url.Values{"key": {secret + "-param"}, "user": {"u1"}}

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		p := url.Values{"token": {"bad"}, "key": {secret + "-param"}}
		for _, tr := range []phx.Transport{nil, &phx.LongPoll{}} {
			_, err := phx.Connect(context.Background(), srv.URL()+"?k="+secret+"-endpoint",
				&phx.Config{Params: p, AuthToken: secret + "-auth", Transport: tr})
			var de *phx.DialError
			if !errors.As(err, &de) || !de.Unauthorized() {
				t.Fatalf("Connect = %v", err)
			}
			leaks(t, "the refused dial's error", err)
			leaks(t, "DialError.URL", de.URL)
			if !strings.Contains(de.URL, "key=REDACTED") || !strings.Contains(de.URL, "vsn=2.0.0") {
				t.Fatalf("URL %s", de.URL)
			}
			if full := de.FullURL(); !strings.Contains(full, "key="+secret+"-param") || !strings.Contains(full, "k="+secret+"-endpoint") {
				t.Fatalf("FullURL %s", full)
			}
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		for _, tr := range []phx.Transport{nil, &phx.LongPoll{}} {
			_, err := phx.Connect(context.Background(), "ws://user:"+secret+"@"+addr+"/socket?k="+secret,
				&phx.Config{Params: params, Transport: tr})
			var de *phx.DialError
			if !errors.As(err, &de) {
				t.Fatalf("Connect = %v", err)
			}
			leaks(t, "the failed dial's error", err)
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		srv := phxtest.NewServer(t, phxtest.DemoConfig())
		sock := dial(t, srv, &phx.Config{Params: params, AuthToken: secret + "-auth", RetryUnauthorized: true})
		if !strings.Contains(sock.Endpoint(), srv.Addr()) {
			t.Fatal(sock.Endpoint())
		}
		leaks(t, "Connected", waitStatus(t, ctx, sock, func(phx.Connected) bool { return true }))
		c, err := srv.WaitConn(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Three refused reconnect attempts, then one that opens.
		srv.RefuseNext(3)
		c.Drop()
		refused := 0
		for {
			var st phx.Status
			select {
			case s, ok := <-sock.Status():
				if !ok {
					t.Fatal("the socket ended")
				}
				st = s
			case <-ctx.Done():
				t.Fatalf("no reconnect after %d refused attempts", refused)
			}
			leaks(t, fmt.Sprintf("status %T", st), st)
			var de *phx.DialError
			if d, ok := st.(phx.Disconnected); ok && errors.As(d.Err, &de) {
				refused++
			}
			if _, ok := st.(phx.Connected); ok {
				break
			}
		}
		if refused != 3 {
			t.Fatalf("%d refused attempts, want 3", refused)
		}
	})
}
