package phx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
)

// logBuf collects a text handler's lines for a test.
type logBuf struct {
	mu    sync.Mutex
	lines []string
	part  bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.part.Write(p)
	for {
		line, err := b.part.ReadString('\n')
		if err != nil {
			b.part.WriteString(line)
			break
		}
		b.lines = append(b.lines, strings.TrimSuffix(line, "\n"))
	}
	return len(p), nil
}

func (b *logBuf) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

// matching returns the lines holding every one of parts.
func (b *logBuf) matching(parts ...string) []string {
	var out []string
	for _, l := range b.all() {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func newTestLogger(lv *slog.LevelVar) (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: lv})), b
}

func TestLogLevelSwitchOnLiveSocket(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	var lv slog.LevelVar // Info
	logger, buf := newTestLogger(&lv)
	sock := dial(t, demo(t), &phx.Config{
		Logger:            logger,
		Params:            url.Values{"user": {"ann"}, "access_token": {"p4ram-s3cret"}},
		AuthToken:         "h3ader-s3cret",
		HeartbeatInterval: -1,
	})
	ch := sock.Channel("room:lobby", map[string]any{"device": "t"})
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "echo", map[string]string{"n": "quiet"}); err != nil {
		t.Fatal(err)
	}
	if got := buf.matching("level=INFO", `msg="phx: connected"`, "url=ws://"); len(got) != 1 {
		t.Fatalf("connected records %q in %q", got, buf.all())
	}
	if got := buf.matching("level=INFO", `msg="phx: joined"`, "topic=room:lobby", "join_ref="); len(got) != 1 {
		t.Fatalf("joined records %q in %q", got, buf.all())
	}
	if got := buf.matching("level=DEBUG"); len(got) != 0 {
		t.Fatalf("debug records at Info: %q", got)
	}

	// startLogging: every frame, both ways, from the next one on.
	lv.Set(slog.LevelDebug)
	if _, err := ch.Push(ctx, "echo", map[string]string{"n": "loud"}); err != nil {
		t.Fatal(err)
	}
	sent := buf.matching("level=DEBUG", `msg="phx: frame"`, "dir=sent", "topic=room:lobby", "event=echo", "join_ref=", "ref=", "payload_size=12", `payload="{\"n\":\"loud\"}"`)
	recv := buf.matching("level=DEBUG", `msg="phx: frame"`, "dir=received", "topic=room:lobby", "event=phx_reply", `loud`)
	if len(sent) != 1 || len(recv) != 1 {
		t.Fatalf("sent %q received %q in %q", sent, recv, buf.all())
	}
	if got := buf.matching("quiet"); len(got) != 0 {
		t.Fatalf("a frame from before the switch was logged: %q", got)
	}
	// A join carrying a token, logged at Debug: the token is redacted.
	ch2 := sock.Channel("room:two", map[string]any{"token": "j0in-s3cret", "device": "t"})
	if _, err := ch2.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if got := buf.matching("dir=sent", "event=phx_join", "topic=room:two", "REDACTED"); len(got) != 1 {
		t.Fatalf("join frame records %q", buf.matching("phx_join"))
	}

	// stopLogging.
	lv.Set(slog.LevelInfo)
	if _, err := ch.Push(ctx, "echo", map[string]string{"n": "after"}); err != nil {
		t.Fatal(err)
	}
	if got := buf.matching("after"); len(got) != 0 {
		t.Fatalf("a frame after the switch back was logged: %q", got)
	}
	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	if got := buf.matching(`msg="phx: channel ended"`, "topic=room:lobby", "channel left"); len(got) != 1 {
		t.Fatalf("leave records %q in %q", got, buf.all())
	}
	if got := buf.matching(`msg="phx: closed"`); len(got) != 1 {
		t.Fatalf("closed records %q", got)
	}
	for _, l := range buf.all() {
		if strings.Contains(l, "s3cret") {
			t.Errorf("secret in %q", l)
		}
	}
}

