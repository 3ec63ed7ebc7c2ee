package presence

import "slices"

// Event is one change found by the fold or reported by a Machine: a Join, a
// Leave, an Update (opt-in) or a Sync. The set is closed; use a type switch.
type Event interface{ presenceEvent() }

// Join reports presences that joined key, with the arguments the JavaScript
// client passes to onJoin(key, current, newPres).
type Join struct {
	Key string
	// Current is the key's presence before the join, nil when the key was absent.
	Current *Presence
	// New holds the metas that joined (as the server sent them, for a diff;
	// only the metas not already known, for a state).
	New Presence
}

// Leave reports presences that left key, with the arguments the JavaScript
// client passes to onLeave(key, current, leftPres).
type Leave struct {
	Key string
	// Current is what remains of the key after the leave; no metas means the
	// key is gone.
	Current Presence
	// Left holds the metas the server said left, including any this state did
	// not know.
	Left Presence
}

// Update reports a meta replaced by a Presence.update on the server: one diff
// brought the new meta in joins, with phx_ref_prev naming the old meta, and
// the old meta in leaves. It is reported only when asked for (WithUpdates,
// Options.Updates), in place of the Join and Leave it stands for.
type Update struct {
	Key string
	Old Meta
	New Meta
	// Current is the key's presence after the update.
	Current Presence
}

// Sync marks the end of one applied presence_state (with the diffs that were
// waiting for it) or of one applied presence_diff, like the JavaScript onSync.
type Sync struct {
	JoinRef string // join ref of the session the state belongs to
	Len     int    // number of keys after the change
}

func (Join) presenceEvent()   {}
func (Leave) presenceEvent()  {}
func (Update) presenceEvent() {}
func (Sync) presenceEvent()   {}

// SyncState folds a full presence_state into state, as the JavaScript
// Presence.syncState does: keys missing from newState leave, metas whose
// phx_ref is unknown join, metas whose phx_ref is no longer listed leave.
// Metas are matched by phx_ref only, so a known meta keeps its old body. The
// events are the onJoin / onLeave calls the JavaScript client makes, in the
// same order: all joins, then all leaves. Neither argument is modified.
//
// The cost is O(len(state) + len(newState)) plus a sort of the keys.
func SyncState(state, newState State) (State, []Event) {
	d := state.d.clone()
	evs := syncState(d, newState, nil)
	return State{d}, evs
}

// SyncDiff folds one presence_diff into state, as the JavaScript
// Presence.syncDiff does: each joined key gets its old metas that the join does
// not repeat, followed by the joined metas; each left key loses the metas with
// a listed phx_ref, and is removed when none remain. A leave of an unknown key
// is ignored; a leave of unknown refs on a known key is still reported. The
// events come in the JavaScript order: joins in the diff's key order, then
// leaves. Neither argument is modified.
//
// The cost is a copy of the key map, O(len(state)), plus the diff: a caller
// that owns its state should use a Machine, which folds in place.
func SyncDiff(state State, diff Diff) (State, []Event) {
	d := state.d.clone()
	evs := syncDiff(d, diff, nil)
	return State{d}, evs
}

// syncState folds newState into d in place and appends the events to evs.
func syncState(d *stateData, newState State, evs []Event) []Event {
	if len(d.m) == 0 {
		// Everything joins, in newState's order: newState is the diff.
		return syncDiff(d, Diff{Joins: newState}, evs)
	}
	joins, leaves := newData(0), newData(0)
	for key, p := range d.all() {
		if _, ok := newState.d.get(key); !ok {
			leaves.set(key, p)
		}
	}
	for key, p := range newState.d.all() {
		cur, ok := d.get(key)
		if !ok {
			joins.set(key, p)
			continue
		}
		if joined := without(p.Metas, cur.Metas); len(joined) > 0 {
			joins.set(key, p.withMetas(joined))
		}
		if left := without(cur.Metas, p.Metas); len(left) > 0 {
			leaves.set(key, cur.withMetas(left))
		}
	}
	return syncDiff(d, Diff{Joins: State{joins}, Leaves: State{leaves}}, evs)
}

