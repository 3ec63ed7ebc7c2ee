package presence_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/presence"
)

// recordedFrames returns the presence messages the observer socket received
// in testdata/phoenix/presence_three_users.jsonl, recorded from a real
// Phoenix 1.7 server.
func recordedFrames(t *testing.T) []presence.Input {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "phoenix", "presence_three_users.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []presence.Input
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Dir, Conn, Opcode, Data string
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if line.Dir != "recv" || line.Conn != "observer" || line.Opcode != "text" {
			continue
		}
		var frame []json.RawMessage
		if err := json.Unmarshal([]byte(line.Data), &frame); err != nil || len(frame) != 5 {
			t.Fatalf("frame %s: %v", line.Data, err)
		}
		var event string
		_ = json.Unmarshal(frame[3], &event)
		if strings.HasPrefix(event, "presence_") {
			// The observer joined once, with join_ref "1": that is the
			// channel's join ref for every message, the broadcast diffs
			// included (they carry null on the wire).
			out = append(out, presence.Input{Event: event, Payload: frame[4], JoinRef: "1"})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type deviceMeta struct {
	Device string `json:"device"`
	Status string `json:"status"`
}

// listing renders a state as "key:device,device key:device" for comparison.
func listing(t *testing.T, s presence.State) string {
	t.Helper()
	var parts []string
	for key, p := range s.All() {
		metas, err := presence.MetasAs[deviceMeta](p)
		if err != nil {
			t.Fatal(err)
		}
		var ds []string
		for _, m := range metas {
			d := m.Device
			if m.Status != "" {
				d += "/" + m.Status
			}
			ds = append(ds, d)
		}
		parts = append(parts, key+":"+strings.Join(ds, ","))
	}
	return strings.Join(parts, " ")
}

// TestReplayThreeUsers folds what a real Phoenix server sent while u1, u2
// (two sockets), u3 joined, u2 updated its meta and everyone but the
// observer went away. The expected lists follow from the recording's ACTION
// notes; the last one is the server's final state: only the observer.
func TestReplayThreeUsers(t *testing.T) {
	t.Parallel()
	frames := recordedFrames(t)
	want := []string{
		"", // the diff of our own join arrives first and waits for the state
		"observer:monitor",
		"observer:monitor u1:laptop",
		"observer:monitor u1:laptop u2:phone",
		"observer:monitor u1:laptop u2:phone u3:tablet",
		"observer:monitor u1:laptop u2:phone,desktop u3:tablet",
		"observer:monitor u1:laptop u2:desktop,phone/away u3:tablet",
		"observer:monitor u2:desktop,phone/away u3:tablet",
		"observer:monitor u2:desktop,phone/away",
		"observer:monitor u2:phone/away",
		"observer:monitor",
	}
	if len(frames) != len(want) {
		t.Fatalf("%d presence frames in the recording, want %d", len(frames), len(want))
	}
	for _, updates := range []bool{false, true} {
		m := presence.NewMachine(presence.Options{Updates: updates})
		var kinds []string
		for i, in := range frames {
			evs, err := m.Apply(in)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if got := listing(t, m.State()); got != want[i] {
				t.Errorf("updates=%v, after frame %d (%s): %q, want %q", updates, i, in.Event, got, want[i])
			}
			for _, ev := range evs {
				switch ev := ev.(type) {
				case presence.Join:
					kinds = append(kinds, "join "+ev.Key)
				case presence.Leave:
					kinds = append(kinds, "leave "+ev.Key)
				case presence.Update:
					kinds = append(kinds, "update "+ev.Key+" "+ev.Old.Ref+">"+ev.New.Ref)
				case presence.Sync:
					kinds = append(kinds, "sync")
				}
			}
		}
		wantKinds := []string{
			"join observer", "join observer", "sync", // the state, then the waiting diff
			"join u1", "sync", "join u2", "sync", "join u3", "sync", "join u2", "sync",
			"join u2", "leave u2", "sync",
			"leave u1", "sync", "leave u3", "sync", "leave u2", "sync", "leave u2", "sync",
		}
		if updates {
			wantKinds = slices.Replace(wantKinds, 11, 13, "update u2 GOo_AUPjeJxCiAch>GOo_AYvaY7ZCiAeR")
		}
		if !slices.Equal(kinds, wantKinds) {
			t.Errorf("updates=%v: events\n%q\nwant\n%q", updates, kinds, wantKinds)
		}
	}
}
