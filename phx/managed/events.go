package managed

import (
	"encoding/json"
	"time"
)

// Event is one value of the client's stream (Client.Events): a socket
// opened, closed or failed; a channel joined, was refused, timed out,
// errored or was left; a subscribed channel event; a push's outcome;
// a presence change. The set is closed; use a type switch.
type Event interface{ isEvent() }

// SocketOpened is the event: a socket of the pool opened a connection (also after a
// reconnect). Socket numbers the pool's sockets from 1.
type SocketOpened struct {
	Socket int
	URL    string
}

// SocketClosed is the event: a socket's connection ended. Reconnect says whether it
// reconnects by itself; Code is the close code (the caller's own for
// Disconnect). Err is why, nil for a Disconnect.
type SocketClosed struct {
	Socket    int
	Code      int
	Err       error
	Reconnect bool
}

// SocketError is the event: opening a socket failed; the client tries again on the
// reconnect schedule while anything waits for it.
type SocketError struct {
	Socket int
	Err    error
}

// ChannelJoined is the event: topic joined, or joined again after an error or a
// reconnect (Rejoin). Response is the server's join response (nil on a
// rejoin reported by the socket).
type ChannelJoined struct {
	Topic    string
	Response json.RawMessage
	Rejoin   bool
}

// ChannelJoinError is the event: the server refused the join with Response. The topic
// is dropped and its queued pushes fail.
type ChannelJoinError struct {
	Topic    string
	Response json.RawMessage
}

// ChannelJoinTimeout is the event: no join reply came in time; the channel keeps
// rejoining and a ChannelJoined follows when it succeeds.
type ChannelJoinTimeout struct{ Topic string }

// ChannelErrored is the event: a joined channel's server process ended (phx_error) or a
// rejoin failed; it rejoins by itself.
type ChannelErrored struct {
	Topic string
	Err   error
}

// ChannelLeft is the event: the channel is gone: left by the caller (Err nil) or closed
// by the server.
type ChannelLeft struct {
	Topic string
	Err   error
}

// ChannelEvent is an event the caller subscribed to (JoinConfig.Events,
// AddEvents) arriving on Topic.
type ChannelEvent struct {
	Topic   string
	Event   string
	Payload json.RawMessage
}

// PushOK is the event: the server answered the push with status "ok".
type PushOK struct {
	Push     Push
	Response json.RawMessage
}

// PushError is the event: the server answered with another status ({:error, resp}).
type PushError struct {
	Push     Push
	Response json.RawMessage
}

// PushTimeout is the event: no reply came in time (or the connection dropped before
// it). With Retry the push is sent again at RetryAt; without, it is dropped.
// Attempt counts the tries so far, from 1.
type PushTimeout struct {
	Push    Push
	Attempt int
	Retry   bool
	RetryAt time.Time
}

// PushFailed is the event: the push cannot be delivered: its channel was refused, left
// or closed, or the client is shutting down.
type PushFailed struct {
	Push Push
	Err  error
}

// PushCancelled is the event: the push was dropped by DropPush, DropQueuedPush,
// DropTimedOutPush, a cancelled blocking Push, or DisconnectAndReset.
type PushCancelled struct{ Push Push }

// PresenceState is the event: a presence_state was folded; List is the whole list.
type PresenceState struct {
	Topic string
	List  []Presence
}

// PresenceDiff is the event: a presence_diff was folded.
type PresenceDiff struct {
	Topic         string
	Joins, Leaves []Presence
}

// PresenceJoin is the event: metas joined Key (from a state or a diff).
type PresenceJoin struct {
	Topic    string
	Presence Presence
}

// PresenceLeave is the event: metas left Key.
type PresenceLeave struct {
	Topic    string
	Presence Presence
}

// Overflowed is the event: the stream was full and Dropped events (running total) were
// lost under the DropNewest or DropOldest policy. Reported once room is back.
type Overflowed struct{ Dropped uint64 }

func (SocketOpened) isEvent()       {}
func (SocketClosed) isEvent()       {}
func (SocketError) isEvent()        {}
func (ChannelJoined) isEvent()      {}
func (ChannelJoinError) isEvent()   {}
func (ChannelJoinTimeout) isEvent() {}
func (ChannelErrored) isEvent()     {}
func (ChannelLeft) isEvent()        {}
func (ChannelEvent) isEvent()       {}
func (PushOK) isEvent()             {}
func (PushError) isEvent()          {}
func (PushTimeout) isEvent()        {}
func (PushFailed) isEvent()         {}
func (PushCancelled) isEvent()      {}
func (PresenceState) isEvent()      {}
func (PresenceDiff) isEvent()       {}
func (PresenceJoin) isEvent()       {}
func (PresenceLeave) isEvent()      {}
func (Overflowed) isEvent()         {}
