package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchFlags is a bench scenario.
type benchFlags struct {
	sockets, channels int
	topic             string
	connectRate       float64
	jitter            float64
	concurrency       int
	socketParams      multiString
	token             string
	params            string
	event             string
	payload           string
	size              int
	rate              rateFlag
	inflight          int
	workers           int
	pushes            int64
	duration          time.Duration
	listen            multiString
	heartbeat         time.Duration
	timeout           time.Duration
	interval          time.Duration
	json              bool
	histogram         bool
}

// rateFlag is "R" (pushes a second in total) or "R/channel".
type rateFlag struct {
	perSecond  float64
	perChannel bool
}

func (r *rateFlag) String() string {
	if r == nil || r.perSecond == 0 {
		return ""
	}
	s := strconv.FormatFloat(r.perSecond, 'f', -1, 64)
	if r.perChannel {
		s += "/channel"
	}
	return s
}

func (r *rateFlag) Set(s string) error {
	num, per, _ := strings.Cut(s, "/")
	switch per {
	case "", "s":
		r.perChannel = false
	case "channel", "ch":
		r.perChannel = true
	default:
		return fmt.Errorf("%q: want R or R/channel", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q: the rate must be a positive number", s)
	}
	r.perSecond = v
	return nil
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&b.sockets, "sockets", 1, "number of sockets")
	fs.IntVar(&b.channels, "channels", 1, "channels joined on each socket")
	fs.StringVar(&b.topic, "topic", "room:{socket}:{channel}", "topic template")
	fs.Float64Var(&b.connectRate, "connect-rate", 0, "sockets opened a second during the ramp (0: as fast as -concurrency allows)")
	fs.Float64Var(&b.jitter, "jitter", 0.1, "randomise the ramp's spacing by ± this fraction")
	fs.IntVar(&b.concurrency, "concurrency", 64, "connects and joins under way at once during the ramp")
	fs.Var(&b.socketParams, "socket", "connect parameter k=v, a template (repeatable)")
	fs.StringVar(&b.token, "token", "", "auth token sent in Sec-WebSocket-Protocol (Phoenix 1.8)")
	fs.StringVar(&b.params, "params", "{}", "join payload template (JSON)")
	fs.StringVar(&b.event, "event", "", "event to push (needed by -rate and -inflight)")
	fs.StringVar(&b.payload, "payload", `{"seq":{seq},"pad":"{pad}"}`, "push payload template (JSON)")
	fs.IntVar(&b.size, "size", 0, "pad the payload's {pad} so that it is about this many bytes")
	fs.Var(&b.rate, "rate", "open loop: pushes a second in total, or R/channel on each channel")
	fs.IntVar(&b.inflight, "inflight", 0, "closed loop: pushes in flight on each channel")
	fs.IntVar(&b.workers, "workers", 1000, "open loop: pushes in flight at most in total (later sends wait, and their wait counts)")
	fs.Int64Var(&b.pushes, "pushes", 0, "end the hold after this many pushes (0: no limit)")
	fs.DurationVar(&b.duration, "duration", 0, "hold time after the ramp (default 10s, unlimited with -pushes)")
	fs.Var(&b.listen, "listen", "count this broadcast event (repeatable, or comma-separated)")
	fs.DurationVar(&b.heartbeat, "heartbeat", 0, "heartbeat interval (default 30s)")
	fs.DurationVar(&b.timeout, "timeout", 10*time.Second, "connect, join and push timeout")
	fs.DurationVar(&b.interval, "interval", time.Second, "progress and JSON Lines interval")
	fs.BoolVar(&b.json, "json", false, "JSON Lines on stdout: a record per interval, then the summary")
	fs.BoolVar(&b.histogram, "histogram", false, "draw the latency histograms after the summary")
}

