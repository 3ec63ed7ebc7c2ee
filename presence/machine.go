package presence

import (
	"encoding/json"
	"errors"
)

// ErrPendingOverflow is returned by Machine.Apply when a presence_diff arrives
// while Options.MaxPending diffs are already waiting for a presence_state. The
// oldest waiting diff was dropped to make room; the next presence_state
// carries the whole truth again, so only what that one diff alone said is lost.
var ErrPendingOverflow = errors.New("presence: too many diffs waiting for presence_state")

// Default event names and bound, as in the JavaScript client (which has no
// bound).
const (
	DefaultStateEvent = "presence_state"
	DefaultDiffEvent  = "presence_diff"
	DefaultMaxPending = 10000
)

// Options configures a Machine. The zero value gives the JavaScript client's
// behaviour.
type Options struct {
	// StateEvent and DiffEvent name the events carrying the full state and the
	// diffs. Empty means "presence_state" and "presence_diff".
	StateEvent string
	DiffEvent  string
	// Updates reports a meta replaced with phx_ref_prev as one Update instead
	// of a Join and a Leave (see WithUpdates). False, the default, gives the
	// JavaScript client's events.
	Updates bool
	// MaxPending bounds the diffs kept while waiting for a presence_state.
	// Zero means DefaultMaxPending; a negative value means no bound.
	MaxPending int
	// KeepStaleDiffs applies, after a presence_state, every diff that was
	// waiting for it, including diffs received under an earlier join (or
	// while not joined), as phoenix.js does. By default those are dropped
	// (counted by Machine.Stale): they predate changes the client never saw,
	// so applying them after the newer state could bring back presences that
	// have left. Within one join both settings behave the same.
	KeepStaleDiffs bool
}

// Input is one channel message offered to a Machine.
type Input struct {
	Event   string
	Payload json.RawMessage
	// JoinRef is the channel's join ref when the message was received, not the
	// one on the frame: presence_diff is a broadcast and carries none. It
	// tells the Machine whether the last presence_state it applied belongs to
	// the current join. Empty means the channel is not joined.
	JoinRef string
}

// Machine is the presence tracker of one channel as a state machine: feed it
// the channel's messages with Apply and it keeps the state and returns the
// events as the JavaScript Presence instance does. Diffs that arrive before
// the presence_state of the current join (after the first join and after
// every rejoin) are kept and applied right after that state; unlike
// phoenix.js, diffs kept from an earlier join are dropped then (see
// Options.KeepStaleDiffs), so that once a state is applied the local state is
// the server's.
//
// A Machine owns its state and folds each diff in place, in time
// proportional to the diff. It starts no goroutine and is not safe for
// concurrent use: one goroutine (the tracker that reads the channel) owns it.
// The States it hands out are immutable snapshots.
//
// A phx.Message maps onto an Input field for field (Event, Payload, and
// JoinRef, which the channel stamps with its session's join ref), so a
// tracker is a loop that reads a subscription to the two presence events and
// calls Apply.
type Machine struct {
	opts    Options
	state   *stateData
	shared  bool   // state has been handed out: copy before the next change
	joinRef string // join ref current when the last presence_state arrived
	pending []pendingDiff
	dropped int
	stale   int
}

type pendingDiff struct {
	joinRef string // the channel's join ref when the diff arrived
	diff    Diff
}

// NewMachine returns a Machine with no state, waiting for a presence_state.
// The zero Machine is the same as NewMachine(Options{}).
func NewMachine(opts Options) *Machine {
	m := &Machine{opts: opts}
	m.init()
	return m
}

func (m *Machine) init() {
	if m.state != nil {
		return
	}
	m.state = newData(0)
	opts := &m.opts
	if opts.StateEvent == "" {
		opts.StateEvent = DefaultStateEvent
	}
	if opts.DiffEvent == "" {
		opts.DiffEvent = DefaultDiffEvent
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = DefaultMaxPending
	}
}

