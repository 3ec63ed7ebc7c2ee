// Package otelphx turns a phx.Socket's events into OpenTelemetry traces and
// metrics. It is a module of its own, so that the phx module does not
// depend on OpenTelemetry.
//
//	obs, err := otelphx.New(otelphx.Config{}) // the global providers
//	sock, err := phx.Connect(ctx, url, &phx.Config{Observer: obs})
//	reg, err := obs.Register(sock) // the instruments read from Stats
//	defer reg.Unregister()
//
// # Traces
//
// One span per socket, "phx.socket", from the first connection to the
// socket's end, with an event per disconnect ("phx.disconnected": cause,
// close code), reconnect attempt ("phx.reconnect": attempt, delay),
// connection reopened ("phx.connected"), channel rejoin ("phx.rejoining")
// and slow consumer ("phx.slow_consumer"). One client span per join and
// rejoin ("phx_join room:*") under the socket span, and one per push
// ("<event> room:*") under the span of the Push's ctx, or the socket's when
// it has none. Names and attributes follow OpenTelemetry's messaging
// conventions: messaging.system "phoenix", messaging.operation.name (the
// event), messaging.operation.type "send", messaging.destination.name (the
// topic), messaging.destination.template (the topic's prefix, "room:*",
// as Phoenix routes it), messaging.message.id (the ref),
// messaging.message.body.size, server.address and server.port, plus
// phx.join_ref, phx.rejoin and phx.reply.status. A push or join that fails
// has status Error, the error recorded and error.type: "phx.reply_error",
// "timeout", "phx.server_error" (the server's channel crashed),
// "disconnected", "left", "closed", "canceled" or "_OTHER".
//
// # Metrics
//
// From events: messaging.client.operation.duration (histogram, seconds,
// the buckets of phx.HistogramBounds) and messaging.client.sent.messages
// for pushes and joins, by operation name, error.type and reply status;
// phx.client.reconnects by phx.cause; phx.client.heartbeat.duration
// (histogram, seconds). From Stats, once Register is called:
// phx.client.frames and phx.client.bytes by phx.direction,
// phx.client.pushes by phx.outcome, phx.client.joins by phx.rejoin,
// phx.client.dropped by phx.reason, and the gauges phx.client.channels,
// phx.client.subscriptions and phx.client.heartbeat.mean. Topics are not
// metric attributes: they are often one per user or room.
//
// An Observer serves one socket. Its methods return quickly and never
// block: the OpenTelemetry SDK records without waiting for exporters.
package otelphx

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/phx"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/phxgo/phxgo/phx/otelphx"

// System is the messaging.system attribute's value.
const System = "phoenix"

// Config configures an Observer. The zero value uses the global providers.
type Config struct {
	TracerProvider trace.TracerProvider // zero: otel.GetTracerProvider()
	MeterProvider  metric.MeterProvider // zero: otel.GetMeterProvider()
}

// Observer is a phx.Observer recording into OpenTelemetry. Its methods are
// safe for concurrent use, as phx calls them.
type Observer struct {
	tracer trace.Tracer
	meter  metric.Meter

	opDuration metric.Float64Histogram
	sent       metric.Int64Counter
	reconnects metric.Int64Counter
	heartbeat  metric.Float64Histogram

	sock atomic.Pointer[socketSpan]
	// baseAttrs are messaging.system, server.address and server.port, set
	// at the first connection; read-only once stored.
	baseAttrs atomic.Pointer[[]attribute.KeyValue]
}

type socketSpan struct {
	span trace.Span
	ctx  context.Context
}

var _ phx.Observer = (*Observer)(nil)

