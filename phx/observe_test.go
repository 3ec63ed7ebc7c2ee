package phx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
)

// recorder is an Observer that keeps what it is told, as lines.
type recorder struct {
	mu     sync.Mutex
	events []string
	hb     int
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) OnStatus(st phx.Status) {
	if _, ok := st.(phx.Reconnecting); ok {
		r.add("status reconnecting")
		return
	}
	r.add(fmt.Sprintf("status %T", st))
}

func (r *recorder) OnJoin(ev phx.JoinEvent) {
	if ev.Start.IsZero() || ev.Duration < 0 || ev.JoinRef == "" {
		r.add(fmt.Sprintf("bad join event %+v", ev))
	}
	r.add(fmt.Sprintf("join %s rejoin=%v status=%q err=%v", ev.Topic, ev.Rejoin, ev.Status, ev.Err))
}

func (r *recorder) OnPush(ev phx.PushEvent) {
	if ev.Start.IsZero() || ev.Duration <= 0 || ev.Context == nil || (ev.Sent && (ev.Ref == "" || ev.JoinRef == "")) {
		r.add(fmt.Sprintf("bad push event %+v", ev))
	}
	if v, _ := ev.Context.Value(ctxKey{}).(string); v != "caller" {
		r.add("push without the caller's context")
	}
	r.add(fmt.Sprintf("push %s %s size=%d sent=%v status=%q err=%v", ev.Topic, ev.Event, ev.Size, ev.Sent, ev.Status, ev.Err))
}

func (r *recorder) OnHeartbeat(d time.Duration) {
	r.mu.Lock()
	r.hb++
	r.mu.Unlock()
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

type ctxKey struct{}

func TestObserverScriptedSession(t *testing.T) {
	t.Parallel()
	ctx := context.WithValue(testCtx(t), ctxKey{}, "caller")
	srv := scriptedServer(t)
	rec := &recorder{}
	sock := dial(t, srv, &phx.Config{HeartbeatInterval: -1, Observer: phx.MultiObserver(nil, rec)})
	ch := sock.Channel("s:1", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = ch.Push(ctx, "ok", map[string]int{"a": 1})
	_, _ = ch.Push(ctx, "error", nil)
	_, _ = ch.Push(ctx, "noreply", nil, phx.WithTimeout(20*time.Millisecond))
	_, _ = ch.Push(ctx, "crash", nil)
	waitStatus[phx.Joined](t, ctx, sock, func(phx.Joined) bool { return sock.Stats().Rejoins == 1 })
	c, _ := srv.WaitConn(ctx, 1)
	c.Drop()
	waitStatus[phx.Joined](t, ctx, sock, func(phx.Joined) bool { return sock.Stats().Rejoins == 2 })
	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	want := []string{
		"status phx.Connected",
		`join s:1 rejoin=false status="ok" err=<nil>`,
		"status phx.Joined",
		`push s:1 ok size=7 sent=true status="ok" err=<nil>`,
		`push s:1 error size=0 sent=true status="error" err=phx: reply "error": {"reason":"nope"}`,
		`push s:1 noreply size=0 sent=true status="" err=phx: timeout`,
		`push s:1 crash size=0 sent=true status="" err=phx: disconnected before reply: phx: channel s:1 errored on the server: {}`,
		"status phx.Rejoining",
		`join s:1 rejoin=true status="ok" err=<nil>`,
		"status phx.Joined",
		"status phx.Disconnected",
		"status reconnecting",
		"status phx.Connected",
		`join s:1 rejoin=true status="ok" err=<nil>`,
		"status phx.Joined",
		"status phx.ChannelEnded",
		"status phx.Closed",
	}
	if got := rec.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestObserverJoinTimeoutAndAbandon(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	rec := &recorder{}
	sock := dial(t, srv, &phx.Config{HeartbeatInterval: -1, Observer: rec, Timeout: 30 * time.Millisecond})
	c, _ := srv.WaitConn(ctx, 1)
	c.SetFaults(phxtest.Faults{DropJoinReplies: true})
	ch := sock.Channel("room:slow", nil)
	if _, err := ch.Join(ctx); !errors.Is(err, phx.ErrTimeout) {
		t.Fatalf("join: %v", err)
	}
	ch.Leave(ctx)
	sock.Close()
	var joins []string
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, "join") {
			joins = append(joins, l)
		}
	}
	if len(joins) == 0 || joins[0] != `join room:slow rejoin=false status="" err=phx: timeout` {
		t.Fatalf("joins %q", joins)
	}
	for _, j := range joins[1:] {
		if !strings.Contains(j, "rejoin=true") {
			t.Fatalf("joins %q", joins)
		}
	}
}
