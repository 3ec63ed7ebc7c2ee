package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/phxgo/phxgo/phx"
)

const pushUsage = `usage: phx push [flags] URL TOPIC EVENT [PAYLOAD]
       phx push -i [flags] URL TOPIC [EVENT]
       phx shell [flags] URL TOPIC [EVENT]

Connects, joins TOPIC, pushes EVENT with PAYLOAD (JSON; {} when omitted;
- reads it from standard input), prints the reply as one JSON line on
stdout and leaves:
  {"status":"ok","response":{...}}
The exit status tells the outcome (below). With -no-reply it sends EVENT
without waiting for a reply (for a handle_in that returns {:noreply, socket}),
prints nothing, and exits 0 once the frame is written.

With -i (or as 'phx shell') it stays joined and pushes one line of standard
input at a time, printing each reply, and the topic's events as they come,
as JSON lines; it ends at the end of input or on Ctrl-C. Each line is a
JSON payload for EVENT, or, without EVENT, an event name and an optional
JSON payload:
  new_msg {"body":"hi"}

examples:
  phx push ws://localhost:4000/socket room:lobby new_msg '{"body":"hi"}'
  echo '{"body":"hi"}' | phx push localhost:4000/socket room:lobby new_msg -
  phx push -timeout 2s -socket user=ann localhost:4000/socket room:lobby echo '[1,2]'
  phx push -no-reply ws://localhost:4000/socket room:lobby typing '{}'
  phx shell -socket user=ann localhost:4000/socket room:lobby
`

// maxStdinPayload bounds a payload read from standard input.
const maxStdinPayload = 16 << 20

// replyLine is push's output.
type replyLine struct {
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response"`
	Binary   bool            `json:"binary,omitempty"`
}

func push(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, shell bool) int {
	name := "push"
	if shell {
		name = "shell"
	}
	fs := newFlagSet(name, pushUsage+"\n"+exitCodesHelp)
	var cf connFlags
	cf.register(fs)
	noReply := fs.Bool("no-reply", false, "send without waiting for a reply (the server answers {:noreply, socket})")
	interactive := fs.Bool("i", shell, "interactive: push one line of standard input at a time")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(fs, err, stdout, stderr)
	}
	out := newPrinter("phx "+name, stderr)
	if err := cf.check(); err != nil {
		out.usageError("%v", err)
		return exitUsage
	}
	var payload json.RawMessage
	switch {
	case *interactive && (len(pos) < 2 || len(pos) > 3):
		out.usageError("need URL TOPIC [EVENT]")
		return exitUsage
	case !*interactive && (len(pos) < 3 || len(pos) > 4):
		out.usageError("need URL TOPIC EVENT [PAYLOAD]")
		return exitUsage
	case !*interactive && len(pos) == 4 && pos[3] == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxStdinPayload+1))
		if err != nil {
			out.errorf("reading the payload from standard input: %v", err)
			return exitFailure
		}
		if len(b) > maxStdinPayload {
			out.usageError("the payload on standard input exceeds %d MiB", maxStdinPayload>>20)
			return exitUsage
		}
		if b = []byte(strings.TrimSpace(string(b))); !json.Valid(b) {
			out.usageError("the payload on standard input is not JSON")
			return exitUsage
		}
		payload = b
	case !*interactive && len(pos) == 4:
		if !json.Valid([]byte(pos[3])) {
			out.usageError(`PAYLOAD must be JSON, for example '{"body":"hi"}' (got %q)`, pos[3])
			return exitUsage
		}
		payload = json.RawMessage(pos[3])
	default:
		payload = json.RawMessage(`{}`)
	}
	params, err := cf.join.value()
	if err != nil {
		out.usageError("%v", err)
		return exitUsage
	}
	topic := pos[1]

	cf.log = cf.logger(stderr)
	sock, release, code, err := connect(ctx, pos[0], &cf, phx.Config{})
	if err != nil {
		out.errorf("%v", err)
		return code
	}
	var wg sync.WaitGroup
	defer func() {
		_ = sock.Close() // ends the subscriptions, then their readers
		release()
		wg.Wait()
	}()
	if cf.verbose {
		if err := printFrames(ctx, sock, stderr, &wg); err != nil {
			out.errorf("%v", err)
			return exitLost
		}
	}
	// The socket-wide stream sees a phx_error before the channel fails its
	// pushes, so after a push ends with ErrDisconnected it tells a channel
	// that crashed on the server from a connection that dropped.
	crashes, err := sock.Subscribe(ctx, phx.Events("phx_error"))
	if err != nil {
		out.errorf("%v", err)
		return exitLost
	}

	ch := sock.Channel(topic, params)
	var events *phx.Subscription
	if *interactive {
		if events, err = ch.Subscribe(ctx); err != nil {
			out.errorf("%v", err)
			return exitLost
		}
	}
	if _, err := ch.Join(ctx); err != nil {
		code, err := joinOutcome(topic, err)
		out.errorf("%v", err)
		return code
	}
	p := &pusher{ctx: ctx, ch: ch, topic: topic, crashes: crashes, out: out, stdout: stdout, timeout: cf.timeout, noReply: *noReply}
	if *interactive {
		event := ""
		if len(pos) == 3 {
			event = pos[2]
		}
		code = p.interactive(stdin, event, events)
	} else {
		code = p.push(pos[2], payload)
	}
	if code != exitInterrupted {
		lctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
		_ = ch.Leave(lctx)
		cancel()
	}
	return code
}

