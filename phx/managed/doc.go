// Package managed is a managed Phoenix Channels client: one actor that owns
// a pool of phx sockets and their channels, connects and joins by itself,
// queues and retries pushes, folds presence, and reports everything it does
// as typed values on one stream. It is the Go counterpart of the Elm
// wrapper of the official client (elm-phoenix-websocket's Phoenix module),
// built on package phx and package presence.
//
// # Start here
//
//	c := managed.New(ctx, "ws://localhost:4000/socket", nil)
//	defer c.Close()
//
//	_ = c.SetJoinConfig(ctx, managed.JoinConfig{Topic: "room:lobby", Events: []string{"new_msg"}})
//	_ = c.Send(ctx, managed.Push{Topic: "room:lobby", Event: "new_msg", Payload: msg,
//		Retry: managed.Backoff([]time.Duration{time.Second, 5 * time.Second}, 0)})
//
//	for ev := range c.Events() {
//		switch ev := ev.(type) {
//		case managed.ChannelEvent: // a subscribed event
//		case managed.PushOK, managed.PushTimeout: // a push's outcome
//		case managed.PresenceJoin, managed.PresenceLeave:
//		}
//	}
//
// The push connected the socket and joined the topic first. Blocking
// calls do the same and wait for the outcome: Connect, Join, Push, Leave.
//
// # When to use it
//
// phx is the low-level API: a Socket, Channels you Join once, Push calls that
// return one outcome, Subscriptions you range over. Pick it when the program
// has a few topics and wants to decide itself what happens on every error.
// Pick this package when the program wants the busywork done: joins before
// pushes, pushes held while a channel rejoins, retries on a schedule, one
// stream to feed a UI or a state machine, introspection of what waits, and
// more topics than one socket takes.
//
// # Pushes
//
// A Push names topic, event, payload, a timeout, a Retry (Drop, Every,
// Backoff, Custom, built on cenkalti/backoff) and a Ref label of the
// caller's. A push waits in its topic's queue until the channel is joined
// (Queued), then is handed to phx (InFlight); a try that times out or whose
// connection dropped is retried after its schedule's next delay (TimedOut,
// RetryAt) or reported dropped. Pushes to one topic are sent in order, one
// at a time: phx's Push blocks until its reply, and a single caller per
// topic is what keeps the order. Pushes, Match, RetryIn and DropPush find,
// count down and drop pushes by their config.
//
// # Channels and sockets
//
// Each topic has a JoinConfig (payload, static or computed on every join;
// the events delivered on the stream; timeout; CatchUp) and a LeaveConfig.
// The client puts at most Config.MaxChannelsPerSocket channels on a socket
// (Phoenix refuses the 101st by default), opens sockets as it needs them and
// closes a socket when its last channel leaves (keeping one). A join the
// server refuses with "too many channels" moves to another socket.
//
// CatchUp remembers the last value of a payload field (a stream position)
// seen on a topic and adds it to the payload of every later join, so that a
// server can send what was missed while the channel was away.
//
// # The stream
//
// Events is bounded (Config.Buffer) with phx's overflow policies: drop the
// newest (the default, counted and reported by an Overflowed event), drop
// the oldest, close the stream with phx.ErrSlowConsumer, or block the
// client. A program that uses only the blocking calls may ignore the
// stream: with the default policy it costs nothing but dropped events.
//
// # Goroutines
//
// One actor goroutine owns every queue and map. Blocking calls into phx
// (dials, joins, leaves, pushes in flight) run on at most Config.Workers
// workers; joins wait in a queue per socket and run a few at a time on each.
// Each joined channel adds one goroutine that forwards its messages, each
// socket one that forwards its status. None is started per push or per
// message, and Close returns once all have stopped.
//
// # Logging
//
// StartLogging and StopLogging switch, on a running client, the logging of
// every message sent and received to Config.Logger at debug level; Logger
// is the switched *slog.Logger, to hand to other parts. Join payloads,
// which carry tokens, are never logged.
package managed
