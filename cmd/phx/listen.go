package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phxgo/phxgo/phx"
)

const listenUsage = `usage: phx listen [flags] URL TOPIC...

Connects, joins every TOPIC and prints each event as one JSON line on stdout:
  {"time":"2026-01-02T15:04:05.123Z","topic":"room:lobby","event":"new_msg","payload":{"body":"hi"}}
Binary payloads are printed base64-encoded with "binary":true. Socket status
(connected, reconnecting, joined, rejoining ...) goes to stderr as slog text
records (-log-level; debug adds every frame), and -v prints every frame both
ways. The socket reconnects and rejoins by itself, also after the server
closes with code 1000. SIGINT or SIGTERM leaves the channels and exits 0.

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
	fs := newFlagSet("listen", listenUsage+"\n"+exitCodesHelp, stderr)
	var cf connFlags
	cf.register(fs)
	var events multiString
	fs.Var(&events, "event", "print only this event (repeatable; default all)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "phx listen: "+format+"\n", a...) }
	if len(pos) < 2 {
		logf("need a URL and at least one TOPIC (phx listen -help)")
		return exitUsage
	}
	params, err := cf.join.value()
	if err != nil {
		logf("%v", err)
		return exitUsage
	}

	// A listener is long-running: it reconnects after a normal close too.
	cf.log = cf.logger(stderr, slog.LevelInfo)
	sock, code, err := connect(pos[0], &cf, phx.Config{ReconnectOnNormalClose: true})
	if err != nil {
		logf("%v", err)
		return code
	}

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
			_ = st // the socket's logger reports it on stderr
		case it := <-items:
			if it.end {
				logf("%s: subscription ended: %v", it.topic, it.err)
				if ended++; ended == len(topics) {
					return exitFailure
				}
				continue
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
