package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// runMainEnv makes the test binary act as the phx command, so that terminal
// tests run the real main without building another binary.
const runMainEnv = "PHX_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

func TestServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		defer pw.Close()
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0"}, nil, pw, io.Discard)
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatal("no output")
	}
	first := lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	i := strings.Index(first, "ws://")
	if i < 0 {
		t.Fatalf("no URL in %q", first)
	}
	url := strings.Fields(first[i:])[0]
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url+"/websocket?vsn=2.0.0&user=me", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","1","echo:x","phx_join",{}]`))
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","2","echo:x","hi",{"a":1}]`))
	for _, want := range []string{
		`["1","1","echo:x","phx_reply",{"response":{},"status":"ok"}]`,
		`["1","2","echo:x","phx_reply",{"response":{"a":1},"status":"ok"}]`,
	} {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil || string(data) != want {
			t.Fatalf("got %s %v, want %s", data, err, want)
		}
	}
	ws.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if code := run(context.Background(), []string{"nope"}, nil, io.Discard, &out); code != 2 || !strings.Contains(out.String(), "unknown command") {
		t.Fatalf("code %d output %q", code, out.String())
	}
}