// New returns an Observer with its instruments made.
func New(cfg Config) (*Observer, error) {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &Observer{
		tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		meter:  mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL)),
	}
	bounds := phx.HistogramBounds()
	secs := make([]float64, len(bounds))
	for i, b := range bounds {
		secs[i] = b.Seconds()
	}
	var err, e error
	o.opDuration, e = o.meter.Float64Histogram("messaging.client.operation.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of pushes and joins, from the call to the reply or failure."),
		metric.WithExplicitBucketBoundaries(secs...))
	err = errors.Join(err, e)
	o.sent, e = o.meter.Int64Counter("messaging.client.sent.messages",
		metric.WithUnit("{message}"), metric.WithDescription("Pushes and joins sent, by outcome."))
	err = errors.Join(err, e)
	o.reconnects, e = o.meter.Int64Counter("phx.client.reconnects",
		metric.WithUnit("{reconnect}"), metric.WithDescription("Connections lost or failed and followed by a reconnect, by cause."))
	err = errors.Join(err, e)
	o.heartbeat, e = o.meter.Float64Histogram("phx.client.heartbeat.duration",
		metric.WithUnit("s"), metric.WithDescription("Heartbeat round trips."),
		metric.WithExplicitBucketBoundaries(secs...))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// OnStatus implements phx.Observer.
func (o *Observer) OnStatus(st phx.Status) {
	switch st := st.(type) {
	case phx.Connected:
		if s := o.sock.Load(); s != nil {
			s.span.AddEvent("phx.connected")
			return
		}
		o.start(st.URL)
	case phx.Disconnected:
		cause := phx.CauseOf(st.Err)
		attrs := []attribute.KeyValue{attribute.String("phx.cause", cause.String()), attribute.Bool("phx.reconnect", st.Reconnect)}
		if st.Code != 0 {
			attrs = append(attrs, attribute.Int("phx.close_code", st.Code))
		}
		if st.Err != nil {
			attrs = append(attrs, attribute.String("exception.message", errString(st.Err)))
		}
		o.event("phx.disconnected", attrs...)
		if st.Reconnect {
			attrs := append(slices.Clip(o.base()), attribute.String("phx.cause", cause.String()))
			o.reconnects.Add(context.Background(), 1, metric.WithAttributes(attrs...))
		}
	case phx.Reconnecting:
		o.event("phx.reconnect", attribute.Int("phx.attempt", st.Attempt), attribute.Int64("phx.delay_ms", st.Delay.Milliseconds()))
	case phx.Rejoining:
		attrs := []attribute.KeyValue{semconv.MessagingDestinationName(st.Topic), attribute.Int("phx.attempt", st.Attempt), attribute.Int64("phx.delay_ms", st.Delay.Milliseconds())}
		if st.Err != nil {
			attrs = append(attrs, attribute.String("exception.message", errString(st.Err)))
		}
		o.event("phx.rejoining", attrs...)
	case phx.SlowConsumer:
		o.event("phx.slow_consumer", semconv.MessagingDestinationName(st.Topic), attribute.Int64("phx.dropped", int64(st.Dropped)))
	case phx.Closed:
		s := o.sock.Load()
		if s == nil {
			return
		}
		if st.Err != nil {
			s.span.RecordError(st.Err)
			s.span.SetStatus(codes.Error, errString(st.Err))
		}
		s.span.End()
	}
}

// start begins the socket span at the first connection.
func (o *Observer) start(rawURL string) {
	var server []attribute.KeyValue
	if u, err := url.Parse(rawURL); err == nil {
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"ws": "80", "wss": "443", "http": "80", "https": "443"}[u.Scheme]
		}
		server = append(server, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			server = append(server, semconv.ServerPort(p))
		}
	}
	attrs := append([]attribute.KeyValue{semconv.MessagingSystemKey.String(System)}, server...)
	o.baseAttrs.Store(&attrs)
	ctx, span := o.tracer.Start(context.Background(), "phx.socket",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	if !o.sock.CompareAndSwap(nil, &socketSpan{span: span, ctx: ctx}) {
		span.End() // another socket's first connection: one Observer per socket
	}
}

func (o *Observer) event(name string, attrs ...attribute.KeyValue) {
	if s := o.sock.Load(); s != nil {
		s.span.AddEvent(name, trace.WithAttributes(attrs...))
	}
}

var systemOnly = []attribute.KeyValue{semconv.MessagingSystemKey.String(System)}

// base is the attributes every span and metric point carries; callers
// append it to a slice of their own and never change it.
func (o *Observer) base() []attribute.KeyValue {
	if p := o.baseAttrs.Load(); p != nil {
		return *p
	}
	return systemOnly
}

func (o *Observer) socketCtx() context.Context {
	if s := o.sock.Load(); s != nil {
		return s.ctx
	}
	return context.Background()
}