func (b *benchFlags) check() error {
	switch {
	case b.sockets < 1:
		return errors.New("-sockets must be at least 1")
	case b.channels < 0:
		return errors.New("-channels must not be negative")
	case b.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case b.connectRate < 0:
		return errors.New("-connect-rate must not be negative")
	case b.jitter < 0 || b.jitter >= 1:
		return errors.New("-jitter must be in [0, 1)")
	case b.timeout <= 0:
		return fmt.Errorf("-timeout must be positive (got %v)", b.timeout)
	case b.interval <= 0:
		return fmt.Errorf("-interval must be positive (got %v)", b.interval)
	case b.duration < 0:
		return errors.New("-duration must not be negative")
	case b.pushes < 0:
		return errors.New("-pushes must not be negative")
	case b.inflight < 0:
		return errors.New("-inflight must not be negative")
	case b.workers < 1:
		return errors.New("-workers must be at least 1")
	case b.rate.perSecond > 0 && b.inflight > 0:
		return errors.New("-rate (open loop) and -inflight (closed loop) exclude each other")
	case (b.rate.perSecond > 0 || b.inflight > 0) && b.event == "":
		return errors.New("-rate and -inflight push -event: name it")
	case (b.rate.perSecond > 0 || b.inflight > 0) && b.channels == 0:
		return errors.New("pushes need -channels of at least 1")
	case b.size < 0:
		return errors.New("-size must not be negative")
	}
	if b.duration == 0 && b.pushes == 0 {
		b.duration = 10 * time.Second
	}
	if _, err := b.joinParams(0, 0); err != nil {
		return fmt.Errorf("-params: %v", err)
	}
	if b.pushing() {
		pre, post := b.payloadParts(0, 0)
		if p := buildPayload(pre, post, 0); !json.Valid(p) {
			return fmt.Errorf("-payload is not JSON once filled in: %s", p)
		}
	}
	for _, kv := range b.socketParams {
		if _, err := parsePairs(kv); err != nil {
			return fmt.Errorf("-socket: %v", err)
		}
	}
	return nil
}

func (b *benchFlags) pushing() bool { return b.rate.perSecond > 0 || b.inflight > 0 }

func (b *benchFlags) events() []string {
	var out []string
	for _, l := range b.listen {
		for e := range strings.SplitSeq(l, ",") {
			if e = strings.TrimSpace(e); e != "" && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

func fill(tmpl string, socket, channel int) string {
	return strings.NewReplacer("{socket}", strconv.Itoa(socket), "{channel}", strconv.Itoa(channel)).Replace(tmpl)
}

func (b *benchFlags) joinParams(socket, channel int) (json.RawMessage, error) {
	p := fill(b.params, socket, channel)
	if !json.Valid([]byte(p)) {
		return nil, fmt.Errorf("not JSON once filled in: %s", p)
	}
	return json.RawMessage(p), nil
}

func (b *benchFlags) connectParams(socket int) url.Values {
	v := url.Values{}
	for _, kv := range b.socketParams {
		pairs, _ := parsePairs(kv)
		for _, p := range pairs {
			v.Add(p[0], fill(p[1], socket, 0))
		}
	}
	return v
}

// payloadParts splits a channel's payload around {seq}, with {pad} filled,
// so that a push only appends its number.
func (b *benchFlags) payloadParts(socket, channel int) (pre, post []byte) {
	p := fill(b.payload, socket, channel)
	if n := b.size - len(strings.ReplaceAll(strings.ReplaceAll(p, "{pad}", ""), "{seq}", "0")); n > 0 {
		p = strings.Replace(p, "{pad}", strings.Repeat("x", n), 1)
	}
	p = strings.ReplaceAll(p, "{pad}", "")
	before, after, ok := strings.Cut(p, "{seq}")
	if !ok {
		return []byte(p), nil
	}
	return []byte(before), []byte(strings.ReplaceAll(after, "{seq}", "0"))
}

// buildPayload puts seq between a payload's parts; post is nil when the
// template has no {seq}.
func buildPayload(pre, post []byte, seq uint64) []byte {
	p := make([]byte, 0, len(pre)+len(post)+20)
	p = append(p, pre...)
	if post != nil {
		p = strconv.AppendUint(p, seq, 10)
		p = append(p, post...)
	}
	return p
}

// Error kinds, in the order the summary lists them.
const (
	errRefusedUpgrade = iota
	errConnect
	errRefusedJoin
	errTimeout
	errDisconnect
	errReply
	errOther
	numErrKinds
)

var errKindNames = [numErrKinds]string{"refused_upgrade", "connect", "refused_join", "timeout", "disconnect", "reply_error", "other"}
