package main

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phxgo/phxgo/phx"
)

const listenUsage = `usage: phx listen [flags] URL TOPIC...

Connects, joins every TOPIC and prints each event as one JSON line on stdout:
  {"time":"2026-01-02T15:04:05.123Z","topic":"room:lobby","event":"new_msg","payload":{"body":"hi"}}
Binary payloads are printed base64-encoded with "binary":true. Socket status
(connected, reconnecting in 2s (attempt 3), joined, rejoining ...) goes to
stderr. The socket reconnects and rejoins by itself, also after the server
closes with code 1000. A rejoin starts a new session: whatever the server
sent meanwhile was not received, and a marker line says so before the new
session's first event:
  {"time":"...","topic":"room:lobby","gap":true,"join_ref":"3","reason":"..."}
(select(.gap) in jq finds them). SIGINT or SIGTERM leaves the channels and
exits 0.

URL: ws://host:4000/socket, wss://..., http(s)://... or host:4000/socket;
"/websocket" is added unless present.

examples:
  phx listen ws://localhost:4000/socket room:lobby
  phx listen -socket user=ann -params device=cli -event new_msg http://localhost:4000/socket room:lobby room:dev
`

// eventLine is one line of listen's output.
type eventLine struct {
	Time    string          `json:"time"`
	Topic   string          `json:"topic"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Binary  bool            `json:"binary,omitempty"`
}

// gapLine marks where events may be missing: the channel rejoined.
type gapLine struct {
	Time    string `json:"time"`
	Topic   string `json:"topic"`
	Gap     bool   `json:"gap"`
	JoinRef string `json:"join_ref"`
	Reason  string `json:"reason"`
}

// sessions follows each topic's join session (join_ref) as seen in Joined
// status events and in messages, whichever comes first, and says when a
// later one begins. Join refs grow, so a message of an earlier session
// still queued is not mistaken for a new one.
type sessions map[string]string

// next records ref for topic and reports whether it starts a session after
// another.
func (s sessions) next(topic, ref string) bool {
	if ref == "" {
		return false
	}
	cur, ok := s[topic]
	if ok && !refAfter(ref, cur) {
		return false
	}
	s[topic] = ref
	return ok
}

func refAfter(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return a != b
	}
	return x > y
}

// listItem is what a topic's forwarder hands the main loop: a message, or the
// end of the subscription.
type listItem struct {
	m     phx.Message
	topic string
	end   bool
	err   error
}

type multiString []string

func (m *multiString) String() string     { return strings.Join(*m, ",") }
func (m *multiString) Set(s string) error { *m = append(*m, s); return nil }

func listen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("listen", listenUsage+"\n"+exitCodesHelp)
	var cf connFlags
	cf.register(fs)
	var events multiString
	fs.Var(&events, "event", "print only this event (repeatable; default all)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(fs, err, stdout, stderr)
	}
	out := newPrinter("phx listen", stderr)
	logf := out.errorf
	if len(pos) < 2 {
		out.usageError("need a URL and at least one TOPIC")
		return exitUsage
	}
	if err := cf.check(); err != nil {
		out.usageError("%v", err)
		return exitUsage
	}
	params, err := cf.join.value()
	if err != nil {
		logf("%v", err)
		return exitUsage
	}

	// A listener is long-running: it reconnects after a normal close too.
	cf.log = cf.logger(stderr)
	sock, release, code, err := connect(ctx, pos[0], &cf, phx.Config{ReconnectOnNormalClose: true})
	if err != nil {
		logf("%v", err)
		return code
	}
	defer release()

	items := make(chan listItem)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		_ = sock.Close()
		wg.Wait()
	}()
	if cf.verbose {
		if err := printFrames(ctx, sock, stderr, &wg); err != nil {
			logf("%v", err)
			return exitLost
		}
	}

	var topics []string // in the order given, each once: a topic joins once per socket
	for _, t := range pos[1:] {
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	chans := make([]*phx.Channel, 0, len(topics))
	for _, topic := range topics {
		ch := sock.Channel(topic, params)
		sub, err := ch.Subscribe(ctx, phx.Events(events...)) // before Join: nothing of the session is missed
		if err != nil {
			code, err := joinOutcome(topic, err)
			logf("%v", err)
			return code
		}
		if _, err := ch.Join(ctx); err != nil {
			code, err := joinOutcome(topic, err)
			logf("%v", err)
			return code
		}
		chans = append(chans, ch)
		wg.Add(1)
		go forward(topic, sub, items, done, &wg)
	}

	status := sock.Status()
	var sl statusLines
	seen := sessions{}
	gap := func(topic, ref string) error {
		return writeJSONLine(stdout, gapLine{
			Time: time.Now().UTC().Format(time.RFC3339Nano), Topic: topic, Gap: true, JoinRef: ref,
			Reason: "rejoined: events sent while the channel was away were not received",
		})
	}
	ended := 0
	for {
		select {
		case <-ctx.Done():
			leaveAll(chans, cf.timeout)
			return exitOK
		case <-sock.Done():
			logf("socket ended: %v", sock.Err())
			return exitFailure
		case st, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			if _, closed := st.(phx.Closed); closed {
				continue // reported through sock.Done
			}
			if j, ok := st.(phx.Joined); ok && seen.next(j.Topic, j.JoinRef) {
				if err := gap(j.Topic, j.JoinRef); err != nil {
					logf("writing output: %v", err)
					return exitFailure
				}
			}
			if line := sl.line(st); line != "" && !cf.logLevel.set { // else the socket logs it (or nobody: off)
				out.status("%s", line)
			}
		case it := <-items:
			if it.end {
				out.warn("%s: subscription ended: %v", it.topic, it.err)
				if ended++; ended == len(topics) {
					return exitFailure
				}
				continue
			}
			if seen.next(it.m.Topic, it.m.JoinRef) {
				if err := gap(it.m.Topic, it.m.JoinRef); err != nil {
					logf("writing output: %v", err)
					return exitFailure
				}
			}
			if err := writeJSONLine(stdout, eventLine{
				Time:    time.Now().UTC().Format(time.RFC3339Nano),
				Topic:   it.m.Topic,
				Event:   it.m.Event,
				Payload: payloadJSON(it.m.Payload, it.m.Binary),
				Binary:  it.m.Binary,
			}); err != nil {
				logf("writing output: %v", err)
				return exitFailure
			}
		}
	}
}

// forward moves one subscription's messages to the main loop, so that a
// single goroutine writes the output.
func forward(topic string, sub *phx.Subscription, out chan<- listItem, done <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for m := range sub.C() {
		select {
		case out <- listItem{m: m, topic: topic}:
		case <-done:
			return
		}
	}
	select {
	case out <- listItem{topic: topic, end: true, err: sub.Err()}:
	case <-done:
	}
}

// leaveAll leaves every channel, each bounded by timeout, concurrently so
// that shutdown takes one round trip.
func leaveAll(chans []*phx.Channel, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ch.Leave(ctx)
		}()
	}
	wg.Wait()
}