// pusher pushes on a joined channel and reports each outcome.
type pusher struct {
	ctx     context.Context
	ch      *phx.Channel
	topic   string
	crashes *phx.Subscription
	out     *printer
	stdout  io.Writer
	timeout time.Duration
	noReply bool // Send: no reply is awaited
}

// push sends one push and prints its outcome; it returns the exit code.
func (p *pusher) push(event string, payload json.RawMessage) int {
	p.crashedSince() // forget crashes of earlier pushes
	var reply phx.Reply
	var err error
	if p.noReply {
		err = p.ch.Send(p.ctx, event, payload)
	} else {
		reply, err = p.ch.Push(p.ctx, event, payload)
	}
	code := pushOutcome(err)
	if code == exitLost && p.crashedSince() {
		code = exitCrashed
	}
	switch {
	case code == exitOK && p.noReply:
		return code
	case code == exitTimeout && p.noReply:
		p.out.errorf("%s %s: not sent within %v", p.topic, event, p.timeout)
		return code
	}
	switch code {
	case exitOK:
		_ = writeJSONLine(p.stdout, replyLine{reply.Status, payloadJSON(reply.Response, reply.Binary), reply.Binary})
	case exitFailure:
		re, _ := phx.AsReplyError(err)
		_ = writeJSONLine(p.stdout, replyLine{re.Status, payloadJSON(re.Response, false), false})
		p.out.warn("%s %s: reply status %q", p.topic, event, re.Status)
	case exitTimeout:
		p.out.errorf("%s %s: no reply within %v", p.topic, event, p.timeout)
	case exitCrashed:
		p.out.errorf("%s %s: channel crashed on the server before replying (it rejoins by itself)", p.topic, event)
	case exitInterrupted:
		p.out.errorf("%s %s: interrupted before the reply", p.topic, event)
	default:
		p.out.errorf("%s %s: %v", p.topic, event, err)
	}
	return code
}

// crashedSince reports whether the topic's channel crashed on the server
// since the last call.
func (p *pusher) crashedSince() bool {
	crashed := false
	for {
		select {
		case m := <-p.crashes.C():
			if m.Topic == p.topic {
				crashed = true
			}
		default:
			return crashed
		}
	}
}

// interactive pushes a line of input at a time until the input ends or
// ctx does, printing the channel's events meanwhile. It exits 0 at the end
// of input whatever the pushes did: each outcome is on its own line.
func (p *pusher) interactive(stdin io.Reader, event string, events *phx.Subscription) int {
	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	// The reader may stay blocked in a read of stdin after the command
	// returns; it ends with the input (the process's exit, or a test
	// closing its pipe) and never sends once done is closed.
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), maxStdinPayload)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	evs := events.C()
	for {
		select {
		case <-p.ctx.Done():
			return exitOK
		case m, ok := <-evs:
			if !ok {
				p.out.errorf("%s: %v", p.topic, events.Err())
				return exitLost
			}
			_ = writeJSONLine(p.stdout, eventLine{
				Time: time.Now().UTC().Format(time.RFC3339Nano), Topic: m.Topic, Event: m.Event,
				Payload: payloadJSON(m.Payload, m.Binary), Binary: m.Binary,
			})
		case line, ok := <-lines:
			if !ok {
				return exitOK
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			ev, payload, err := parseShellLine(event, line)
			if err != nil {
				p.out.warn("%v", err)
				continue
			}
			if p.push(ev, payload) == exitInterrupted {
				return exitInterrupted
			}
		}
	}
}

// parseShellLine reads "PAYLOAD" when event is fixed, else "EVENT [PAYLOAD]".
func parseShellLine(event, line string) (string, json.RawMessage, error) {
	payload := line
	if event == "" {
		var rest string
		event, rest, _ = strings.Cut(line, " ")
		payload = strings.TrimSpace(rest)
		if strings.HasPrefix(event, "{") || strings.HasPrefix(event, "[") {
			return "", nil, errors.New(`a line is EVENT [PAYLOAD], for example: new_msg {"body":"hi"}`)
		}
		if payload == "" {
			payload = "{}"
		}
	}
	if !json.Valid([]byte(payload)) {
		return "", nil, fmt.Errorf("not JSON: %s", payload)
	}
	return event, json.RawMessage(payload), nil
}

// pushOutcome maps Push's one outcome to an exit code.
func pushOutcome(err error) int {
	if err == nil {
		return exitOK
	}
	if _, ok := phx.AsReplyError(err); ok {
		return exitFailure
	}
	var se *phx.ServerError
	switch {
	case errors.As(err, &se):
		return exitCrashed
	case errors.Is(err, phx.ErrTimeout):
		return exitTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return exitInterrupted
	}
	return exitLost
}
