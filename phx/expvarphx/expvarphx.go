// Package expvarphx publishes a phx.Socket's metrics through the standard
// library's expvar, at /debug/vars: Stats as one JSON object read at each
// request, and event counts kept by an Observer. It needs nothing beyond
// the standard library.
//
//	obs := expvarphx.NewObserver("phx_events")
//	sock, err := phx.Connect(ctx, url, &phx.Config{Observer: obs})
//	...
//	expvarphx.Publish("phx", sock)
//
// It is also the model for other adapters: an Observer counts events as
// they happen, quickly and without blocking; gauges and totals are read
// from Socket.Stats when asked for.
package expvarphx

import (
	"errors"
	"expvar"
	"time"

	"github.com/phxgo/phxgo/phx"
)

// Publish publishes sock's Stats under name as an expvar.Func: counters,
// gauges, the heartbeat round trip and the two histograms (bucket bounds
// in seconds). Like expvar.Publish it panics if name is already taken.
func Publish(name string, sock *phx.Socket) {
	expvar.Publish(name, expvar.Func(func() any { return StatsMap(sock.Stats()) }))
}

// StatsMap is st as the JSON object Publish shows.
func StatsMap(st phx.Stats) map[string]any {
	by := make(map[string]uint64, phx.NumCauses)
	for c := phx.Cause(0); c < phx.NumCauses; c++ {
		by[c.String()] = st.ReconnectsBy[c]
	}
	return map[string]any{
		"received":         st.Received,
		"sent":             st.Sent,
		"bytes_received":   st.BytesReceived,
		"bytes_sent":       st.BytesSent,
		"stale":            st.Stale,
		"unrouted":         st.Unrouted,
		"malformed":        st.Malformed,
		"dropped":          st.Dropped,
		"overflowed":       st.Overflowed,
		"status_dropped":   st.StatusDropped,
		"reconnects":       st.Reconnects,
		"reconnects_by":    by,
		"pushes_sent":      st.PushesSent,
		"pushes_replied":   st.PushesReplied,
		"pushes_errored":   st.PushesErrored,
		"pushes_timed_out": st.PushesTimedOut,
		"joins":            st.Joins,
		"rejoins":          st.Rejoins,
		"channels":         st.Channels,
		"subscriptions":    st.Subscriptions,
		"heartbeat_last_s": st.HeartbeatLast.Seconds(),
		"heartbeat_mean_s": st.HeartbeatMean.Seconds(),
		"heartbeat_rtt":    histMap(st.HeartbeatRTT),
		"push_latency":     histMap(st.PushLatency),
	}
}

func histMap(h phx.Histogram) map[string]any {
	bounds := phx.HistogramBounds()
	b := make([]float64, len(bounds))
	for i, d := range bounds {
		b[i] = d.Seconds()
	}
	return map[string]any{"bounds_s": b, "counts": h.Counts[:], "count": h.Count, "sum_s": h.Sum.Seconds()}
}

// Observer counts a socket's events in an expvar.Map: "status.<kind>",
// "join.ok", "join.error", "join.timeout", "join.failed" (rejoins as
// "rejoin.*"), "push.ok", "push.error", "push.timeout", "push.failed" (no
// reply: disconnected, left, closed, cancelled) and "heartbeat". Its
// methods only add to the map's atomic counters.
type Observer struct {
	m *expvar.Map
}

var _ phx.Observer = (*Observer)(nil)

// NewObserver publishes a new expvar.Map under name and counts into it.
// Like expvar.Publish it panics if name is already taken.
func NewObserver(name string) *Observer { return &Observer{m: expvar.NewMap(name)} }

// Map is the map counted into.
func (o *Observer) Map() *expvar.Map { return o.m }

// OnStatus implements phx.Observer.
func (o *Observer) OnStatus(st phx.Status) {
	o.m.Add("status."+statusKind(st), 1)
}

// OnJoin implements phx.Observer.
func (o *Observer) OnJoin(ev phx.JoinEvent) {
	k := "join."
	if ev.Rejoin {
		k = "rejoin."
	}
	o.m.Add(k+outcome(ev.Status, ev.Err), 1)
}

// OnPush implements phx.Observer.
func (o *Observer) OnPush(ev phx.PushEvent) { o.m.Add("push."+outcome(ev.Status, ev.Err), 1) }

// OnHeartbeat implements phx.Observer.
func (o *Observer) OnHeartbeat(time.Duration) { o.m.Add("heartbeat", 1) }

func outcome(status string, err error) string {
	switch {
	case err == nil:
		return "ok"
	case status != "":
		return "error"
	case errors.Is(err, phx.ErrTimeout):
		return "timeout"
	}
	return "failed"
}

func statusKind(st phx.Status) string {
	switch st.(type) {
	case phx.Connected:
		return "connected"
	case phx.Disconnected:
		return "disconnected"
	case phx.Reconnecting:
		return "reconnecting"
	case phx.Closed:
		return "closed"
	case phx.Joined:
		return "joined"
	case phx.Rejoining:
		return "rejoining"
	case phx.ChannelEnded:
		return "channel_ended"
	case phx.SlowConsumer:
		return "slow_consumer"
	}
	return "other"
}