// Apply folds one channel message. Messages with other event names are
// ignored (nil, nil). A presence_state yields its Joins and Leaves, those of
// every waiting diff, then one Sync. A presence_diff yields its Joins and
// Leaves and a Sync, or nothing while it waits for the state. A payload that
// cannot be decoded changes nothing and returns an error matching
// ErrMalformed.
func (m *Machine) Apply(in Input) ([]Event, error) {
	m.init()
	switch in.Event {
	case m.opts.StateEvent:
		st, err := DecodeState(in.Payload)
		if err != nil {
			return nil, err
		}
		return m.applyState(st, in.JoinRef), nil
	case m.opts.DiffEvent:
		diff, err := DecodeDiff(in.Payload)
		if err != nil {
			return nil, err
		}
		if m.waiting(in.JoinRef) {
			return nil, m.queue(pendingDiff{joinRef: in.JoinRef, diff: diff})
		}
		d := m.own()
		evs := m.fold(d, nil, func(d *stateData, evs []Event) []Event { return syncDiff(d, diff, evs) })
		return append(evs, Sync{JoinRef: m.joinRef, Len: len(d.m)}), nil
	}
	return nil, nil
}

func (m *Machine) applyState(st State, joinRef string) []Event {
	m.joinRef = joinRef
	d := m.own()
	evs := m.fold(d, nil, func(d *stateData, evs []Event) []Event { return syncState(d, st, evs) })
	for _, p := range m.pending {
		if p.joinRef != joinRef && !m.opts.KeepStaleDiffs {
			m.stale++
			continue
		}
		evs = m.fold(d, evs, func(d *stateData, evs []Event) []Event { return syncDiff(d, p.diff, evs) })
	}
	clear(m.pending)
	m.pending = m.pending[:0]
	return append(evs, Sync{JoinRef: m.joinRef, Len: len(d.m)})
}

// fold runs one sync step and, when asked, pairs its updates. Pairing works
// per step, never across two diffs.
func (m *Machine) fold(d *stateData, evs []Event, step func(*stateData, []Event) []Event) []Event {
	n := len(evs)
	evs = step(d, evs)
	if m.opts.Updates {
		evs = append(evs[:n], WithUpdates(evs[n:])...)
	}
	return evs
}

// waiting mirrors the JavaScript inPendingSyncState: no state yet, or a state
// from another join than the channel's current one.
func (m *Machine) waiting(joinRef string) bool {
	return m.joinRef == "" || m.joinRef != joinRef
}

func (m *Machine) queue(diff pendingDiff) error {
	var err error
	if m.opts.MaxPending > 0 && len(m.pending) >= m.opts.MaxPending {
		m.pending[0] = pendingDiff{}
		m.pending = m.pending[1:]
		m.dropped++
		err = ErrPendingOverflow
	}
	m.pending = append(m.pending, diff)
	return err
}

// own returns the state for in-place change, copying it first if a snapshot
// of it was handed out.
func (m *Machine) own() *stateData {
	if m.shared {
		m.state = m.state.clone()
		m.shared = false
	}
	return m.state
}

// State returns a snapshot of the current state in O(1). The next change
// copies the key map once (copy-on-write), so taking a snapshot after every
// event costs O(keys) per event; taking one now and then is free.
func (m *Machine) State() State {
	m.shared = true
	return State{m.state}
}

// List returns every key with its presence, in JS order. Unlike State it
// leaves nothing shared, so it costs no copy later.
func (m *Machine) List() []KeyPresence {
	return List(State{m.state}, func(k string, p Presence) KeyPresence { return KeyPresence{Key: k, Presence: p} })
}

// KeyPresence is one key of a state with its presence, as listed by
// Machine.List.
type KeyPresence struct {
	Key      string
	Presence Presence
}

// Pending reports how many diffs wait for a presence_state.
func (m *Machine) Pending() int { return len(m.pending) }

// Dropped reports how many waiting diffs were dropped by the MaxPending bound.
func (m *Machine) Dropped() int { return m.dropped }

// Stale reports how many waiting diffs were dropped because they arrived
// under another join than the presence_state (see Options.KeepStaleDiffs).
func (m *Machine) Stale() int { return m.stale }

// Synced reports whether a presence_state has been applied for joinRef, the
// channel's current join ref.
func (m *Machine) Synced(joinRef string) bool { return !m.waiting(joinRef) }
