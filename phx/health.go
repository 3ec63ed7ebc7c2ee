package phx

// proveHealthy resets the reconnect backoff: the open connection has
// answered a frame the client sent (a heartbeat, a join, a push), so it
// carries frames both ways and the server behind it works.
//
// phoenix.js resets its backoff as soon as a connection opens. A server that
// accepts and then fails at once (a proxy that upgrades and drops, a
// long-poll session whose first POST is refused) then gets a reconnect every
// first step (10 ms) forever, each leaving work on the server. Here such a
// connection counts as a failed attempt and the delays follow the schedule.
// A connection that never answers (heartbeats disabled, no channel) does not
// reset it either: its next loss waits the schedule's next step, at most its
// last one.
//
// a.attempt is 0 exactly when the backoff is fresh: both advance together
// in onLost.
func (a *sockActor) proveHealthy() {
	if a.attempt > 0 {
		a.bo.Reset()
		a.attempt = 0
	}
}
