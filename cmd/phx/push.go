package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/phxgo/phxgo/phx"
)

const pushUsage = `usage: phx push [flags] URL TOPIC EVENT [PAYLOAD]

Connects, joins TOPIC, pushes EVENT with PAYLOAD (JSON; {} when omitted),
prints the reply as one JSON line on stdout and leaves:
  {"status":"ok","response":{...}}
The exit status tells the outcome (below). With -no-reply it sends EVENT
without waiting for a reply (for a handle_in that returns {:noreply, socket}),
prints nothing, and exits 0 once the frame is written.

examples:
  phx push ws://localhost:4000/socket room:lobby new_msg '{"body":"hi"}'
  phx push -timeout 2s -socket user=ann localhost:4000/socket room:lobby echo '[1,2]'
  phx push -no-reply ws://localhost:4000/socket room:lobby typing '{}'
`

// replyLine is push's output.
type replyLine struct {
	Status   string          `json:"status"`
	Response json.RawMessage `json:"response"`
	Binary   bool            `json:"binary,omitempty"`
}

func push(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("push", pushUsage+"\n"+exitCodesHelp, stderr)
	var cf connFlags
	cf.register(fs)
	noReply := fs.Bool("no-reply", false, "send without waiting for a reply (the server answers {:noreply, socket})")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "phx push: "+format+"\n", a...) }
	if len(pos) < 3 || len(pos) > 4 {
		logf("need URL TOPIC EVENT [PAYLOAD] (phx push -help)")
		return exitUsage
	}
	topic, event := pos[1], pos[2]
	payload := json.RawMessage(`{}`)
	if len(pos) == 4 {
		if !json.Valid([]byte(pos[3])) {
			logf(`PAYLOAD must be JSON, for example '{"body":"hi"}' (got %q)`, pos[3])
			return exitUsage
		}
		payload = json.RawMessage(pos[3])
	}
	params, err := cf.join.value()
	if err != nil {
		logf("%v", err)
		return exitUsage
	}

	// A push prints only what went wrong unless asked for more.
	cf.log = cf.logger(stderr, slog.LevelWarn)
	sock, code, err := connect(pos[0], &cf, phx.Config{})
	if err != nil {
		logf("%v", err)
		return code
	}
	var wg sync.WaitGroup
	defer func() {
		_ = sock.Close() // ends the frame tap, then its printer
		wg.Wait()
	}()
	if cf.verbose {
		if err := printFrames(ctx, sock, stderr, &wg); err != nil {
			logf("%v", err)
			return exitLost
		}
	}

	ch := sock.Channel(topic, params)
	if _, err := ch.Join(ctx); err != nil {
		code, err := joinOutcome(topic, err)
		logf("%v", err)
		return code
	}
	var reply phx.Reply
	if *noReply {
		err = ch.Send(ctx, event, payload)
	} else {
		reply, err = ch.Push(ctx, event, payload)
	}
	code = pushOutcome(err)
	switch {
	case err == nil && *noReply:
	case err == nil:
		_ = writeJSONLine(stdout, replyLine{reply.Status, payloadJSON(reply.Response, reply.Binary), reply.Binary})
	case code == exitFailure:
		re, _ := phx.AsReplyError(err)
		_ = writeJSONLine(stdout, replyLine{re.Status, payloadJSON(re.Response, false), false})
		logf("%s %s: reply status %q", topic, event, re.Status)
	case code == exitTimeout && *noReply:
		logf("%s %s: not sent within %v", topic, event, cf.timeout)
	case code == exitTimeout:
		logf("%s %s: no reply within %v", topic, event, cf.timeout)
	default:
		logf("%s %s: %v", topic, event, err)
	}
	if code != exitInterrupted {
		lctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
		_ = ch.Leave(lctx)
		cancel()
	}
	return code
}

// pushOutcome maps Push's one outcome to an exit code.
func pushOutcome(err error) int {
	if err == nil {
		return exitOK
	}
	if _, ok := phx.AsReplyError(err); ok {
		return exitFailure
	}
	switch {
	case errors.Is(err, phx.ErrTimeout):
		return exitTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return exitInterrupted
	}
	return exitLost
}
