package presence_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/presence"
)

// BenchmarkTrackerDiff10k sends one presence_diff at a time from phxtest
// over loopback to a client whose state has 10,000 keys and waits for it to
// come out: through a Tracker (fold, then a Join or Leave and a Sync on its
// stream), next to the floor of a plain subscription receiving the same
// message on the same kind of socket.
func BenchmarkTrackerDiff10k(b *testing.B) {
	b.Run("floor=Subscription", func(b *testing.B) {
		ch, conn := benchChannel(b)
		sub, err := ch.Subscribe(context.Background(), phx.WithOverflow(phx.Block), phx.Events("presence_diff"))
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		benchDiffs(b, conn, func() {
			if _, ok := <-sub.C(); !ok {
				b.Fatal(sub.Err())
			}
		})
	})
	b.Run("Tracker", func(b *testing.B) {
		ch, conn := benchChannel(b)
		tr := presence.Track(context.Background(), ch, nil)
		defer tr.Close()
		waitSync := func() {
			for ev := range tr.Events() {
				if _, ok := ev.(presence.Sync); ok {
					return
				}
			}
			b.Fatal(tr.Err())
		}
		if err := conn.Push("bench", "presence_state", statePayload(benchKeys)); err != nil {
			b.Fatal(err)
		}
		waitSync()
		benchDiffs(b, conn, waitSync)
	})
}

// benchChannel returns a client channel on a fresh phxtest server and the
// server's side of its connection. The channel joins when first used by
// benchDiffs, after the caller has subscribed.
func benchChannel(b *testing.B) (*phx.Channel, *joinLater) {
	srv := phxtest.NewServer(b, phxtest.Config{Channels: map[string]phxtest.Handler{"bench": phxtest.HandlerFuncs{}}})
	s, err := phx.Connect(context.Background(), srv.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ch := s.Channel("bench", nil)
	return ch, &joinLater{b: b, srv: srv, ch: ch}
}

// joinLater joins on the first push, so that a tracker or subscription made
// after benchChannel sees everything.
type joinLater struct {
	b    *testing.B
	srv  *phxtest.Server
	ch   *phx.Channel
	conn *phxtest.Conn
}

func (j *joinLater) Push(topic, event string, payload json.RawMessage) error {
	if j.conn == nil {
		ctx := context.Background()
		if _, err := j.ch.Join(ctx); err != nil {
			j.b.Fatal(err)
		}
		conn, err := j.srv.WaitJoined(ctx, topic)
		if err != nil {
			j.b.Fatal(err)
		}
		j.conn = conn
	}
	return j.conn.Push(topic, event, payload)
}

func benchDiffs(b *testing.B, conn *joinLater, wait func()) {
	leave, join := diffPayloads()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := leave
		if i%2 == 1 {
			p = join
		}
		i++
		if err := conn.Push("bench", "presence_diff", p); err != nil {
			b.Fatal(err)
		}
		wait()
	}
}
