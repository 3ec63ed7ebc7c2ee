package expvarphx_test

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/expvarphx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExpvar(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	obs := expvarphx.NewObserver("phx_test_events")
	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{Observer: obs, HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	expvarphx.Publish("phx_test_stats", sock)
	ch := sock.Channel("room:x", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = ch.Push(ctx, "echo", nil)
	_, _ = ch.Push(ctx, "error", nil)
	if _, err := ch.Push(ctx, "noreply", nil, phx.WithTimeout(10*time.Millisecond)); !errors.Is(err, phx.ErrTimeout) {
		t.Fatal(err)
	}
	var events map[string]int64
	if err := json.Unmarshal([]byte(expvar.Get("phx_test_events").String()), &events); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"status.connected": 1, "status.joined": 1, "join.ok": 1, "push.ok": 1, "push.error": 1, "push.timeout": 1}
	for k, v := range want {
		if events[k] != v {
			t.Errorf("%s = %d, want %d (%v)", k, events[k], v, events)
		}
	}
	var stats struct {
		PushesSent  uint64 `json:"pushes_sent"`
		Channels    int64  `json:"channels"`
		PushLatency struct {
			Bounds []float64 `json:"bounds_s"`
			Counts []uint64  `json:"counts"`
			Count  uint64    `json:"count"`
		} `json:"push_latency"`
		ReconnectsBy map[string]uint64 `json:"reconnects_by"`
	}
	if err := json.Unmarshal([]byte(expvar.Get("phx_test_stats").String()), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.PushesSent != 3 || stats.Channels != 1 || stats.PushLatency.Count != 2 ||
		len(stats.PushLatency.Bounds) != phx.NumBuckets-1 || len(stats.PushLatency.Counts) != phx.NumBuckets ||
		len(stats.ReconnectsBy) != int(phx.NumCauses) {
		t.Fatalf("stats %+v", stats)
	}
}
