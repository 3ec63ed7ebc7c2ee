package otelphx

import (
	"context"
	"slices"

	"github.com/phxgo/phxgo/phx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Register makes the instruments read from sock.Stats at each collection:
// frames, bytes, pushes, joins, drops, channels, subscriptions and the
// heartbeat's mean round trip. Unregister the result when the socket is
// done with.
func (o *Observer) Register(sock *phx.Socket) (metric.Registration, error) {
	m := o.meter
	frames, err1 := m.Int64ObservableCounter("phx.client.frames", metric.WithUnit("{frame}"),
		metric.WithDescription("Frames sent and received, by phx.direction."))
	bytes, err2 := m.Int64ObservableCounter("phx.client.bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes of the frames sent and received, by phx.direction."))
	pushes, err3 := m.Int64ObservableCounter("phx.client.pushes", metric.WithUnit("{push}"),
		metric.WithDescription("Pushes by phx.outcome: sent, replied, errored, timed_out."))
	joins, err4 := m.Int64ObservableCounter("phx.client.joins", metric.WithUnit("{join}"),
		metric.WithDescription("Channels joined, by phx.rejoin."))
	dropped, err5 := m.Int64ObservableCounter("phx.client.dropped", metric.WithUnit("{message}"),
		metric.WithDescription("Messages and events dropped, by phx.reason."))
	channels, err6 := m.Int64ObservableUpDownCounter("phx.client.channels", metric.WithUnit("{channel}"),
		metric.WithDescription("Channels joined now."))
	subs, err7 := m.Int64ObservableUpDownCounter("phx.client.subscriptions", metric.WithUnit("{subscription}"),
		metric.WithDescription("Subscriptions open now."))
	hbMean, err8 := m.Float64ObservableGauge("phx.client.heartbeat.mean", metric.WithUnit("s"),
		metric.WithDescription("Exponentially weighted mean heartbeat round trip."))
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
		if err != nil {
			return nil, err
		}
	}
	with := func(extra ...attribute.KeyValue) metric.ObserveOption {
		return metric.WithAttributes(append(slices.Clip(o.base()), extra...)...)
	}
	dir := func(d string) metric.ObserveOption { return with(attribute.String("phx.direction", d)) }
	return m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		st := sock.Stats()
		ob.ObserveInt64(frames, int64(st.Sent), dir("sent"))
		ob.ObserveInt64(frames, int64(st.Received), dir("received"))
		ob.ObserveInt64(bytes, int64(st.BytesSent), dir("sent"))
		ob.ObserveInt64(bytes, int64(st.BytesReceived), dir("received"))
		for _, p := range []struct {
			k string
			v uint64
		}{{"sent", st.PushesSent}, {"replied", st.PushesReplied}, {"errored", st.PushesErrored}, {"timed_out", st.PushesTimedOut}} {
			ob.ObserveInt64(pushes, int64(p.v), with(attribute.String("phx.outcome", p.k)))
		}
		ob.ObserveInt64(joins, int64(st.Joins), with(attribute.Bool("phx.rejoin", false)))
		ob.ObserveInt64(joins, int64(st.Rejoins), with(attribute.Bool("phx.rejoin", true)))
		for _, d := range []struct {
			k string
			v uint64
		}{{"subscription", st.Dropped}, {"overflow", st.Overflowed}, {"stale", st.Stale}, {"unrouted", st.Unrouted},
			{"malformed", st.Malformed}, {"status", st.StatusDropped}} {
			ob.ObserveInt64(dropped, int64(d.v), with(attribute.String("phx.reason", d.k)))
		}
		ob.ObserveInt64(channels, st.Channels, with())
		ob.ObserveInt64(subs, st.Subscriptions, with())
		ob.ObserveFloat64(hbMean, st.HeartbeatMean.Seconds(), with())
		return nil
	}, frames, bytes, pushes, joins, dropped, channels, subs, hbMean)
}