func TestLogWarnsOnSlowConsumerAndRefusedUpgrade(t *testing.T) {
	t.Parallel()
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	logger, buf := newTestLogger(&lv)
	srv := demo(t)
	_, err := phx.Connect(context.Background(), srv.URL(), fast(&phx.Config{
		Logger: logger,
		Params: url.Values{"token": {"bad"}},
	}))
	var de *phx.DialError
	if !errors.As(err, &de) || de.Status != 403 {
		t.Fatalf("connect = %v", err)
	}
	// The first attempt's error goes to the caller; it is not logged, but
	// its log value hides the token.
	v := slog.AnyValue(de).Resolve().String()
	if strings.Contains(v, "token=bad") || !strings.Contains(v, "token=REDACTED") || !strings.Contains(v, "http_status=403") {
		t.Fatalf("dial error log value %s", v)
	}

	ctx := testCtx(t)
	sock := dial(t, srv, &phx.Config{Logger: logger, Params: url.Values{"token": {"good"}}})
	ch := sock.Channel("room:slow", nil)
	sub, err := ch.Subscribe(ctx, phx.Events("blast"), phx.WithBuffer(1))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "blast", map[string]int{"n": 5, "size": 1}); err != nil {
		t.Fatal(err)
	}
	for len(buf.matching("level=WARN", `msg="phx: slow consumer"`, "topic=room:slow")) == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no slow consumer warning in %q", buf.all())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if got := buf.matching("level=INFO"); len(got) != 0 {
		t.Fatalf("info records at Warn: %q", got)
	}
}

func TestStatusAndErrorsReadAsOneLine(t *testing.T) {
	t.Parallel()
	dialErr := &phx.DialError{URL: "ws://h/socket/websocket?vsn=2.0.0&token=abc", Status: 403, Err: errors.New("bad handshake")}
	cases := []struct {
		v    any
		want string
	}{
		{phx.Connected{URL: "ws://h/socket/websocket?user_token=abc&vsn=2.0.0"}, "connected to ws://h/socket/websocket?user_token=REDACTED&vsn=2.0.0"},
		{phx.Disconnected{Err: &phx.CloseError{Code: 1001, Reason: "bye"}, Code: 1001, Reconnect: true}, "disconnected: phx: connection closed with code 1001: bye (code 1001), will reconnect"},
		{phx.Disconnected{Err: dialErr}, "disconnected: phx: dial ws://h/socket/websocket?vsn=2.0.0&token=REDACTED: HTTP 403: bad handshake, for good"},
		{phx.Reconnecting{Attempt: 2, Delay: 50 * time.Millisecond}, "reconnecting in 50ms (attempt 2)"},
		{phx.Closed{}, "closed"},
		{phx.Joined{Topic: "room:lobby", JoinRef: "3"}, "joined room:lobby (join_ref 3)"},
		{phx.Rejoining{Topic: "room:a", Attempt: 1, Delay: time.Second, Err: phx.ErrTimeout}, "rejoining room:a in 1s (attempt 1): phx: timeout"},
		{phx.ChannelEnded{Topic: "room:a", Err: phx.ErrLeft}, "channel room:a ended: phx: channel left"},
		{phx.SlowConsumer{Topic: "room:a", Dropped: 7, Err: phx.ErrSlowConsumer}, "slow consumer on room:a: 7 dropped"},
		{dialErr, "phx: dial ws://h/socket/websocket?vsn=2.0.0&token=REDACTED: HTTP 403: bad handshake"},
		{&phx.JoinError{Topic: "room:a", Err: &phx.ReplyError{Status: "error", Response: []byte(`{"reason":"x"}`)}}, `phx: join room:a: phx: reply "error": {"reason":"x"}`},
		{&phx.CloseError{Code: 1000}, "phx: connection closed with code 1000"},
		{&phx.ServerError{Topic: "room:a", Event: "phx_error", Payload: []byte(`{}`)}, "phx: channel room:a errored on the server: {}"},
	}
	for _, c := range cases {
		s, ok := c.v.(fmt.Stringer)
		if !ok {
			t.Errorf("%T is no Stringer", c.v)
			continue
		}
		if got := s.String(); got != c.want {
			t.Errorf("%T.String() = %q, want %q", c.v, got, c.want)
		}
		if strings.Contains(s.String(), "\n") {
			t.Errorf("%T: two lines", c.v)
		}
		if _, ok := c.v.(slog.LogValuer); !ok {
			t.Errorf("%T is no LogValuer", c.v)
		}
	}
	var b bytes.Buffer
	l := slog.New(slog.NewTextHandler(&b, nil))
	l.Info("x", "status", phx.Disconnected{Err: dialErr, Reconnect: true})
	if got := b.String(); !strings.Contains(got, "status.err.url=") || !strings.Contains(got, "token=REDACTED") || strings.Contains(got, "abc") || !strings.Contains(got, "status.cause=dial") {
		t.Fatalf("record %s", got)
	}
}
