package phxtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A long-poll POST batch "push, push, heartbeat, push" is answered with the
// pushes' replies before the heartbeat's, as recorded from Phoenix, or
// after it when Interleave swaps; the push after the heartbeat is not a
// choice. The batch is delivered on a WebSocket connection here, where
// its frames are easy to read: the session is the same.
func TestInterleaveBatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		il   Interleave
		want []string
	}{
		{InterleaveFixed, []string{"2", "3", "4", "5"}},
		{InterleaveSwapped, []string{"4", "2", "3", "5"}},
	} {
		cfg := DemoConfig()
		cfg.Interleave = c.il
		srv, err := Start("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		ws, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"?vsn=2.0.0&user=u", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Cleanup(func() { ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`["1","1","room:b","phx_join",{}]`)); err != nil {
			t.Fatal(err)
		}
		for range 3 { // reply, own diff, state
			if _, _, err := ws.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := srv.WaitJoined(ctx, "room:b")
		if err != nil {
			t.Fatal(err)
		}
		var batch []inFrame
		for _, s := range []string{
			`["1","2","room:b","echo",{}]`,
			`["1","3","room:b","echo",{}]`,
			`[null,"4","phoenix","heartbeat",{}]`,
			`["1","5","room:b","echo",{}]`,
		} {
			f, err := decodeText(vsn2, []byte(s))
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, f)
		}
		if err := conn.deliverBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range c.want {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			f, err := decodeText(vsn2, data)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, refText(f.ref))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("interleave %d: replies to %v, want %v", c.il, got, c.want)
		}
		if n, sw := conn.Interleavings(); n != 1 || (sw == 1) != (c.il == InterleaveSwapped) {
			t.Errorf("interleave %d: %d chosen, %d swapped", c.il, n, sw)
		}
	}
}
