package managed

import (
	"encoding/json"

	"github.com/phxgo/phxgo/presence"
)

// Presence is one key's presence: its metas, plus what the server's
// Presence fetch/2 added: User is its "user" member (nil when none) and
// Entry the whole entry as the server sent it ({"metas": [...], ...}).
// In a join or leave, Metas are the metas that joined or left.
type Presence struct {
	Key   string
	Metas []presence.Meta
	User  json.RawMessage
	Entry json.RawMessage
}

// PresenceDiffs is one presence_diff as folded.
type PresenceDiffs struct {
	Joins, Leaves []Presence
}

// PresenceInfo is a topic's presence as the client has seen it since the
// topic was joined: the current list, and the recent diffs, joins and
// leaves (the last Config.PresenceHistory of each), the last join and the
// last leave.
type PresenceInfo struct {
	List      []Presence
	Diffs     []PresenceDiffs
	Joins     []Presence
	Leaves    []Presence
	LastJoin  *Presence
	LastLeave *Presence
}

func toPresence(key string, p presence.Presence) Presence {
	entry, _ := json.Marshal(p)
	return Presence{Key: key, Metas: p.Metas, User: p.Fields["user"], Entry: entry}
}

func listOf(s presence.State) []Presence {
	out := make([]Presence, 0, s.Len())
	for k, p := range s.All() {
		out = append(out, toPresence(k, p))
	}
	return out
}

// presTopic folds one topic's presence with a presence.Machine.
type presTopic struct {
	m       *presence.Machine
	info    PresenceInfo
	history int
}

func newPresTopic(history int) *presTopic {
	return &presTopic{m: presence.NewMachine(presence.Options{}), history: history}
}

func keep[T any](s []T, v T, n int) []T {
	s = append(s, v)
	if len(s) > n {
		s = append(s[:0:0], s[len(s)-n:]...)
	}
	return s
}

// apply folds a presence message and returns the events to report.
func (pt *presTopic) apply(topic, event string, payload json.RawMessage, joinRef string) []Event {
	evs, err := pt.m.Apply(presence.Input{Event: event, Payload: payload, JoinRef: joinRef})
	if err != nil {
		return nil // malformed: the state is unchanged
	}
	var out []Event
	for _, e := range evs {
		switch e := e.(type) {
		case presence.Join:
			p := toPresence(e.Key, e.New)
			pt.info.Joins = keep(pt.info.Joins, p, pt.history)
			pt.info.LastJoin = &p
			out = append(out, PresenceJoin{Topic: topic, Presence: p})
		case presence.Leave:
			p := toPresence(e.Key, e.Left)
			pt.info.Leaves = keep(pt.info.Leaves, p, pt.history)
			pt.info.LastLeave = &p
			out = append(out, PresenceLeave{Topic: topic, Presence: p})
		case presence.Sync:
			if event == presence.DefaultStateEvent {
				out = append(out, PresenceState{Topic: topic, List: listOf(pt.m.State())})
			}
		}
	}
	if event == presence.DefaultDiffEvent {
		if d, err := presence.DecodeDiff(payload); err == nil {
			pd := PresenceDiffs{Joins: listOf(d.Joins), Leaves: listOf(d.Leaves)}
			pt.info.Diffs = keep(pt.info.Diffs, pd, pt.history)
			out = append(out, PresenceDiff{Topic: topic, Joins: pd.Joins, Leaves: pd.Leaves})
		}
	}
	return out
}

func (pt *presTopic) snapshot() PresenceInfo {
	info := pt.info
	info.List = listOf(pt.m.State())
	info.Diffs = append([]PresenceDiffs(nil), info.Diffs...)
	info.Joins = append([]Presence(nil), info.Joins...)
	info.Leaves = append([]Presence(nil), info.Leaves...)
	return info
}
