// Package presence folds Phoenix Presence messages (presence_state and
// presence_diff) into the list of who is present on a channel, with the
// semantics of the official JavaScript client's Presence, and reports each
// change as a value: Join, Leave, Update and Sync.
//
// Start here: a Machine fed with a channel's messages (Machine.Apply) keeps
// the state and returns the events; the tracker that wires a Machine to a
// channel subscription builds on it. DecodeState, DecodeDiff, SyncState,
// SyncDiff and List are the pure functions underneath, for callers that keep
// their own state.
//
// # The fold
//
// A State maps presence keys (user ids, any string, "__proto__" and ""
// included) to a Presence: the metas of that key, one per tracked process
// (a socket, a device), plus the fields a server's fetch/2 adds. Metas are
// identified by phx_ref only, compared as JavaScript's === compares them
// after JSON.parse. Each Meta keeps its raw JSON, so nothing the server sent
// is lost; decode it into your own type with Meta.Decode, DecodeMeta or
// MetasAs.
//
// SyncState and SyncDiff follow the JavaScript Presence.syncState and
// Presence.syncDiff step by step: the resulting state, the order of its keys
// (List), and the Join and Leave events, which carry the arguments the JS
// client passes to onJoin(key, current, newPres) and onLeave(key, current,
// leftPres), in the order it calls them: first every join, then every leave.
// A differential test runs the same random message sequences through this
// package and through the npm phoenix package in node and requires the same
// output, byte for byte.
//
// The functions never modify their arguments, and Metas and Presences are
// never modified once built, so States and events may be shared between
// goroutines. A pure fold copies the key map, which is O(keys); a Machine
// owns its map and folds each diff in place, in time proportional to the
// diff.
//
// # Updates
//
// For a Presence.update on the server, Phoenix sends one diff where the key
// both joins (the new meta, whose phx_ref_prev names the old one) and leaves
// (the old meta). The JavaScript client reports this as a join followed by a
// leave. With Options.Updates (or WithUpdates on the pure fold's events) it
// is one Update{Key, Old, New, Current} instead. It is off by default, for
// parity with phoenix.js.
//
// # Joins and rejoins
//
// A server sends the presence_diff of a client's own join before the
// presence_state, and after every rejoin the state comes again. A Machine,
// like the JavaScript Presence, keeps the diffs that arrive while the state of
// the channel's current join has not arrived yet, and applies them right
// after that state. Each Input carries the channel's join ref at the time the
// message arrived (presence_diff is a broadcast, with no join ref of its own)
// so that the Machine knows which join a message belongs to.
//
// One deliberate difference from phoenix.js: diffs kept from an earlier join
// (or received while not joined) are dropped when the new state arrives,
// because they predate changes the client never saw and could bring back
// presences that have left. Thus once a presence_state is applied, the local
// state is the server's. Options.KeepStaleDiffs restores the JavaScript
// behaviour. The number of kept diffs is bounded (Options.MaxPending).
//
// # Tracker
//
// Track wires a Machine to a channel: an actor goroutine subscribes to the
// channel's presence events, folds them and streams the changes.
//
//	p := presence.Track(ctx, ch, nil) // before ch.Join, so the first state is seen
//	defer p.Close()
//	if _, err := ch.Join(ctx); err != nil { ... }
//	for ev := range p.Events() { ... Join, Leave, Update, Sync, Skipped ... }
//	if err := p.Err(); err != nil { ... } // why it ended
//
// Events is closed in the end, always, and Err then says why: nil after
// Close, ctx.Err() when Track's ctx ends, or the subscription's error when
// the channel goes away (phx.ErrLeft, phx.ErrClosed, a *phx.JoinError).
// All(ctx) is the same stream as an iterator. State, List and Stats are
// snapshots at any time, answered by the actor between two messages.
//
// A Tracker created after the join may have missed that join's
// presence_state, which Phoenix sends once: it then waits, keeping diffs
// (Stats.Pending), until the channel rejoins and the state comes again.
//
// The state never misses a message: the tracker reads its subscription as
// fast as it folds, and if the subscription overflows all the same it
// stops with phx.ErrSlowConsumer rather than keep a wrong state. What a
// slow consumer can miss is events: they wait in a bounded queue of
// batches (one batch per channel message, so a 10,000-key state is never
// split), and TrackOptions.Overflow says what happens when it is full:
// drop the newest batch (the default), drop the oldest, end the tracker, or
// stop reading the channel until the consumer catches up. Drops are
// counted in Stats.Dropped; a consumer that missed events can read List.
//
// A payload the fold cannot read, and a diff dropped because too many
// waited for a state, are not reasons to stop: they come on the stream as
// a Skipped event carrying the error (ErrMalformed, ErrPendingOverflow).
// Skipped is the one event a Tracker adds to the Machine's.
//
// TrackAs[M] decodes metas into your type as events are taken (its All
// yields a TypedEvent[M]; a meta that does not decode comes with a
// *MetaError and the stream goes on), and DecodeEvent does the same for
// events read from Events.
//
// # Errors
//
// A payload that cannot be read (not an object, a presence without a "metas"
// array, a meta that is not an object) gives an error matching ErrMalformed
// and changes nothing. A typed meta that does not decode gives a *MetaError.
//
// # Concurrency
//
// State, Presence, Meta and the events are immutable values, safe to share.
// A Machine is not safe for concurrent use: one goroutine owns it. It starts
// no goroutines.
package presence
