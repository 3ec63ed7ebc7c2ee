package presence_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/phxgo/phxgo/presence"
)

var (
	diffEvents = flag.Int("presence.events", 10000, "messages in the differential test against the JavaScript Presence")
	diffSeed   = flag.Uint64("presence.seed", 0, "seed of the differential test (0: from the clock)")
)

// jsResult is what testdata/js/presence_diff.mjs prints after each message,
// and what the Go side is turned into for the comparison.
type jsResult struct {
	Events  []any `json:"events"`
	State   []any `json:"state"`
	Pending int   `json:"pending"`
}

// TestDifferentialJS feeds the same random message sequences to a Machine
// and to the official JavaScript Presence (npm phoenix, in node, one process
// for the whole run) and requires, after every message, the same list of
// keys and presences in the same order, the same onJoin / onLeave / onSync
// calls with the same arguments in the same order, and the same number of
// diffs waiting for a state.
func TestDifferentialJS(t *testing.T) {
	t.Parallel()
	node := jsNode(t, "../testdata/js")
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d messages (rerun with -presence.seed=%d)", seed, *diffEvents, seed)

	// One generator per segment, so runs start from an empty Presence now
	// and then; segment i uses seed+i.
	const segment = 500
	var (
		in   bytes.Buffer
		msgs []genMsg // nil entries mark a reset
	)
	enc := json.NewEncoder(&in)
	var g *gen
	for i := 0; i < *diffEvents; i++ {
		if i%segment == 0 {
			g = newGen(seed+uint64(i/segment), false)
			if i > 0 {
				_ = enc.Encode(map[string]any{"op": "reset"})
				msgs = append(msgs, genMsg{})
			}
		}
		m := g.next()
		var jr any
		if m.JoinRef != "" {
			jr = m.JoinRef
		}
		_ = enc.Encode(map[string]any{"op": "msg", "event": m.Event, "joinRef": jr, "raw": m.Raw})
		msgs = append(msgs, m)
	}

	// Generous: node needs about 0.15 s per 1,000 messages on an idle
	// machine, and CI machines are not idle.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(*diffEvents)*10*time.Millisecond)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "testdata", "js", "presence_diff.mjs"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node presence_diff.mjs: %v\n%s", err, stderr.String())
	}
	jsTime := time.Since(start)

	start = time.Now()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	// m follows phoenix.js exactly; def (the default Options) must agree with
	// it until it drops its first stale diff in a segment.
	jsOpts := presence.Options{KeepStaleDiffs: true}
	m, def := presence.NewMachine(jsOpts), presence.NewMachine(presence.Options{})
	fast, defAgreed, staleSegments := 0, 0, 0
	r := &renderer{jsCanon: true}
	for i, msg := range msgs {
		if !sc.Scan() {
			t.Fatalf("message %d: node printed only %d lines", i, i)
		}
		var evs []presence.Event
		if msg.Event == "" {
			if def.Stale() > 0 {
				staleSegments++
			}
			m, def = presence.NewMachine(jsOpts), presence.NewMachine(presence.Options{})
		} else {
			in := presence.Input{Event: msg.Event, Payload: json.RawMessage(msg.Raw), JoinRef: msg.JoinRef}
			evs, err = m.Apply(in)
			if err != nil {
				t.Fatalf("message %d: %v\n%s", i, err, msg.Raw)
			}
			defEvs, err := def.Apply(in)
			if err != nil {
				t.Fatalf("message %d: %v\n%s", i, err, msg.Raw)
			}
			if def.Stale() == 0 {
				if a, b := r.render(m, evs), r.render(def, defEvs); !bytes.Equal(a, b) {
					t.Fatalf("message %d: default options differ from phoenix.js before any stale diff\n%s\n%s", i, b, a)
				}
				defAgreed++
			}
		}
		// The Go side, rewritten as JSON.stringify prints, should match
		// node byte for byte; if not, the lines still agree when they are
		// the same JSON values (a case jsCanon does not cover).
		line := r.render(m, evs)
		if bytes.Equal(line, sc.Bytes()) {
			fast++
			continue
		}
		var want jsResult
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatalf("message %d: node line: %v", i, err)
		}
		got := goResult(t, m, evs)
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			t.Fatalf("message %d (seed %d) differs from the JavaScript Presence\nevent %s join_ref %q payload %s\nGo: %s\nJS: %s",
				i, seed, msg.Event, msg.JoinRef, msg.Raw, gb, sc.Bytes())
		}
	}
	if def.Stale() > 0 {
		staleSegments++
	}
	t.Logf("%d messages agree (%d byte for byte, %d also with the default options; %d of %d segments dropped stale diffs); node %v, Go fold and comparison %v",
		len(msgs), fast, defAgreed, staleSegments, (*diffEvents+segment-1)/segment, jsTime, time.Since(start))
}

