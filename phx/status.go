package phx

import "time"

// State is the state of a Socket.
type State int32

const (
	StateConnecting State = iota // dialing (the first time or after a drop)
	StateConnected               // open
	StateWaiting                 // disconnected, waiting to reconnect
	StateClosed                  // closed for good
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateWaiting:
		return "waiting"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// ChannelState is the state of a Channel, with phoenix.js's names.
type ChannelState int32

const (
	ChannelClosed ChannelState = iota
	ChannelJoining
	ChannelJoined
	ChannelLeaving
	ChannelErrored
)

func (s ChannelState) String() string {
	switch s {
	case ChannelClosed:
		return "closed"
	case ChannelJoining:
		return "joining"
	case ChannelJoined:
		return "joined"
	case ChannelLeaving:
		return "leaving"
	case ChannelErrored:
		return "errored"
	}
	return "unknown"
}

// Status is one event of a socket's status stream (Socket.Status). It is one
// of Connected, Disconnected, Reconnecting, Closed, Joined, Rejoining,
// ChannelEnded and SlowConsumer.
type Status interface{ isStatus() }

// Connected reports that a connection opened. URL is the endpoint with its
// query values redacted (see DialError); Socket.Endpoint returns it whole.
type Connected struct{ URL string }

// Disconnected reports that a connection ended or a connection attempt failed. Code is
// the close code (0 if none); Reconnect says whether a reconnect follows.
type Disconnected struct {
	Err       error
	Code      int
	Reconnect bool
}

// Reconnecting reports that the next connection attempt starts after
// Delay. Attempt counts attempts, from 1, since a connection last proved
// healthy by answering a frame the client sent (a heartbeat, ping, join or
// push): a connection that opens and fails before that continues the count
// and the reconnect schedule.
type Reconnecting struct {
	Attempt int
	Delay   time.Duration
}

// Closed reports that the socket stopped for good; Err is nil after Close.
type Closed struct{ Err error }

// Joined reports that a channel joined (or rejoined) with JoinRef.
type Joined struct {
	Topic   string
	JoinRef string
}

// Rejoining reports that a channel errored while the socket stayed connected (Err says
// why: phx_error, a refused or timed-out rejoin) and will rejoin after
// Delay. Channels errored by a lost connection are not reported one by one:
// Disconnected covers them, and they all rejoin when the socket reconnects.
type Rejoining struct {
	Topic   string
	Attempt int
	Delay   time.Duration
	Err     error
}

// ChannelEnded reports that a channel closed for good (left, refused, or closed by the
// server).
type ChannelEnded struct {
	Topic string
	Err   error
}

// SlowConsumer reports that a subscription on Topic dropped messages; Dropped is its
// running total. Reported once per overflow episode, not per message.
type SlowConsumer struct {
	Topic   string
	Dropped uint64
	Err     error // ErrSlowConsumer
}

func (Connected) isStatus()    {}
func (Disconnected) isStatus() {}
func (Reconnecting) isStatus() {}
func (Closed) isStatus()       {}
func (Joined) isStatus()       {}
func (Rejoining) isStatus()    {}
func (ChannelEnded) isStatus() {}
func (SlowConsumer) isStatus() {}

// Stats are counters kept by a socket since it started.
type Stats struct {
	Received   uint64 // frames decoded
	Stale      uint64 // frames dropped for a join_ref that is not current
	Unrouted   uint64 // frames for a topic with no channel, or replies to no push
	Malformed  uint64 // frames that could not be decoded
	Dropped    uint64 // messages dropped by full subscriptions
	Overflowed uint64 // broadcasts dropped because a channel's actor fell 1024 frames behind
	Reconnects uint64 // connections opened after the first

	Sent          uint64 // frames written
	BytesReceived uint64 // in the frames read, as the transport gave them
	BytesSent     uint64 // in the frames written

	PushesSent     uint64 // Channel.Push frames written
	PushesReplied  uint64 // pushes answered "ok"
	PushesErrored  uint64 // pushes answered with another status
	PushesTimedOut uint64 // pushes with no reply within their timeout
	Joins          uint64 // channels joined for the first time
	Rejoins        uint64 // channels joined again after an error or a reconnect
	// ReconnectsBy counts, by Cause, the connections lost and connection
	// attempts failed that a reconnect followed.
	ReconnectsBy  [NumCauses]uint64
	StatusDropped uint64 // status events dropped from full status streams (oldest first)

	Channels      int64 // channels joined now
	Subscriptions int64 // subscriptions open now

	HeartbeatLast time.Duration // the last heartbeat's round trip
	HeartbeatMean time.Duration // its exponentially weighted mean (1/8 per sample)
	HeartbeatRTT  Histogram     // heartbeat round trips
	PushLatency   Histogram     // from Push to its reply, for replied pushes
}