// OnJoin implements phx.Observer.
func (o *Observer) OnJoin(ev phx.JoinEvent) {
	o.operation(o.socketCtx(), "phx_join", ev.Topic, ev.JoinRef, ev.JoinRef, -1, ev.Start, ev.Duration, ev.Status, ev.Err,
		attribute.Bool("phx.rejoin", ev.Rejoin))
}

// OnPush implements phx.Observer.
func (o *Observer) OnPush(ev phx.PushEvent) {
	parent := ev.Context
	if parent == nil || !trace.SpanContextFromContext(parent).IsValid() {
		parent = o.socketCtx()
	}
	o.operation(parent, ev.Event, ev.Topic, ev.Ref, ev.JoinRef, ev.Size, ev.Start, ev.Duration, ev.Status, ev.Err)
}

func (o *Observer) operation(parent context.Context, event, topic, ref, joinRef string, size int,
	start time.Time, d time.Duration, status string, err error, extra ...attribute.KeyValue) {
	tmpl := Template(topic)
	// Sized for the most a span carries: no slice grows on this path.
	attrs := make([]attribute.KeyValue, 0, 16)
	attrs = append(attrs, o.base()...)
	attrs = append(attrs,
		semconv.MessagingOperationName(event),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName(topic),
		semconv.MessagingDestinationTemplate(tmpl),
	)
	if ref != "" {
		attrs = append(attrs, semconv.MessagingMessageID(ref))
	}
	if joinRef != "" {
		attrs = append(attrs, attribute.String("phx.join_ref", joinRef))
	}
	if size >= 0 {
		attrs = append(attrs, semconv.MessagingMessageBodySize(size))
	}
	if status != "" {
		attrs = append(attrs, attribute.String("phx.reply.status", status))
	}
	attrs = append(attrs, extra...)
	etype := ErrorType(err)
	if etype != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(etype))
	}
	_, span := o.tracer.Start(parent, event+" "+tmpl, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if err != nil {
		span.RecordError(err, trace.WithTimestamp(start.Add(d)))
		span.SetStatus(codes.Error, errString(err))
	}
	span.End(trace.WithTimestamp(start.Add(d)))

	// Metric points: no topic, no refs.
	mattrs := make([]attribute.KeyValue, 0, 8)
	mattrs = append(mattrs, o.base()...)
	mattrs = append(mattrs, semconv.MessagingOperationName(event), semconv.MessagingDestinationTemplate(tmpl))
	if status != "" {
		mattrs = append(mattrs, attribute.String("phx.reply.status", status))
	}
	if etype != "" {
		mattrs = append(mattrs, semconv.ErrorTypeKey.String(etype))
	}
	set := metric.WithAttributeSet(attribute.NewSet(mattrs...))
	ctx := context.Background()
	o.opDuration.Record(ctx, d.Seconds(), set)
	o.sent.Add(ctx, 1, set)
}

// OnHeartbeat implements phx.Observer.
func (o *Observer) OnHeartbeat(rtt time.Duration) {
	o.heartbeat.Record(context.Background(), rtt.Seconds(), metric.WithAttributes(o.base()...))
}

// Template is a topic's destination template: its prefix up to the first
// ':' followed by '*' ("room:*" for "room:42"), as Phoenix routes topics to
// channels; a topic without ':' is its own template.
func Template(topic string) string {
	if i := strings.IndexByte(topic, ':'); i >= 0 {
		return topic[:i+1] + "*"
	}
	return topic
}

// ErrorType is the error.type attribute for err: empty for nil.
func ErrorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.As(err, new(*phx.ReplyError)):
		return "phx.reply_error"
	case errors.Is(err, phx.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, new(*phx.ServerError)):
		return "phx.server_error"
	case errors.Is(err, phx.ErrDisconnected):
		return "disconnected"
	case errors.Is(err, phx.ErrLeft):
		return "left"
	case errors.Is(err, phx.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "_OTHER"
}

// errString is err's text with secrets redacted when phx gives it a
// String form.
func errString(err error) string {
	if s, ok := err.(interface{ String() string }); ok {
		return s.String()
	}
	return err.Error()
}
