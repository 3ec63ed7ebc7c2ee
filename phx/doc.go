// Package phx is a client for Phoenix Channels, the real-time protocol of
// the Elixir Phoenix framework.
//
// # Start here
//
//	sock, err := phx.Connect(ctx, "ws://localhost:4000/socket", &phx.Config{Params: url.Values{"token": {t}}})
//	if err != nil { ... }
//	defer sock.Close()
//
//	ch := sock.Channel("room:lobby", map[string]any{"user": "ann"})
//	sub, err := ch.Subscribe(ctx, phx.Events("new_msg")) // before Join: nothing is missed
//	if err != nil { ... }
//	defer sub.Close() // does not wait
//	if _, err := ch.Join(ctx); err != nil { ... }
//
//	reply, err := ch.Push(ctx, "echo", map[string]any{"body": "hi"}, phx.WithTimeout(time.Second))
//	err = ch.Send(ctx, "new_msg", map[string]any{"body": "hi"}) // {:noreply, socket}: no reply awaited
//	for m := range sub.C() { ... m.Event, m.Payload (raw JSON, read-only) ... }
//
// Each call takes its own options: JoinOption, PushOption and LeaveOption
// (WithTimeout serves all three), SubscribeOption (Events, WithBuffer,
// WithOverflow, Lend). Payloads are owned by default; with Lend they are
// lent until the consumer takes the next message with Next or All, and
// large frames are read into reused buffers. Payload kinds are explicit: a Binary payload is a binary
// frame, a plain []byte is JSON like any value, and ParamsFunc computes a
// channel's join params before every rejoin.
//
// There are no callbacks: events arrive on Go channels (Subscription.C,
// Socket.Status) or iterators (Channel.Events, EventsAs), and requests are
// blocking calls with a context (Join, Push, Send, Leave, Subscribe, Ping).
// Subscription.Close does not wait.
//
// Connect's context bounds the dial only, as for net.Dialer: the socket
// lives until Close, or until Config.Context ends when it is set.
//
// # Errors
//
// Every error can be tested with errors.Is / errors.As: the sentinels
// ErrClosed, ErrTimeout, ErrLeft, ErrDisconnected, ErrPushBufferFull,
// ErrSlowConsumer, ErrNotJoined, ErrAlreadyJoined, ErrHeartbeatTimeout and
// ErrProtocol; *ReplyError for a reply whose status is not "ok" (with the
// server's response; see AsReplyError); *JoinError around every Join
// failure; *DialError for a failed connection (Status 401/403 for a refused
// upgrade); *CloseError for a connection closed with a close code (see
// CloseCode); *ServerError for a channel that crashed on the server;
// *DecodeError for a payload that does not decode.
//
// Connect URLs carry secrets (tokens in query parameters, the long-poll
// session token), so every URL in an error or a status event has its query
// values and password redacted; DialError.FullURL and Socket.Endpoint give
// them whole. A connection attempt that does not open within
// Config.DialTimeout fails with a *DialError wrapping ErrTimeout.
//
// # Testing
//
// Package phx/phxtest is an in-process Phoenix-compatible server with hooks
// and fault switches: point Connect at its URL. The examples of this package
// run against it.
//
// # Transports
//
// The socket speaks WebSocket by default (Config.Dialer for TLS, proxies and
// buffer sizes). LongPoll is Phoenix's long-poll transport, for networks
// that pass no WebSocket. Config.LongPollFallback tries the WebSocket first
// and falls back to long-poll when it does not open and carry a heartbeat in
// time, as phoenix.js's longPollFallbackMs; Fallback builds the same from
// any two transports. Config.Transport takes any Transport, the caller's own
// included.
//
// # Behaviour
//
// phx does what the official JavaScript client (phoenix.js) does where the
// protocol leaves a choice: heartbeats every 30 s, reconnects on the schedule
// 10, 50, 100, 150, 200, 250, 500, 1000, 2000 ms then every 5 s, rejoins on
// 1, 2, 5 then 10 s, rejoins every channel at once after a reconnect, buffers
// pushes made while joining, and drops frames of an earlier join session.
// Where it differs, it is on purpose:
//
//   - A first join refused by the server ends the channel with the server's
//     response instead of retrying forever. A rejoin refused later (a token
//     that expired while offline) is retried and reported.
//   - A server close with code 1000 ends the socket (as phoenix.js), unless
//     Config.ReconnectOnNormalClose; an upgrade refused with 401/403 ends it
//     too, unless Config.RetryUnauthorized. Other losses always reconnect.
//   - Pushes sent on a connection that dropped resolve with ErrDisconnected
//     at once rather than waiting for their timeout.
//   - Every buffer is bounded and says what happens when it is full.
//   - The reconnect schedule starts over only once a connection has
//     answered a frame the client sent (heartbeat, ping, join, push), not
//     when it opens: a server that accepts and fails at once is retried on
//     the schedule, not every 10 ms.
//
// # Promises
//
//   - P1 Delivery: server messages are delivered at most once per join
//     session and never replayed across reconnects; catching up is done with
//     join params (for example a last_seen_id returned by a params func).
//   - P2 Ordering: within a topic, messages reach a subscription in the order
//     the socket read them.
//   - P3 One outcome per push: every Push returns exactly once, with the
//     reply, a *ReplyError, ErrTimeout, ErrDisconnected, ErrLeft, ErrClosed
//     or ctx.Err(). A reply resolves only the push with its ref and join_ref.
//   - P4 Push while joining: buffered (Config.PushBuffer, default 100, then
//     ErrPushBufferFull), sent in order after the join; the timeout counts
//     from the call and a timed-out buffered push is never sent.
//   - P5 Stale generations: a frame whose join_ref is not the channel's
//     current one is dropped and counted (Stats.Stale).
//   - P6 Rejoin: after a reconnect every channel not left rejoins;
//     subscriptions survive.
//   - P7 Liveness: a heartbeat unanswered for Config.HeartbeatTimeout closes
//     the connection and reconnects, so a dead connection is found within
//     interval + timeout (later only while the socket itself holds frames
//     back, see P8).
//   - P8 Backpressure: no message is lost while its consumer makes
//     progress. With the default policy (Backpressure) a full subscription
//     makes its channel wait for the consumer, a channel whose inbox is full
//     makes the socket stop taking frames, and the connection is read more
//     slowly, so that TCP pushes back on the server, as the official JS
//     client's single reader does. The client's own stall is never taken
//     for a dead server: the heartbeat deadline waits while the socket holds
//     frames back, and while it reads the backlog a stall left. Only a
//     consumer that takes no message for Config.SlowConsumerTimeout (5 s)
//     is dropped from: what does not fit its buffer is counted
//     (Subscription.Dropped, Stats.Dropped) and reported once
//     (SlowConsumer, ErrSlowConsumer) until it takes a message again, and
//     the socket's other topics flow meanwhile. Memory stays bounded
//     throughout: per channel its subscriptions' buffers
//     (Config.SubscriptionBuffer messages each, allocated only while
//     messages wait: an idle subscription costs under 512 bytes) plus
//     three times its inbox (1024 frames queued, up to 2048 being
//     delivered, which a Leave hands to the subscriptions past their
//     buffers), per socket 256 frames read
//     ahead and the tapper's queue for socket-wide subscriptions (1024, and
//     as many being delivered), each frame at most Config.ReadLimit. The
//     other policies trade completeness for isolation and never hold the
//     socket back: DropNewest, DropOldest and CloseWithError drop (counted,
//     reported) as soon as a buffer is full; Block waits without a bound.
//     Status streams drop their oldest events when full, counted in
//     Stats.StatusDropped.
//   - P9 Lifecycle: Close, or the end of Config.Context, stops every
//     goroutine before Close returns, within a bound even on a blackholed
//     connection; Close is idempotent and safe to call concurrently.
//
// # Architecture
//
// Actors (package actor), each a goroutine that owns its state:
//
//   - The socket actor owns the connection: dial, heartbeat, reconnect
//     backoff and the close policy, the Status stream, Ping, and routing.
//     Each connection adds a reader goroutine, and a writer goroutine only
//     while frames wait to be written (see below). The reader
//     decodes only the envelope of each frame (package wire) and hands
//     frames to the socket in batches, in order. The socket checks each
//     payload's JSON (wire.CheckPayload) before routing it: a malformed
//     frame, envelope or payload, is counted in Stats.Malformed and ends
//     the connection with close code 1002 and ErrProtocol; the socket then
//     reconnects.
//   - Each channel is an actor of its own, started by the socket on the
//     channel's first Join, Push, Send, Leave or Subscribe and owned by it: its
//     state machine, join_ref generations and stale filtering, the push
//     buffer while joining, pending replies, the rejoin backoff, and its
//     subscriptions. It writes its frames to the connection itself. It stops when it closes for good, when it was never
//     joined and its last subscription closes, or when the socket stops:
//     Close returns only after every channel goroutine has returned.
//
// Routing is a map lookup: topic to the channel that holds it (and, by
// join_ref, to a channel still leaving that topic). The socket appends each
// frame to the channel's inbox, a bounded batched queue (1024 frames). A
// channel with a subscription that waits for its consumer (Backpressure,
// Block) whose inbox is full makes the socket stop taking frames until it
// has room (P8); otherwise the frame is dropped, counted in
// Stats.Overflowed and reported as SlowConsumer, so such a channel delays
// neither other topics nor heartbeats. Past the bound go only the replies
// the channel waits for and one phx_error and one phx_close. The channel
// takes everything queued at once and delivers it to its subscriptions
// under each one's Overflow policy. Socket-wide subscriptions are delivered
// by a goroutine of their own (the tapper), so that the socket actor never
// waits for a consumer.
//
// Fewer hand-offs on the request path: whoever holds a connection's write
// token may write to it. A channel that finds the connection idle (the
// token free, nothing queued) writes its frame itself; otherwise the frame
// joins a bounded queue, and a writer goroutine started for it writes the
// queue out in order and ends. The reader puts a channel's phx_reply
// straight into that channel's inbox when the socket has routed every
// frame read before it, no socket-wide subscription is open and the route
// is unambiguous (a read-mostly table the socket publishes at each join
// and leave); anything else goes through the socket. A push and its reply
// then take three goroutine hand-offs (caller to channel, reader to
// channel, channel to caller) where they took five.
//
// Control before data: connection changes reach channels through a
// conflated slot (the latest connection state) that a channel reads before
// anything else, and orders against the frames it holds, so that a reply
// read before a connection dropped still resolves its push.
//
// The socket never waits for the connection's writes either: its
// heartbeats queue behind the channels' frames without blocking it, so a
// dead connection is still found by the heartbeat timeout.
//
// Refs come from one counter per socket; a channel skips any ref its own
// pushes still wait on. Each actor keeps one timer over a deadline heap for
// its timeouts and rejoin; an idle channel keeps none. An idle joined
// channel costs about 3.5 KiB, two thirds of it its goroutine's stack.
//
// # Observability
//
// Config.Logger (log/slog) receives status records at Info (Warn for slow
// consumers, protocol errors and refused upgrades) and every frame sent and
// received at Debug, the level asked of the handler at every frame, so that
// a slog.LevelVar switches frame logging on a live socket (see
// ExampleConfig_logger). Socket.Frames taps the raw frames of both
// directions. Stats counts frames, bytes, pushes by outcome, joins,
// rejoins, reconnects by Cause, drops and gauges, with histograms of push
// latency and heartbeat round trips, read without a lock. Config.Observer
// is told of every status event, join, push and heartbeat as it happens:
// the adapters phx/expvarphx and phx/otelphx (OpenTelemetry, a module of
// its own) are built on it. Secrets are redacted in every record, status
// line and Frame.String; raw Frame.Data is not.
package phx