// syncDiff folds diff into d in place and appends the events to evs. It never
// modifies a Presence or a metas slice it did not create, which is what lets
// States share them.
func syncDiff(d *stateData, diff Diff, evs []Event) []Event {
	if len(d.m) == 0 && diff.Joins.Len() > 8 {
		d.m = make(map[string]entry, diff.Joins.Len())
	}
	evs = slices.Grow(evs, diff.Joins.Len()+diff.Leaves.Len())
	for key, p := range diff.Joins.d.all() {
		cur, ok := d.get(key)
		merged := p
		if ok {
			merged.Metas = append(without(cur.Metas, p.Metas), p.Metas...)
		}
		d.set(key, merged)
		j := Join{Key: key, New: p}
		if ok {
			c := cur
			j.Current = &c
		}
		evs = append(evs, j)
	}
	for key, p := range diff.Leaves.d.all() {
		cur, ok := d.get(key)
		if !ok {
			continue
		}
		rest := cur.withMetas(without(cur.Metas, p.Metas))
		evs = append(evs, Leave{Key: key, Current: rest, Left: p})
		if len(rest.Metas) == 0 {
			d.del(key)
		} else {
			d.set(key, rest)
		}
	}
	return evs
}

// WithUpdates rewrites the events of one SyncDiff or SyncState call so that
// each meta replaced through phx_ref_prev is one Update instead of a Join and
// a Leave. A new meta counts as an update when its phx_ref_prev names a meta
// the key had before (Join.Current), that meta is among the metas that left
// and is gone, and the new meta is still there. What is not paired stays in
// the Join and Leave, which are dropped only when nothing is left in them. The
// Updates of a key come right after its (remaining) Join. The input is not
// modified.
func WithUpdates(events []Event) []Event {
	leaveAt := make(map[string]int)
	for i, ev := range events {
		if l, ok := ev.(Leave); ok {
			leaveAt[l.Key] = i
		}
	}
	if len(leaveAt) == 0 {
		return events
	}
	type pairing struct {
		updates []Event
		oldRefs []Meta // the replaced metas, to take out of the Leave
	}
	paired := make(map[string]*pairing)
	out := make([]Event, 0, len(events))
	for _, ev := range events {
		switch ev := ev.(type) {
		case Join:
			li, ok := leaveAt[ev.Key]
			if !ok || ev.Current == nil {
				out = append(out, ev)
				continue
			}
			l := events[li].(Leave)
			var pr pairing
			var rest []Meta
			for _, nm := range ev.New.Metas {
				old, found := replaced(nm, ev.Current.Metas, l)
				if !found {
					rest = append(rest, nm)
					continue
				}
				pr.updates = append(pr.updates, Update{Key: ev.Key, Old: old, New: nm, Current: l.Current})
				pr.oldRefs = append(pr.oldRefs, old)
			}
			if len(pr.updates) == 0 {
				out = append(out, ev)
				continue
			}
			paired[ev.Key] = &pr
			if len(rest) > 0 {
				ev.New = ev.New.withMetas(rest)
				out = append(out, ev)
			}
			out = append(out, pr.updates...)
		case Leave:
			pr, ok := paired[ev.Key]
			if !ok {
				out = append(out, ev)
				continue
			}
			if left := without(ev.Left.Metas, pr.oldRefs); len(left) > 0 {
				ev.Left = ev.Left.withMetas(left)
				out = append(out, ev)
			}
		default:
			out = append(out, ev)
		}
	}
	return out
}

// replaced finds the meta that nm replaced, if the diff is a real update of it.
func replaced(nm Meta, before []Meta, l Leave) (Meta, bool) {
	if nm.prev.kind == refMissing || nm.prev.kind == refOpaque {
		return Meta{}, false
	}
	if !refIn(nm.ref, l.Current.Metas) {
		return Meta{}, false
	}
	for _, old := range before {
		if old.ref.matches(nm.prev) && refIn(old.ref, l.Left.Metas) && !refIn(old.ref, l.Current.Metas) {
			return old, true
		}
	}
	return Meta{}, false
}
