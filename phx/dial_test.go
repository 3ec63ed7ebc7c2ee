package phx_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
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
