package managed

import (
	"context"
	"net/url"
	"strings"
)

// SocketState is the state of the client's connection.
type SocketState int

const (
	// Disconnected: no socket, none being opened.
	Disconnected SocketState = iota
	// Connecting: a socket is being opened or reconnecting and none is open.
	Connecting
	// Connected: a socket is open (every socket, in a pool of several).
	Connected
	// PartlyConnected: in a pool, some sockets are open and some are not.
	PartlyConnected
)

func (s SocketState) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case PartlyConnected:
		return "partly connected"
	}
	return "unknown"
}

// State is the client's connection state.
func (c *Client) State(ctx context.Context) (SocketState, error) {
	return ask(ctx, c, func(l *loop) SocketState {
		open := 0
		for _, s := range l.sockets {
			if s.connected {
				open++
			}
		}
		switch {
		case len(l.sockets) == 0:
			return Disconnected
		case open == len(l.sockets):
			return Connected
		case open == 0:
			return Connecting
		}
		return PartlyConnected
	})
}

// Connected reports whether every socket of the pool is open (and there is one).
func (c *Client) Connected(ctx context.Context) (bool, error) {
	s, err := c.State(ctx)
	return s == Connected, err
}

// DisconnectReason is why a socket last lost its connection (or failed to
// open, or was disconnected: a *DisconnectError); nil if none ever did.
func (c *Client) DisconnectReason(ctx context.Context) (error, error) {
	return ask(ctx, c, func(l *loop) error { return l.lastDown })
}

// Endpoint is the endpoint given to New, without its query and user info
// (where tokens may be).
func (c *Client) Endpoint() string { return c.shown }

func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(unparsable endpoint)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}

// Protocol is the transport and the serializer the sockets use.
type Protocol struct {
	Transport  string // "websocket", "longpoll", "websocket, long-poll fallback", "custom"
	Serializer string // "2.0.0" or "1.0.0"
}

// Protocol is the client's transport and serializer.
func (c *Client) Protocol() Protocol { return c.protocol }

func (c *Client) topicsIn(ctx context.Context, pred func(*topic) bool) ([]string, error) {
	return ask(ctx, c, func(l *loop) []string {
		var out []string
		for _, n := range l.topicNames() {
			if pred(l.topics[n]) {
				out = append(out, n)
			}
		}
		return out
	})
}

func queued(t *topic) bool { return t.state == tsQueued || t.state == tsJoining }
func joined(t *topic) bool { return t.state == tsJoined }

// QueuedChannels lists the topics waiting to be joined (for a socket, or
// for the join reply).
func (c *Client) QueuedChannels(ctx context.Context) ([]string, error) {
	return c.topicsIn(ctx, queued)
}

// ChannelQueued reports whether topic waits to be joined.
func (c *Client) ChannelQueued(ctx context.Context, name string) (bool, error) {
	ts, err := c.topicsIn(ctx, func(t *topic) bool { return t.name == name && queued(t) })
	return len(ts) > 0, err
}

// JoinedChannels lists the joined topics.
func (c *Client) JoinedChannels(ctx context.Context) ([]string, error) {
	return c.topicsIn(ctx, joined)
}

// ChannelJoined reports whether topic is joined.
func (c *Client) ChannelJoined(ctx context.Context, name string) (bool, error) {
	ts, err := c.topicsIn(ctx, func(t *topic) bool { return t.name == name && joined(t) })
	return len(ts) > 0, err
}

// TopicParts splits a topic at its colons: "room:lobby:1" is room, lobby, 1.
func TopicParts(topic string) []string { return strings.Split(topic, ":") }

// Presence is topic's presence as folded since it was joined.
func (c *Client) Presence(ctx context.Context, topic string) (PresenceInfo, error) {
	return ask(ctx, c, func(l *loop) PresenceInfo {
		if pt := l.pres[topic]; pt != nil {
			return pt.snapshot()
		}
		return PresenceInfo{}
	})
}

// Dropped counts the stream's events lost to its overflow policy.
func (c *Client) Dropped(ctx context.Context) (uint64, error) {
	return ask(ctx, c, func(l *loop) uint64 { return l.dropped })
}

// ---- disconnect

// Disconnect closes every socket with close code code (0: 1000), which the
// close frame carries when it is 1000 or from 3000 to 4999 (else 1000) and
// SocketClosed and DisconnectReason report. Configs, topics and queued pushes are kept: the next Connect,
// Join or push reconnects and rejoins them. A push in flight goes back to
// the head of its queue.
func (c *Client) Disconnect(ctx context.Context, code int) error {
	if code == 0 {
		code = 1000
	}
	return c.do(ctx, func(l *loop) { l.disconnect(code, false) })
}

// DisconnectAndReset disconnects and forgets everything: configs, topics,
// queued and timed-out pushes (each reported as PushCancelled), presence.
// The client is then as new.
func (c *Client) DisconnectAndReset(ctx context.Context, code int) error {
	if code == 0 {
		code = 1000
	}
	return c.do(ctx, func(l *loop) { l.disconnect(code, true) })
}
