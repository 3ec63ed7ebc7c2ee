package presence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/presence"
)

// A Machine fed with a channel's presence messages, as a real Phoenix server
// sends them: the diff of our own join arrives before the state and waits
// for it.
func ExampleMachine() {
	m := presence.NewMachine(presence.Options{})
	msgs := []presence.Input{
		{Event: "presence_diff", JoinRef: "1", Payload: json.RawMessage(
			`{"joins":{"me":{"metas":[{"phx_ref":"a","device":"laptop"}]}},"leaves":{}}`)},
		{Event: "presence_state", JoinRef: "1", Payload: json.RawMessage(
			`{"me":{"metas":[{"phx_ref":"a","device":"laptop"}]},"ana":{"metas":[{"phx_ref":"b","device":"phone"}]}}`)},
		{Event: "presence_diff", JoinRef: "1", Payload: json.RawMessage(
			`{"joins":{},"leaves":{"ana":{"metas":[{"phx_ref":"b","device":"phone"}]}}}`)},
	}
	for _, in := range msgs {
		evs, err := m.Apply(in)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, ev := range evs {
			switch ev := ev.(type) {
			case presence.Join:
				fmt.Printf("join %s (first device: %v)\n", ev.Key, ev.Current == nil)
			case presence.Leave:
				fmt.Printf("leave %s (gone: %v)\n", ev.Key, len(ev.Current.Metas) == 0)
			case presence.Sync:
				fmt.Printf("sync: %d present\n", ev.Len)
			}
		}
	}
	for _, kp := range m.List() {
		fmt.Println(kp.Key, kp.Presence.Refs())
	}
	// Output:
	// join me (first device: true)
	// join ana (first device: true)
	// join me (first device: false)
	// sync: 2 present
	// leave ana (gone: true)
	// sync: 1 present
	// me [a]
}

// The pure fold: SyncDiff returns a new state and the changes, with the
// arguments phoenix.js passes to onJoin and onLeave; the old state is
// untouched.
func ExampleSyncDiff() {
	state, _ := presence.DecodeState(json.RawMessage(`{"u1":{"metas":[{"phx_ref":"1"}]}}`))
	diff, _ := presence.DecodeDiff(json.RawMessage(
		`{"joins":{"u1":{"metas":[{"phx_ref":"2"}]},"u2":{"metas":[{"phx_ref":"3"}]}},"leaves":{"u1":{"metas":[{"phx_ref":"1"}]}}}`))
	next, events := presence.SyncDiff(state, diff)
	for _, ev := range events {
		switch ev := ev.(type) {
		case presence.Join:
			var cur []string
			if ev.Current != nil {
				cur = ev.Current.Refs()
			}
			fmt.Println("join", ev.Key, cur, ev.New.Refs())
		case presence.Leave:
			fmt.Println("leave", ev.Key, ev.Current.Refs(), ev.Left.Refs())
		}
	}
	list := func(s presence.State) []string {
		return presence.List(s, func(key string, p presence.Presence) string { return fmt.Sprint(key, p.Refs()) })
	}
	fmt.Println(list(state), list(next))
	// Output:
	// join u1 [1] [2]
	// join u2 [] [3]
	// leave u1 [2] [1]
	// [u1[1]] [u1[2] u2[3]]
}

// With Options.Updates, a Presence.update on the server (the new meta joins
// with phx_ref_prev naming the old one, which leaves) is one Update, and
// typed metas come out of MetasAs.
func ExampleOptions_updates() {
	type meta struct {
		Device string `json:"device"`
		Status string `json:"status"`
	}
	m := presence.NewMachine(presence.Options{Updates: true})
	_, _ = m.Apply(presence.Input{Event: "presence_state", JoinRef: "1", Payload: json.RawMessage(
		`{"u2":{"metas":[{"phx_ref":"A","device":"phone"}]}}`)})
	evs, _ := m.Apply(presence.Input{Event: "presence_diff", JoinRef: "1", Payload: json.RawMessage(
		`{"joins":{"u2":{"metas":[{"phx_ref":"B","phx_ref_prev":"A","device":"phone","status":"away"}]}},
		  "leaves":{"u2":{"metas":[{"phx_ref":"A","device":"phone"}]}}}`)})
	for _, ev := range evs {
		if u, ok := ev.(presence.Update); ok {
			old, _ := presence.DecodeMeta[meta](u.Old)
			cur, _ := presence.MetasAs[meta](u.Current)
			fmt.Printf("update %s: %s>%s, %+v -> %+v\n", u.Key, u.Old.Ref, u.New.Ref, old, cur)
		}
	}
	// Output:
	// update u2: A>B, {Device:phone Status:} -> [{Device:phone Status:away}]
}

// A Tracker follows who is in a room: subscribed before the join, it folds
// the channel's presence_state and presence_diff and streams the changes,
// and List is a snapshot at any time. Here against phxtest's demo room,
// which tracks each user with the device given in the join params.
func ExampleTrack() {
	srv, err := phxtest.Start("127.0.0.1:0", phxtest.DemoConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connect := func(user, device string) (*phx.Socket, *phx.Channel) {
		sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{Params: url.Values{"user": {user}}})
		if err != nil {
			panic(err)
		}
		return sock, sock.Channel("room:lobby", map[string]any{"device": device})
	}

	ann, lobby := connect("ann", "laptop")
	defer ann.Close()
	p := presence.Track(ctx, lobby, nil) // before Join: nothing is missed
	defer p.Close()
	if _, err := lobby.Join(ctx); err != nil {
		fmt.Println(err)
		return
	}
	var bob *phx.Socket
	syncs := 0
	for ev := range p.Events() {
		switch ev := ev.(type) {
		case presence.Join:
			if ev.Current == nil { // the key's first meta: someone arrived
				fmt.Println("online:", ev.Key)
			}
		case presence.Leave:
			if len(ev.Current.Metas) == 0 { // its last meta: gone
				fmt.Println("offline:", ev.Key)
			}
		case presence.Sync:
			syncs++
			fmt.Println("present:", ev.Len)
			switch syncs {
			case 1: // the room's state has come: now bob arrives
				var bobLobby *phx.Channel
				bob, bobLobby = connect("bob", "phone")
				defer bob.Close()
				if _, err := bobLobby.Join(ctx); err != nil {
					fmt.Println(err)
					return
				}
			case 2:
				_ = bob.Close()
			}
		}
		if syncs == 3 {
			break
		}
	}
	for _, kp := range p.List() {
		var m struct{ Device string }
		_ = kp.Presence.Metas[0].Decode(&m)
		fmt.Println(kp.Key, m.Device)
	}
	// Output:
	// online: ann
	// present: 1
	// online: bob
	// present: 2
	// offline: bob
	// present: 1
	// ann laptop
}
