package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/presence"
)

const presenceUsage = `usage: phx presence [flags] URL TOPIC

Connects, joins TOPIC and follows its presence (presence_state and
presence_diff, folded as the official JavaScript client does).

On a terminal the list is a table redrawn in place, with the socket status in
its header. Otherwise every change is one JSON line on stdout:
  {"time":"...","topic":"room:lobby","event":"join","key":"ann","metas":[{...}]}
  {"time":"...","topic":"room:lobby","event":"leave","key":"bob","metas":[{...}]}
  {"time":"...","topic":"room:lobby","event":"sync","count":2,"keys":["ann","cy"]}
and socket status goes to stderr (with -v, the frames received too; the table
shows no frames). A join that brings no meta the key did not already have (the
fold reports the diff of your own join again after presence_state, as
phoenix.js does) is not printed. SIGINT or SIGTERM leaves and exits 0.

Joining may itself make you present (phx serve tracks everyone who joins a
room: name yourself with -socket user=NAME).

examples:
  phx presence ws://localhost:4000/socket room:lobby
  phx presence -format json -socket user=watcher localhost:4000/socket room:lobby
`

// presenceLine is one JSON line of presence's output.
type presenceLine struct {
	Time  string          `json:"time"`
	Topic string          `json:"topic"`
	Event string          `json:"event"`
	Key   string          `json:"key,omitempty"`
	Metas []presence.Meta `json:"metas,omitempty"`
	Count *int            `json:"count,omitempty"`
	Keys  []string        `json:"keys,omitempty"`
}

func presenceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("presence", presenceUsage+"\n"+exitCodesHelp)
	var cf connFlags
	cf.register(fs)
	format := fs.String("format", "auto", "output: table, json, or auto (table on a terminal, json otherwise)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(fs, err, stdout, stderr)
	}
	out := newPrinter("phx presence", stderr)
	logf := out.errorf
	if len(pos) != 2 {
		out.usageError("need URL and TOPIC")
		return exitUsage
	}
	if err := cf.check(); err != nil {
		out.usageError("%v", err)
		return exitUsage
	}
	var table bool
	switch *format {
	case "auto":
		table = isTerminal(stdout)
	case "table":
		table = true
	case "json":
	default:
		out.usageError("-format must be table, json or auto")
		return exitUsage
	}
	params, err := cf.join.value()
	if err != nil {
		logf("%v", err)
		return exitUsage
	}
	topic := pos[1]

	cf.log = cf.logger(stderr)
	sock, release, code, err := connect(ctx, pos[0], &cf, phx.Config{ReconnectOnNormalClose: true})
	if err != nil {
		logf("%v", err)
		return code
	}
	defer release()
	var wg sync.WaitGroup
	defer func() {
		_ = sock.Close() // ends the frame tap, then its printer
		wg.Wait()
	}()
	if cf.verbose && !table { // frames would break the redrawn table
		if err := printFrames(ctx, sock, stderr, &wg); err != nil {
			logf("%v", err)
			return exitLost
		}
	}
	ch := sock.Channel(topic, params)
	sub, err := ch.Subscribe(ctx, phx.Events(presence.DefaultStateEvent, presence.DefaultDiffEvent))
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

	// The Machine is this goroutine's: it is fed in the order the channel
	// delivered, with each message's join session, so diffs of an earlier
	// session never mix with the current state.
	machine := presence.NewMachine(presence.Options{})
	tv := &tableView{w: stdout, topic: topic, status: "connected to " + redactURLs(sock.Endpoint()), width: termWidth()}
	if table {
		tv.draw(machine)
	}
	status := sock.Status()
	var sl statusLines
	for {
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
			_ = ch.Leave(lctx)
			cancel()
			return exitOK
		case <-sock.Done():
			logf("socket ended: %v", sock.Err())
			return exitFailure
		case st, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			line := redactURLs(sl.line(st))
			if _, closed := st.(phx.Closed); closed || line == "" {
				continue
			}
			if table {
				tv.status = line
				tv.draw(machine)
			} else if !cf.logLevel.set { // else the socket logs it (or nobody: off)
				out.status("%s", line)
			}
		case m, ok := <-sub.C():
			if !ok {
				logf("%s: subscription ended: %v", topic, sub.Err())
				return exitFailure
			}
			evs, err := machine.Apply(presence.Input{Event: m.Event, Payload: m.Payload, JoinRef: m.JoinRef})
			if err != nil {
				logf("%s: %v", topic, err)
				continue
			}
			if table {
				if len(evs) > 0 {
					tv.last = describeEvents(evs)
					tv.draw(machine)
				}
				continue
			}
			if err := writePresenceLines(stdout, topic, machine, evs); err != nil {
				logf("writing output: %v", err)
				return exitFailure
			}
		}
	}
}

