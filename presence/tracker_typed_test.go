package presence_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/presence"
)

func TestTrackAs(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	s := dial(t, ctx, srv, "observer", phx.Config{})
	ch := s.Channel(room, map[string]any{"device": "monitor"})
	tr := presence.TrackAs[deviceMeta](ctx, ch, &presence.TrackOptions{Options: presence.Options{Updates: true}})
	defer tr.Close()
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	// The demo room pushes its state after the join reply: let it come
	// before anyone else joins, so that the order of events is known.
	for ev := range tr.Events() {
		if _, ok := ev.(presence.Sync); ok {
			break
		}
	}
	_, u1 := join(t, ctx, srv, "u1", "laptop")
	if _, err := u1.Push(ctx, "update_meta", map[string]any{"status": "away"}); err != nil {
		t.Fatal(err)
	}
	// A meta whose device is a number does not decode into deviceMeta.
	if _, err := u1.Push(ctx, "update_meta", map[string]any{"device": 7}); err != nil {
		t.Fatal(err)
	}
	var got []string
	var metaErrs int
	for ev, err := range tr.All(ctx) {
		var me *presence.MetaError
		if errors.As(err, &me) {
			metaErrs++
			break // the last change
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Event.(type) {
		case presence.Join:
			got = append(got, "join "+ev.Key+" "+ev.New[0].Device)
		case presence.Update:
			got = append(got, "update "+ev.Key+" "+ev.Left[0].Device+">"+ev.New[0].Device+"/"+ev.New[0].Status)
		}
	}
	want := "join u1 laptop,update u1 laptop>laptop/away"
	if s := strings.Join(got, ","); s != want || metaErrs != 1 {
		t.Errorf("events %s (%d meta errors), want %s (1)", s, metaErrs, want)
	}
	list, err := tr.List()
	var me *presence.MetaError
	if !errors.As(err, &me) || len(list) != 1 || list[0].Key != "observer" || list[0].Metas[0].Device != "monitor" {
		t.Errorf("List: %+v, %v", list, err)
	}
}

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	st, err := presence.DecodeState(json.RawMessage(`{"a":{"metas":[{"phx_ref":"1","device":"x"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, evs := presence.SyncState(presence.State{}, st)
	te, err := presence.DecodeEvent[deviceMeta](evs[0])
	if err != nil || te.Key != "a" || len(te.New) != 1 || te.New[0].Device != "x" || te.Left != nil {
		t.Errorf("%+v %v", te, err)
	}
	te, err = presence.DecodeEvent[deviceMeta](presence.Sync{Len: 1})
	if err != nil || te.Key != "" || te.New != nil {
		t.Errorf("sync: %+v %v", te, err)
	}
	if _, err := presence.DecodeEvent[int](evs[0]); !errors.As(err, new(*presence.MetaError)) {
		t.Errorf("int metas: %v", err)
	}
}
