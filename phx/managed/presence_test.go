package managed_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/managed"
)

func keys(ps []managed.Presence) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

// The presence of a topic: state, diffs, joins and leaves, the last of
// each, and the user and entry a server's fetch/2 adds.
func TestPresence(t *testing.T) {
	t.Parallel()
	srv := demo(t)
	ann := newClient(t, srv, nil)
	ctx := ctxFor(t)
	if _, err := ann.Join(ctx, "room:p"); err != nil {
		t.Fatal(err)
	}
	nextWhere(t, ann, func(e managed.PresenceState) bool { return len(e.List) == 1 && e.List[0].Key == "ann" })

	bobc := newClient(t, srv, &managed.Config{Socket: phx.Config{Params: url.Values{"user": {"bob"}}}})
	if _, err := bobc.Join(ctx, "room:p"); err != nil {
		t.Fatal(err)
	}
	if j := nextWhere(t, ann, func(e managed.PresenceJoin) bool { return e.Presence.Key == "bob" }); len(j.Presence.Metas) != 1 {
		t.Fatalf("join %+v", j)
	}
	if err := bobc.Leave(ctx, "room:p"); err != nil {
		t.Fatal(err)
	}
	l := nextWhere(t, ann, func(e managed.PresenceLeave) bool { return e.Presence.Key == "bob" })
	if l.Topic != "room:p" {
		t.Fatalf("leave %+v", l)
	}
	info, err := ann.Presence(ctx, "room:p")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(info.List); strings.Join(got, ",") != "ann" {
		t.Fatalf("list %v", got)
	}
	// ann's own join comes in the state and in the diff of its Track, and
	// each is a join, as phoenix.js reports them.
	if got := keys(info.Joins); strings.Join(got, ",") != "ann,ann,bob" {
		t.Fatalf("joins %v", got)
	}
	if got := keys(info.Leaves); strings.Join(got, ",") != "bob" {
		t.Fatalf("leaves %v", got)
	}
	if info.LastJoin == nil || info.LastJoin.Key != "bob" || info.LastLeave == nil || info.LastLeave.Key != "bob" {
		t.Fatalf("last join %+v, last leave %+v", info.LastJoin, info.LastLeave)
	}
	if len(info.Diffs) < 2 {
		t.Fatalf("diffs %+v", info.Diffs)
	}

	// A server whose fetch/2 adds a user to each entry.
	conn, err := srv.WaitJoined(ctx, "room:p")
	if err != nil {
		t.Fatal(err)
	}
	state := json.RawMessage(`{"zed":{"metas":[{"phx_ref":"z1"}],"user":{"name":"Zed"}}}`)
	if err := conn.Push("room:p", "presence_state", state); err != nil {
		t.Fatal(err)
	}
	j := nextWhere(t, ann, func(e managed.PresenceJoin) bool { return e.Presence.Key == "zed" })
	if string(j.Presence.User) != `{"name":"Zed"}` || string(j.Presence.Entry) != `{"metas":[{"phx_ref":"z1"}],"user":{"name":"Zed"}}` {
		t.Fatalf("zed %+v (entry %s)", j.Presence, j.Presence.Entry)
	}
	st := next[managed.PresenceState](t, ann)
	if got := keys(st.List); strings.Join(got, ",") != "zed" || string(st.List[0].User) != `{"name":"Zed"}` {
		t.Fatalf("state %+v", st)
	}
}
