package phx_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/wire"
)

func nextFrame(t *testing.T, ctx context.Context, tap *phx.FrameTap) phx.Frame {
	t.Helper()
	select {
	case f, ok := <-tap.C():
		if !ok {
			t.Fatalf("tap closed: %v", tap.Err())
		}
		return f
	case <-ctx.Done():
		t.Fatal("no frame")
	}
	return phx.Frame{}
}

func TestFramesTapBothDirections(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), &phx.Config{HeartbeatInterval: -1})
	tap, err := sock.Frames(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	ch := sock.Channel("echo:tap", map[string]string{"token": "j0in-s3cret"})
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "hello", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		dir   phx.Direction
		event string
	}{{phx.Sent, "phx_join"}, {phx.Received, "phx_reply"}, {phx.Sent, "hello"}, {phx.Received, "phx_reply"}}
	var prev phx.Frame
	for i, w := range want {
		f := nextFrame(t, ctx, tap)
		var m wire.Message
		var err error
		if f.Dir == phx.Sent {
			m, err = wire.V2.DecodeClient(wire.Text, f.Data)
		} else {
			m, err = wire.V2.DecodeServer(wire.Text, f.Data)
		}
		if err != nil || f.Dir != w.dir || m.Event != w.event || m.Topic != "echo:tap" || f.Binary {
			t.Fatalf("frame %d = %v %s (%v), want %v %s", i, f.Dir, f.Data, err, w.dir, w.event)
		}
		if f.Time.Before(prev.Time) {
			t.Fatalf("frame %d earlier than the one before", i)
		}
		prev = f
		if i == 0 {
			if !strings.Contains(string(f.Data), "j0in-s3cret") {
				t.Fatalf("raw join frame %s", f.Data)
			}
			if s := f.String(); !strings.HasPrefix(s, "sent [") || strings.Contains(s, "s3cret") || !strings.Contains(s, `"token":"REDACTED"`) {
				t.Fatalf("join frame String %s", s)
			}
		}
	}
	tap.Close()
	if _, ok := <-tap.C(); ok {
		t.Fatal("C open after Close")
	}
	if tap.Err() != nil || tap.Dropped() != 0 {
		t.Fatalf("err %v dropped %d", tap.Err(), tap.Dropped())
	}
	tap.Close() // idempotent
	// The socket goes on without its tap.
	if _, err := ch.Push(ctx, "hello", nil); err != nil {
		t.Fatal(err)
	}
}

func TestFramesTapDropsWhenNotRead(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), &phx.Config{HeartbeatInterval: -1})
	ch := sock.Channel("echo:drop", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	tap, err := sock.Frames(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	for range 5 {
		if _, err := ch.Push(ctx, "hello", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Ten frames: one waits in the buffer, at most one more in the hands
	// of the relay, the rest are dropped; the pushes were never held up.
	if d := tap.Dropped(); d < 8 || d > 9 {
		t.Fatalf("dropped %d of 10", d)
	}
}

func TestFramesTapEnds(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sock := dial(t, demo(t), nil)
	tctx, cancel := context.WithCancel(ctx)
	tap1, err := sock.Frames(tctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	tap2, err := sock.Frames(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for range tap1.C() {
	}
	if !errors.Is(tap1.Err(), context.Canceled) {
		t.Fatalf("tap1 err %v", tap1.Err())
	}
	sock.Close()
	for range tap2.C() {
	}
	if !errors.Is(tap2.Err(), phx.ErrClosed) {
		t.Fatalf("tap2 err %v", tap2.Err())
	}
	if _, err := sock.Frames(ctx, 0); !errors.Is(err, phx.ErrClosed) {
		t.Fatalf("Frames after Close: %v", err)
	}
}
