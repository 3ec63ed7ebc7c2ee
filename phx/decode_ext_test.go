package phx_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/phx"
)

type blastBody struct {
	I    int    `json:"i"`
	Data string `json:"data"`
}

// benchReceiveTyped receives b.N 100-byte broadcasts through SubscribeAs,
// or, with viaJSON, through a plain subscription decoded by encoding/json:
// the typed path's end-to-end gain from the fast decoder.
func benchReceiveTyped(b *testing.B, viaJSON bool) {
	size := 100 - len(`{"i":1,"data":""}`)
	url := blaster(b, size)
	ctx := context.Background()
	sock, err := phx.Connect(ctx, url, &phx.Config{HeartbeatInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("room:blast", nil)
	sub, err := phx.SubscribeAs[blastBody](ctx, ch, phx.WithBuffer(4096), phx.WithOverflow(phx.Block), phx.Events("blast"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ch.Join(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := ch.Push(ctx, "blast", map[string]int{"n": b.N}); err != nil {
		b.Fatal(err)
	}
	want := strings.Repeat("x", size)
	for i := 0; i < b.N; i++ {
		var v blastBody
		if viaJSON {
			m, err := sub.Subscription.Next(ctx)
			if err == nil {
				err = json.Unmarshal(m.Payload, &v)
			}
			if err != nil {
				b.Fatal(err)
			}
		} else {
			t, err := sub.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			v = t.Value
		}
		if v.I != 1 || v.Data != want {
			b.Fatalf("decoded %+v", v)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkReceive100BTyped(b *testing.B)        { benchReceiveTyped(b, false) }
func BenchmarkReceive100BTypedViaJSON(b *testing.B) { benchReceiveTyped(b, true) }
