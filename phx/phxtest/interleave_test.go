package phxtest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// updateOrders pushes update_meta n times on a fresh connection of srv and
// returns, for each, "diff" or "reply": whichever of the two frames the
// pushing socket got first. The other socket on the topic gets every diff.
func updateOrders(t *testing.T, srv *phxtest.Server, n int) []string {
	t.Helper()
	obs := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=obs")
	obs.join("room:il", "1")
	c := dial(t, srv.WebSocketURL()+"?vsn=2.0.0&user=u")
	c.join("room:il", "1")
	if g := obs.next(); !strings.Contains(g, `"presence_diff"`) {
		t.Fatalf("observer: %s", g)
	}
	var out []string
	for i := range n {
		ref := fmt.Sprint(i + 2)
		c.send(`["1","` + ref + `","room:il","update_meta",{"i":` + ref + `}]`)
		reply := `text ["1","` + ref + `","room:il","phx_reply",{"response":{},"status":"ok"}]`
		first, second := c.next(), c.next()
		isDiff := func(g string) bool {
			return strings.HasPrefix(g, `text [null,null,"room:il","presence_diff",`) && strings.Contains(g, `"i":`+ref+`,`)
		}
		switch {
		case first == reply && isDiff(second):
			out = append(out, "reply")
		case isDiff(first) && second == reply:
			out = append(out, "diff")
		default:
			t.Fatalf("update %d: got\n%s\n%s", i, first, second)
		}
		if g := obs.next(); !isDiff(g) {
			t.Fatalf("observer, update %d: %s", i, g)
		}
	}
	return out
}

// Phoenix's tracker broadcasts the diff of an update_meta while the channel
// replies, so a client may see either first: Interleave gives each order
// on demand, and a seed gives both, reproducibly.
func TestInterleaveUpdateMeta(t *testing.T) {
	t.Parallel()
	orders := func(il phxtest.Interleave, seed uint64) (string, *phxtest.Server) {
		srv := demo(t, func(c *phxtest.Config) { c.Interleave, c.InterleaveSeed = il, seed })
		return strings.Join(updateOrders(t, srv, 12), ","), srv
	}
	if got, _ := orders(phxtest.InterleaveFixed, 0); got != strings.Repeat("diff,", 11)+"diff" {
		t.Errorf("fixed: %s", got)
	}
	got, srv := orders(phxtest.InterleaveSwapped, 0)
	if got != strings.Repeat("reply,", 11)+"reply" {
		t.Errorf("swapped: %s", got)
	}
	// Only the pushing channel's own updates are choices.
	if cs := srv.Conns(); len(cs) != 2 {
		t.Fatalf("%d connections", len(cs))
	} else if n, sw := cs[1].Interleavings(); n != 12 || sw != 12 {
		t.Errorf("pusher: %d chosen, %d swapped", n, sw)
	} else if n, _ := cs[0].Interleavings(); n != 0 {
		t.Errorf("observer: %d chosen", n)
	}
	a, _ := orders(phxtest.InterleaveSeeded, 7)
	b, _ := orders(phxtest.InterleaveSeeded, 7)
	if a != b {
		t.Errorf("seed 7 gave %s, then %s", a, b)
	}
	if !strings.Contains(a, "diff") || !strings.Contains(a, "reply") {
		t.Errorf("seed 7 gave one order only: %s", a)
	}
}

func TestInterleaveFromEnvironment(t *testing.T) {
	// t.Setenv forbids t.Parallel: the server reads the variable in New.
	for _, c := range []struct {
		env  string
		want string
	}{
		{"", "diff"},
		{"fixed", "diff"},
		{"swapped", "reply"},
	} {
		t.Setenv("PHXTEST_INTERLEAVE", c.env)
		if got := updateOrders(t, demo(t, nil), 1); got[0] != c.want {
			t.Errorf("PHXTEST_INTERLEAVE=%q: %s first, want %s", c.env, got[0], c.want)
		}
	}
	t.Setenv("PHXTEST_INTERLEAVE", "7")
	a := updateOrders(t, demo(t, nil), 12)
	explicit := updateOrders(t, demo(t, func(c *phxtest.Config) { c.Interleave, c.InterleaveSeed = phxtest.InterleaveSeeded, 7 }), 12)
	if fmt.Sprint(a) != fmt.Sprint(explicit) {
		t.Errorf("PHXTEST_INTERLEAVE=7 gave %v, the seed 7 %v", a, explicit)
	}
}
