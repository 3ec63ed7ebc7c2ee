//go:build go1.25

package phx

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/phxgo/phxgo/wire"
)

// FuzzSocketScript reads its input as a script of server frames (valid and
// invalid, current and stale join refs), client calls, connection faults and
// clock steps, played against a socket over the in-memory transport in a
// synctest bubble. Whatever happens: no panic, every push and join gets an
// outcome once the socket is closed, and every goroutine ends.
func FuzzSocketScript(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0, 0, 0, 3, 3, 9, 9, 9, 1, 2, 12, 12, 5, 6, 7})
	f.Add([]byte{0, 10, 14, 0, 11, 13, 15, 2, 2, 2, 8, 4, 4})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 200 {
			script = script[:200]
		}
		synctest.Test(t, func(t *testing.T) { playScript(t, script) })
	})
}

func playScript(t *testing.T, script []byte) {
	tr := newMemTransport()
	sock, err := Connect(context.Background(), "ws://fuzz/socket", &Config{
		Transport: tr, HeartbeatInterval: 500 * time.Millisecond, Timeout: time.Second, PushBuffer: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := <-tr.accept
	topics := []string{"room:a", "room:b"}
	chans := map[string]*Channel{}
	var outcomes []<-chan error
	joinRefs := map[string]string{} // last join_ref the server saw per topic
	lastRef := map[string]wire.Message{}
	drain := func() {
		for {
			select {
			case f := <-srv.c.toServer:
				m, err := wire.V2.DecodeClient(f.op, f.data)
				if err != nil {
					t.Fatalf("client sent garbage %q: %v", f.data, err)
				}
				if m.Event == wire.EventJoin {
					joinRefs[m.Topic] = m.JoinRef.String()
				}
				lastRef[m.Topic] = m
			default:
				return
			}
		}
	}
	for i, op := range script {
		topic := topics[i%2]
		synctest.Wait()
		select {
		case s := <-tr.accept:
			srv = s
		default:
		}
		drain()
		jr := joinRefs[topic]
		last := lastRef[topic]
		switch op % 16 {
		case 0: // join
			ch := sock.Channel(topic, map[string]int{"i": i})
			chans[topic] = ch
			outcomes = append(outcomes, async(func() error { _, err := ch.Join(context.Background()); return err }))
		case 1: // push
			if ch := chans[topic]; ch != nil {
				outcomes = append(outcomes, async(func() error { _, err := ch.Push(context.Background(), "e", nil); return err }))
			}
		case 2: // reply ok to the last frame of the topic
			if last.Topic != "" {
				srv.reply(t, last, "ok", `{"ok":true}`)
			}
		case 3: // reply error
			if last.Topic != "" {
				srv.reply(t, last, "error", `{"reason":"x"}`)
			}
		case 4: // broadcast
			srv.push(t, "", topic, "b", `{"n":1}`)
		case 5: // push with the current join ref
			srv.push(t, jr, topic, "p", `[1]`)
		case 6: // phx_error
			srv.push(t, jr, topic, wire.EventError, `{}`)
		case 7: // phx_close
			srv.push(t, jr, topic, wire.EventClose, `{}`)
		case 8: // stale frames
			srv.push(t, "999999", topic, wire.EventClose, `{}`)
			srv.send(t, wire.Message{JoinRef: wire.NewRef("1"), Ref: wire.NewRef("1"), Topic: topic, Event: wire.EventReply, Payload: []byte(`{"status":"ok","response":{}}`)})
		case 9: // time passes
			time.Sleep(time.Duration(op) * 10 * time.Millisecond)
		case 10: // garbage
			srv.sendRaw(wire.Text, []byte(fmt.Sprintf(`[null,%d,"x"`, op)))
		case 11: // binary garbage
			srv.sendRaw(wire.Binary, []byte{op, 255, 3})
		case 12: // server closes
			srv.closeWith([]int{1000, 1001, 1006, 1011}[int(op/16)%4])
		case 13: // leave
			if ch := chans[topic]; ch != nil {
				outcomes = append(outcomes, async(func() error { return ch.Leave(context.Background()) }))
			}
		case 14: // subscribe, read one if available
			if ch := chans[topic]; ch != nil {
				sub, err := ch.Subscribe(context.Background())
				if err != nil {
					break // a channel closed for good takes no subscription
				}
				select {
				case <-sub.C():
				default:
				}
				if op&1 == 0 {
					sub.Close()
				}
			}
		case 15: // reply to a heartbeat or anything else pending on phoenix
			if m, ok := lastRef[wire.TopicPhoenix]; ok {
				srv.reply(t, m, "ok", "{}")
			}
		}
	}
	sock.Close()
	synctest.Wait()
	for i, o := range outcomes {
		select {
		case <-o:
		default:
			t.Fatalf("call %d has no outcome after Close", i)
		}
	}
	for range sock.Status() {
	}
}