func writePresenceLines(w io.Writer, topic string, m *presence.Machine, evs []presence.Event) error {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, ev := range evs {
		line := presenceLine{Time: now, Topic: topic}
		switch e := ev.(type) {
		case presence.Join:
			metas := newMetas(e)
			if len(metas) == 0 {
				continue
			}
			line.Event, line.Key, line.Metas = "join", e.Key, metas
		case presence.Leave:
			line.Event, line.Key, line.Metas = "leave", e.Key, e.Left.Metas
		case presence.Update:
			line.Event, line.Key, line.Metas = "update", e.Key, []presence.Meta{e.New}
		case presence.Sync:
			n := e.Len
			line.Event, line.Count, line.Keys = "sync", &n, m.State().Keys()
		default:
			continue
		}
		if err := writeJSONLine(w, line); err != nil {
			return err
		}
	}
	return nil
}

// describeEvents is the table's "last change" line.
func describeEvents(evs []presence.Event) string {
	var parts []string
	for _, ev := range evs {
		switch e := ev.(type) {
		case presence.Join:
			if len(newMetas(e)) > 0 {
				parts = append(parts, "+"+e.Key)
			}
		case presence.Leave:
			parts = append(parts, "-"+e.Key)
		case presence.Update:
			parts = append(parts, "~"+e.Key)
		}
	}
	if len(parts) == 0 {
		return "synced"
	}
	return strings.Join(parts, " ")
}

// tableView redraws the presence list in place with ANSI escapes: the cursor
// goes back up over the previous drawing, which is then cleared.
type tableView struct {
	w      io.Writer
	topic  string
	status string
	last   string
	width  int
	lines  int // lines of the previous drawing
}

func (t *tableView) draw(m *presence.Machine) {
	var b strings.Builder
	if t.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", t.lines)
	}
	b.WriteString("\x1b[J")
	list := m.List()
	rows := []string{
		fmt.Sprintf("%s  %d present  %s", t.topic, len(list), time.Now().Format("15:04:05")),
		"socket: " + t.status,
	}
	if t.last != "" {
		rows = append(rows, "last change: "+t.last)
	}
	keyW := len("KEY")
	for _, kp := range list {
		keyW = max(keyW, len(kp.Key))
	}
	rows = append(rows, "", fmt.Sprintf("%-*s  %5s  %s", keyW, "KEY", "METAS", "LATEST META"))
	for _, kp := range list {
		latest := ""
		if n := len(kp.Presence.Metas); n > 0 {
			latest = metaSummary(kp.Presence.Metas[n-1])
		}
		rows = append(rows, fmt.Sprintf("%-*s  %5d  %s", keyW, kp.Key, len(kp.Presence.Metas), latest))
	}
	for _, r := range rows {
		if t.width > 1 && utf8.RuneCountInString(r) >= t.width { // a wrapped line would break the redraw
			r = string([]rune(r)[:t.width-1])
		}
		b.WriteString(r)
		b.WriteByte('\n')
	}
	t.lines = len(rows)
	_, _ = io.WriteString(t.w, b.String())
}

// metaSummary is a meta without Phoenix's bookkeeping refs.
func metaSummary(meta presence.Meta) string {
	var obj map[string]any
	if meta.Decode(&obj) != nil {
		return string(meta.Raw)
	}
	delete(obj, "phx_ref")
	delete(obj, "phx_ref_prev")
	b, err := json.Marshal(obj)
	if err != nil {
		return string(meta.Raw)
	}
	return string(b)
}

// termWidth reads COLUMNS, as shells export it; 100 otherwise.
func termWidth() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 10 {
		return n
	}
	return 100
}
