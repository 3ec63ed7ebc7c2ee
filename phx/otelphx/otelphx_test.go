package otelphx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/otelphx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scripted answers pushes by their event: ok, error, noreply (never), crash.
var scripted = phxtest.HandlerFuncs{
	JoinFunc: func(context.Context, *phxtest.Channel, json.RawMessage) (any, error) { return nil, nil },
	InFunc: func(_ context.Context, _ *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
		switch in.Event {
		case "ok":
			return phxtest.Reply("ok", map[string]int{"n": 1})
		case "error":
			return phxtest.Reply("error", map[string]string{"reason": "nope"})
		case "crash":
			return phxtest.Crash()
		}
		return phxtest.NoReply()
	},
}

func waitJoined(t *testing.T, ctx context.Context, sock *phx.Socket, rejoins uint64) {
	t.Helper()
	for {
		select {
		case st, ok := <-sock.Status():
			if !ok {
				t.Fatal("status closed")
			}
			if _, is := st.(phx.Joined); is && sock.Stats().Rejoins == rejoins {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no rejoin %d", rejoins)
		}
	}
}

// spanLine is a span as the test compares it.
func spanLine(s sdktrace.ReadOnlySpan) string {
	var attrs []string
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "server.port", "messaging.message.id", "phx.join_ref":
			attrs = append(attrs, string(kv.Key)+"=*")
			continue
		}
		attrs = append(attrs, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(attrs)
	line := fmt.Sprintf("%s kind=%s status=%s %s", s.Name(), s.SpanKind(), s.Status().Code, strings.Join(attrs, " "))
	if s.Status().Code == codes.Error {
		line += " | " + s.Status().Description
	}
	for _, e := range s.Events() {
		var ea []string
		for _, kv := range e.Attributes {
			v := kv.Value.String()
			if e.Name == "phx.disconnected" && kv.Key == "exception.message" {
				// The text after the code is the transport's own.
				if i := strings.Index(v, "1006: "); i >= 0 {
					v = v[:i+4] + ": …"
				}
			}
			ea = append(ea, string(kv.Key)+"="+v)
		}
		sort.Strings(ea)
		line += "\n  event " + e.Name + " " + strings.Join(ea, " ")
	}
	return line
}

func TestOpenTelemetryScriptedSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	obs, err := otelphx.New(otelphx.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	srv := phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"s:*": scripted}})
	sock, err := phx.Connect(ctx, srv.URL(), &phx.Config{
		Observer:          obs,
		HeartbeatInterval: -1,
		Timeout:           2 * time.Second,
		Rejoin:            func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) },
		Reconnect:         func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Millisecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	reg, err := obs.Register(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	// The caller's span parents its pushes.
	pctx, parent := tp.Tracer("test").Start(ctx, "caller")
	ch := sock.Channel("s:1", nil)
	if _, err := ch.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(pctx, "ok", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Push(pctx, "error", nil); err == nil {
		t.Fatal("no error reply")
	}
	if _, err := ch.Push(ctx, "noreply", nil, phx.WithTimeout(20*time.Millisecond)); !errors.Is(err, phx.ErrTimeout) {
		t.Fatal(err)
	}
	if _, err := ch.Push(ctx, "crash", nil); !errors.Is(err, phx.ErrDisconnected) {
		t.Fatal(err)
	}
	waitJoined(t, ctx, sock, 1)
	c, err := srv.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.Drop()
	waitJoined(t, ctx, sock, 2)
	parent.End()

	// Metrics, before the channel is left.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	st := sock.Stats()
	got := points(rm)
	want := map[string]string{
		`messaging.client.operation.duration{messaging.destination.template=s:*,messaging.operation.name=phx_join,messaging.system=phoenix,phx.reply.status=ok}`:                            "count=3",
		`messaging.client.operation.duration{messaging.destination.template=s:*,messaging.operation.name=ok,messaging.system=phoenix,phx.reply.status=ok}`:                                  "count=1",
		`messaging.client.operation.duration{error.type=phx.reply_error,messaging.destination.template=s:*,messaging.operation.name=error,messaging.system=phoenix,phx.reply.status=error}`: "count=1",
		`messaging.client.operation.duration{error.type=timeout,messaging.destination.template=s:*,messaging.operation.name=noreply,messaging.system=phoenix}`:                              "count=1",
		`messaging.client.operation.duration{error.type=phx.server_error,messaging.destination.template=s:*,messaging.operation.name=crash,messaging.system=phoenix}`:                       "count=1",
		`messaging.client.sent.messages{messaging.destination.template=s:*,messaging.operation.name=phx_join,messaging.system=phoenix,phx.reply.status=ok}`:                                 "3",
		`messaging.client.sent.messages{messaging.destination.template=s:*,messaging.operation.name=ok,messaging.system=phoenix,phx.reply.status=ok}`:                                       "1",
		`messaging.client.sent.messages{error.type=phx.reply_error,messaging.destination.template=s:*,messaging.operation.name=error,messaging.system=phoenix,phx.reply.status=error}`:      "1",
		`messaging.client.sent.messages{error.type=timeout,messaging.destination.template=s:*,messaging.operation.name=noreply,messaging.system=phoenix}`:                                   "1",
		`messaging.client.sent.messages{error.type=phx.server_error,messaging.destination.template=s:*,messaging.operation.name=crash,messaging.system=phoenix}`:                            "1",
		`phx.client.reconnects{messaging.system=phoenix,phx.cause=error}`:                                                                                                                   "1",
		`phx.client.frames{messaging.system=phoenix,phx.direction=sent}`:                                                                                                                    fmt.Sprint(st.Sent),
		`phx.client.frames{messaging.system=phoenix,phx.direction=received}`:                                                                                                                fmt.Sprint(st.Received),
		`phx.client.bytes{messaging.system=phoenix,phx.direction=sent}`:                                                                                                                     fmt.Sprint(st.BytesSent),
		`phx.client.bytes{messaging.system=phoenix,phx.direction=received}`:                                                                                                                 fmt.Sprint(st.BytesReceived),
		`phx.client.pushes{messaging.system=phoenix,phx.outcome=sent}`:                                                                                                                      "4",
		`phx.client.pushes{messaging.system=phoenix,phx.outcome=replied}`:                                                                                                                   "1",
		`phx.client.pushes{messaging.system=phoenix,phx.outcome=errored}`:                                                                                                                   "1",
		`phx.client.pushes{messaging.system=phoenix,phx.outcome=timed_out}`:                                                                                                                 "1",
		`phx.client.joins{messaging.system=phoenix,phx.rejoin=false}`:                                                                                                                       "1",
		`phx.client.joins{messaging.system=phoenix,phx.rejoin=true}`:                                                                                                                        "2",
		`phx.client.dropped{messaging.system=phoenix,phx.reason=subscription}`:                                                                                                              "0",
		`phx.client.dropped{messaging.system=phoenix,phx.reason=overflow}`:                                                                                                                  "0",
		`phx.client.dropped{messaging.system=phoenix,phx.reason=stale}`:                                                                                                                     fmt.Sprint(st.Stale),
		`phx.client.dropped{messaging.system=phoenix,phx.reason=unrouted}`:                                                                                                                  fmt.Sprint(st.Unrouted),
		`phx.client.dropped{messaging.system=phoenix,phx.reason=malformed}`:                                                                                                                 "0",
		`phx.client.dropped{messaging.system=phoenix,phx.reason=status}`:                                                                                                                    "0",
		`phx.client.channels{messaging.system=phoenix}`:                                                                                                                                     "1",
		`phx.client.subscriptions{messaging.system=phoenix}`:                                                                                                                                "0",
		`phx.client.heartbeat.mean{messaging.system=phoenix}`:                                                                                                                               "0",
	}
	if st.Sent == 0 || st.Received == 0 || st.BytesSent == 0 || st.BytesReceived == 0 {
		t.Fatalf("stats %+v", st)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected point %s = %s", k, v)
		}
	}

	if err := ch.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	sock.Close()

	spans := rec.Ended()
	var lines []string
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		lines = append(lines, spanLine(s))
		byName[s.Name()] = s
	}
	const common = "messaging.destination.name=s:1 messaging.destination.template=s:* messaging.message.id=*"
	wantSpans := []string{
		"phx_join s:* kind=client status=Unset " + common + " messaging.operation.name=phx_join messaging.operation.type=send messaging.system=phoenix phx.join_ref=* phx.rejoin=false phx.reply.status=ok server.address=127.0.0.1 server.port=*",
		"ok s:* kind=client status=Unset " + common + " messaging.message.body.size=7 messaging.operation.name=ok messaging.operation.type=send messaging.system=phoenix phx.join_ref=* phx.reply.status=ok server.address=127.0.0.1 server.port=*",
		"error s:* kind=client status=Error " + common + " error.type=phx.reply_error messaging.message.body.size=0 messaging.operation.name=error messaging.operation.type=send messaging.system=phoenix phx.join_ref=* phx.reply.status=error server.address=127.0.0.1 server.port=* | phx: reply \"error\": {\"reason\":\"nope\"}\n  event exception exception.message=phx: reply \"error\": {\"reason\":\"nope\"} exception.type=*phx.ReplyError",
		"noreply s:* kind=client status=Error " + common + " error.type=timeout messaging.message.body.size=0 messaging.operation.name=noreply messaging.operation.type=send messaging.system=phoenix phx.join_ref=* server.address=127.0.0.1 server.port=* | phx: timeout\n  event exception exception.message=phx: timeout exception.type=*errors.errorString",
		"crash s:* kind=client status=Error " + common + " error.type=phx.server_error messaging.message.body.size=0 messaging.operation.name=crash messaging.operation.type=send messaging.system=phoenix phx.join_ref=* server.address=127.0.0.1 server.port=* | phx: disconnected before reply: phx: channel s:1 errored on the server: {}\n  event exception exception.message=phx: disconnected before reply: phx: channel s:1 errored on the server: {} exception.type=*fmt.wrapErrors",
		"phx_join s:* kind=client status=Unset " + common + " messaging.operation.name=phx_join messaging.operation.type=send messaging.system=phoenix phx.join_ref=* phx.rejoin=true phx.reply.status=ok server.address=127.0.0.1 server.port=*",
		"phx_join s:* kind=client status=Unset " + common + " messaging.operation.name=phx_join messaging.operation.type=send messaging.system=phoenix phx.join_ref=* phx.rejoin=true phx.reply.status=ok server.address=127.0.0.1 server.port=*",
		"caller kind=internal status=Unset ",
		"phx.socket kind=client status=Unset messaging.system=phoenix server.address=127.0.0.1 server.port=*" +
			"\n  event phx.rejoining exception.message=phx: channel s:1 errored on the server: {} messaging.destination.name=s:1 phx.attempt=1 phx.delay_ms=10" +
			"\n  event phx.disconnected exception.message=phx: connection closed with code 1006: … phx.cause=error phx.close_code=1006 phx.reconnect=true" +
			"\n  event phx.reconnect phx.attempt=1 phx.delay_ms=10" +
			"\n  event phx.connected ",
	}
	for i, w := range wantSpans {
		wantSpans[i] = sortAttrs(w)
	}
	if strings.Join(lines, "\n") != strings.Join(wantSpans, "\n") {
		t.Fatalf("spans:\n%s\n\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantSpans, "\n"))
	}
	// Parents: pushes made with the caller's span under it, the others and
	// the joins under the socket's span.
	sockSpan := spans[len(spans)-1].SpanContext()
	callerSpan := spans[len(spans)-2].SpanContext()
	for i, s := range spans[:len(spans)-2] {
		want := sockSpan
		if i == 1 || i == 2 {
			want = callerSpan
		}
		if s.Parent().SpanID() != want.SpanID() || s.SpanContext().TraceID() != want.TraceID() {
			t.Errorf("span %d %s: parent %v, want %v", i, s.Name(), s.Parent().SpanID(), want.SpanID())
		}
		if s.EndTime().Before(s.StartTime()) {
			t.Errorf("span %d ends before it starts", i)
		}
	}
}

