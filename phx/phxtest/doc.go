// Package phxtest is an in-process Phoenix Channels server for tests and
// demos, in the spirit of net/http/httptest: it speaks the Phoenix wire
// protocol exactly as a real Phoenix 1.7 server does (both serializers,
// binary frames, WebSocket and long-poll), runs channel handlers written in
// Go, tracks presence, and lets a test break things on purpose.
//
// # Start here
//
// NewServer starts a server on 127.0.0.1 with a random port and closes it
// when the test ends. Give it handlers by topic pattern:
//
//	srv := phxtest.NewServer(t, phxtest.Config{
//		Channels: map[string]phxtest.Handler{"room:*": phxtest.Room{}},
//	})
//	url := srv.URL() // ws://127.0.0.1:PORT/socket; clients add /websocket
//
// With goleak, mind the order: NewServer closes the server in t.Cleanup,
// which runs after the test's deferred calls, so a deferred
// goleak.VerifyNone would report the server's goroutines. Register the
// check as a cleanup before NewServer (cleanups run in reverse), or use
// goleak.VerifyTestMain:
//
//	t.Cleanup(func() { goleak.VerifyNone(t) })
//	srv := phxtest.NewServer(t, phxtest.DemoConfig())
//
// Package phxtest does not import package testing (NewServer takes a TB,
// which *testing.T satisfies), so a program serving with it links none.
//
// DemoConfig is the application the transcripts in testdata/phoenix were
// recorded from (Room, Echo and DemoConnect); `phx serve` runs it.
//
// # Channels
//
// A Handler has Join, HandleIn, HandleInfo and Terminate, the callbacks of
// a Phoenix channel. HandleIn returns Reply (any status, any JSON
// response), ReplyBinary, NoReply, Stop, StopReply or Crash; a panic is a
// crash too. Inbound.ReplyRef answers later from any goroutine, like
// socket_ref and reply/2. Channel.Push, Broadcast and BroadcastFrom send
// to one client, to every subscriber of the topic, and to all but the
// sender; Server.Broadcast is Endpoint.broadcast and Server.Disconnect
// closes every connection of a socket id.
//
// # Presence
//
// Channel.Track, Update and Untrack keep presences per topic in Phoenix's
// shapes: presence_state is {key: {"metas": [meta, ...]}}, each meta gets
// a "phx_ref", an update adds "phx_ref_prev" and puts the key in both
// joins and leaves of one presence_diff, and a channel's presences leave
// when it stops (leave, crash, close, dropped TCP connection). The diff
// of a channel's own Track reaches it before anything it pushes after.
//
// # Orders Phoenix does not fix
//
// Where Phoenix sends two frames to a client from two processes, so in
// either order, Config.Interleave chooses: the fixed order, the swapped
// one, or a choice per occurrence from a seed (InterleaveSeeded). The
// places are a push's reply and the presence_diff its handler caused, and
// a long-poll batch's push replies and heartbeat reply. The environment
// variable PHXTEST_INTERLEAVE ("swapped", or a seed) sets it for every
// server that leaves it unset, so a whole suite can run under another
// order; Conn.Interleavings counts the choices made.
//
// # Fault injection
//
// Faults (Server.SetFaults, Conn.SetFaults) ignore heartbeats, drop or
// delay replies, end connections as soon as they open (CloseOnOpen) or
// fail the client's frames (FailFrames). A Conn can be dropped without a close frame (Drop), closed
// with any code (CloseWith), made to stop reading (PauseReading), sent raw
// or malformed frames (SendRaw) and frames with any refs (Send), and have
// a channel crashed (CrashChannel). The server can refuse the next
// connects (RefuseNext), go away and come back on the same address (Down,
// Up, Restart). Conn.Received lists the frames a client sent and Conn.Sent the frames
// the server wrote, numbered per connection; WaitConn,
// WaitJoined, WaitActive and Wait block until something happened, bounded
// by a context.
//
// # Fidelity
//
// The replay test sends every recorded client frame of testdata/phoenix to
// this server and requires the same frames back (phx_ref, online_at and
// long-poll tokens aside), and the official JavaScript client passes its
// checks against it. Observable behaviour includes: replies carry the
// channel's current join ref even when a push carries a stale one; pushes
// to topics not joined get {"reason":"unmatched topic"} with a null join
// ref; a duplicate join's reply comes before the old join's phx_close; a
// crash gives phx_error with ref = join ref; numeric refs come back as
// numbers; JSON is re-encoded as Jason does when a handler echoes through
// Canonical; close codes 1000 (answer to a client close, Disconnect), 1002
// (idle timeout), 1007 (text not UTF-8), 1009 (over MaxFrameSize), 1011
// (undecodable frame); HTTP 403 for a refused connect or a bad vsn, and no
// vsn means 1.0.0; a join beyond Config.MaxChannels (100) is refused
// {"reason":"too many channels joined"} without starting a channel; a
// phx_leave with another join_ref than the channel's is dropped. Config.Phoenix18 switches to Phoenix 1.8's phx_error
// payload and disconnect code.
//
// # Concurrency
//
// Server, Conn and Channel methods are safe for concurrent use. Each
// WebSocket connection has one reader goroutine, one writer goroutine, one
// session goroutine owning its channel table, and one goroutine per joined
// channel, where its Handler runs; a long-poll session has the same session
// and channels, fed by HTTP requests. Frames a connection sends go through
// a bounded outbox (Config.Outbox): when a client does not read, senders,
// broadcasters included, wait for it or for the connection to end. Close
// ends every connection and returns once every goroutine has stopped.
package phxtest
