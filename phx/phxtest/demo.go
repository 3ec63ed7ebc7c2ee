package phxtest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DemoConfig returns the configuration of the Phoenix application the
// transcripts in testdata/phoenix were recorded from, which `phx serve`
// also runs: DemoConnect, "room:*" → Room (chat with presence and the test
// events) and "echo:*" → Echo.
func DemoConfig() Config {
	return Config{
		Connect:  DemoConnect,
		Channels: map[string]Handler{"room:*": Room{}, "echo:*": Echo{}},
	}
}

var anonUsers atomic.Int64

// ErrBadToken is what DemoConnect refuses a token=bad connection with.
var ErrBadToken = errors.New("phxtest: bad token")

// DemoConnect refuses the parameter token=bad and otherwise identifies the
// socket by the parameter user (or a generated anon-N): assign "user_id",
// socket id "user_socket:<user>".
func DemoConnect(info ConnectInfo) (Socket, error) {
	if info.Params.Get("token") == "bad" {
		return Socket{}, ErrBadToken
	}
	user := info.Params.Get("user")
	if user == "" {
		user = "anon-" + strconv.FormatInt(anonUsers.Add(1), 10)
	}
	return Socket{ID: "user_socket:" + user, Assigns: map[string]any{"user_id": user}}, nil
}

// Room is the recorded application's "room:*" channel.
//
// Join room:secret is refused with {"reason":"unauthorized"}; any other
// room answers {"joined": topic, "params": payload} and then tracks the
// user's presence with {"online_at", "device"} and pushes presence_state.
// Events: echo (replies the payload; binary in, binary out), error (error
// reply {"reason":"nope"}), noreply, new_msg (broadcast, then ok),
// broadcast_from (to everyone else, then ok), crash, stop, slow {"ms":N}
// (replies {"slept_ms":N} N ms later from another goroutine), update_meta
// (merges the payload into the presence meta), binary (binary reply and a
// binary push of the same bytes), blast {"n":N,"size":S} (reply, then N
// pushes {"i":i,"data":"x"*S}). Any other event crashes the channel.
type Room struct{}

type afterJoin struct{ device any }
type blast struct{ n, size int }

func userID(ch *Channel) string {
	s, _ := ch.Assigns["user_id"].(string)
	return s
}

// Join implements Handler.
func (Room) Join(_ context.Context, ch *Channel, payload json.RawMessage) (any, error) {
	if ch.Topic() == "room:secret" {
		return nil, Refuse(map[string]any{"reason": "unauthorized"})
	}
	var params map[string]any
	var device any
	if json.Unmarshal(payload, &params) == nil {
		device = params["device"]
	}
	if err := ch.Send(afterJoin{device: device}); err != nil {
		return nil, err
	}
	return map[string]any{"joined": ch.Topic(), "params": Canonical(payload)}, nil
}

// HandleIn implements Handler.
func (Room) HandleIn(_ context.Context, ch *Channel, in Inbound) Result {
	switch in.Event {
	case "echo":
		if in.Binary {
			return ReplyBinary("ok", in.Payload)
		}
		return Reply("ok", Canonical(in.Payload))
	case "error":
		return Reply("error", map[string]any{"reason": "nope"})
	case "noreply":
		return NoReply()
	case "new_msg":
		if ch.Broadcast("new_msg", Canonical(in.Payload)) != nil {
			return Crash()
		}
		return Reply("ok", nil)
	case "broadcast_from":
		if ch.BroadcastFrom("broadcast_from", Canonical(in.Payload)) != nil {
			return Crash()
		}
		return Reply("ok", nil)
	case "crash":
		return Crash()
	case "stop":
		return Stop()
	case "slow":
		var p struct{ Ms json.Number }
		if json.Unmarshal(in.Payload, &p) != nil {
			return Crash()
		}
		ms, err := p.Ms.Int64()
		if err != nil {
			return Crash()
		}
		ref := in.ReplyRef()
		ch.Go(func(ctx context.Context) {
			t := time.NewTimer(time.Duration(ms) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
				_ = ref.Reply("ok", map[string]any{"slept_ms": p.Ms})
			case <-ctx.Done():
			}
		})
		return NoReply()
	case "update_meta":
		var extra map[string]any
		if json.Unmarshal(in.Payload, &extra) != nil {
			return Crash()
		}
		meta := ch.Meta(userID(ch))
		if meta == nil {
			return Crash()
		}
		delete(meta, "phx_ref")
		delete(meta, "phx_ref_prev")
		for k, v := range extra {
			meta[k] = v
		}
		if ch.Update(userID(ch), meta) != nil {
			return Crash()
		}
		return Reply("ok", nil)
	case "binary":
		if !in.Binary {
			return Reply("error", map[string]any{"reason": "expected binary payload"})
		}
		if ch.Send(binaryPush(in.Payload)) != nil {
			return Crash()
		}
		return ReplyBinary("ok", in.Payload)
	case "blast":
		var p struct{ N, Size int }
		if json.Unmarshal(in.Payload, &p) != nil {
			return Crash()
		}
		if ch.Send(blast{n: p.N, size: p.Size}) != nil {
			return Crash()
		}
		return Reply("ok", map[string]any{"n": p.N, "size": p.Size})
	}
	return Crash()
}

type binaryPush []byte

// HandleInfo implements Handler.
func (Room) HandleInfo(_ context.Context, ch *Channel, msg any) Result {
	switch m := msg.(type) {
	case afterJoin:
		meta := map[string]any{"online_at": strconv.FormatInt(time.Now().Unix(), 10), "device": m.device}
		if ch.Track(userID(ch), meta) != nil || ch.Push("presence_state", ch.Presence()) != nil {
			return Crash()
		}
	case blast:
		data := strings.Repeat("x", m.size)
		for i := 1; i <= m.n; i++ {
			if ch.Push("blast", map[string]any{"i": i, "data": data}) != nil {
				return Crash()
			}
		}
	case binaryPush:
		if ch.PushBinary("binary", m) != nil {
			return Crash()
		}
	}
	return NoReply()
}

// Terminate implements Handler.
func (Room) Terminate(*Channel, Reason) {}

// Echo is a channel that accepts every join and answers every push with
// an ok reply carrying the push's payload (binary in, binary out).
type Echo struct{}

// Join implements Handler.
func (Echo) Join(context.Context, *Channel, json.RawMessage) (any, error) { return nil, nil }

// HandleIn implements Handler.
func (Echo) HandleIn(_ context.Context, _ *Channel, in Inbound) Result {
	if in.Binary {
		return ReplyBinary("ok", in.Payload)
	}
	return Reply("ok", Canonical(in.Payload))
}

// HandleInfo implements Handler.
func (Echo) HandleInfo(context.Context, *Channel, any) Result { return NoReply() }

// Terminate implements Handler.
func (Echo) Terminate(*Channel, Reason) {}