// points flattens the collected metrics to name{attrs} → value (sums and
// gauges) or count=N (histograms).
func points(rm metricdata.ResourceMetrics) map[string]string {
	out := map[string]string{}
	key := func(name string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			if a.Key == "server.address" || a.Key == "server.port" {
				continue
			}
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		sort.Strings(kv)
		return name + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = fmt.Sprint(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = fmt.Sprint(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = fmt.Sprintf("count=%d", p.Count)
				}
			default:
				out[m.Name] = fmt.Sprintf("%T", d)
			}
		}
	}
	return out
}

// sortAttrs sorts the attributes of a span line's first line, written in
// any order: the words between "status=X" and " | " or the line's end.
func sortAttrs(line string) string {
	head, rest, _ := strings.Cut(line, "\n")
	desc := ""
	if i := strings.Index(head, " | "); i >= 0 {
		head, desc = head[:i], head[i:]
	}
	f := strings.Fields(head)
	n := 0
	for n < len(f) && !strings.HasPrefix(f[n], "status=") {
		n++
	}
	attrs := f[n+1:]
	sort.Strings(attrs)
	out := strings.Join(f[:n+1], " ") + " " + strings.Join(attrs, " ") + desc
	if rest != "" {
		out += "\n" + rest
	}
	return out
}