// renderer writes a Machine's events and state in the node script's layout.
// With jsCanon set it also rewrites every value as JSON.stringify prints it,
// memoised because the same presences are printed again on every line while
// they stay in the state. A renderer belongs to one goroutine.
type renderer struct {
	jsCanon bool
	memo    map[string][]byte
}

func (r *renderer) render(m *presence.Machine, evs []presence.Event) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		switch ev := ev.(type) {
		case presence.Join:
			b.WriteString(`["join",`)
			r.writeJSON(&b, ev.Key)
			b.WriteByte(',')
			if ev.Current == nil {
				b.WriteString("null")
			} else {
				r.writeJSON(&b, *ev.Current)
			}
			b.WriteByte(',')
			r.writeJSON(&b, ev.New)
			b.WriteByte(']')
		case presence.Leave:
			b.WriteString(`["leave",`)
			r.writeJSON(&b, ev.Key)
			b.WriteByte(',')
			r.writeJSON(&b, ev.Current)
			b.WriteByte(',')
			r.writeJSON(&b, ev.Left)
			b.WriteByte(']')
		case presence.Sync:
			b.WriteString(`["sync"]`)
		default:
			b.WriteString(`"unexpected"`)
		}
	}
	b.WriteString(`],"state":[`)
	for i, kp := range m.List() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		r.writeJSON(&b, kp.Key)
		b.WriteByte(',')
		r.writeJSON(&b, kp.Presence)
		b.WriteByte(']')
	}
	b.WriteString(`],"pending":`)
	b.WriteString(strconv.Itoa(m.Pending()))
	b.WriteByte('}')
	return b.Bytes()
}

func (r *renderer) writeJSON(b *bytes.Buffer, v any) {
	var raw []byte
	switch v := v.(type) {
	case string:
		jsString(b, v)
		return
	case presence.Presence:
		raw, _ = v.MarshalJSON()
	default:
		raw, _ = json.Marshal(v)
	}
	if !r.jsCanon {
		b.Write(raw)
		return
	}
	c, ok := r.memo[string(raw)]
	if !ok {
		var err error
		if c, err = jsCanon(raw); err != nil {
			c = raw
		}
		if r.memo == nil {
			r.memo = map[string][]byte{}
		}
		r.memo[string(raw)] = c
	}
	b.Write(c)
}

// goResult renders the Machine's events and state the way the node script
// does, through JSON, so that both sides compare as the same Go values.
func goResult(t *testing.T, m *presence.Machine, evs []presence.Event) jsResult {
	t.Helper()
	type row = []any
	var r struct {
		Events  []row `json:"events"`
		State   []row `json:"state"`
		Pending int   `json:"pending"`
	}
	r.Events = []row{}
	for _, ev := range evs {
		switch ev := ev.(type) {
		case presence.Join:
			var cur any
			if ev.Current != nil {
				cur = *ev.Current
			}
			r.Events = append(r.Events, row{"join", ev.Key, cur, ev.New})
		case presence.Leave:
			r.Events = append(r.Events, row{"leave", ev.Key, ev.Current, ev.Left})
		case presence.Sync:
			r.Events = append(r.Events, row{"sync"})
		default:
			t.Fatalf("unexpected event %T", ev)
		}
	}
	r.State = []row{}
	for _, kp := range m.List() {
		r.State = append(r.State, row{kp.Key, kp.Presence})
	}
	r.Pending = m.Pending()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out jsResult
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return out
}

// jsNode returns node for a test that runs the pinned Phoenix JavaScript
// client of testdata/js. Without node or the installed client (`make js`)
// the test is skipped, unless CI is set: there it must run.
func jsNode(t *testing.T, jsDir string) string {
	t.Helper()
	miss := func(what string) string {
		msg := what + "; run `make js` (needs node and npm) to run this test"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: JavaScript tests must run)")
		}
		t.Skip(msg)
		return ""
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return miss("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "phoenix", "package.json")); err != nil {
		return miss("the Phoenix JavaScript client is not installed in " + jsDir)
	}
	return node
}
