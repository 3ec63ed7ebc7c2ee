package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phxgo/phxgo/cmd/phx/internal/hdr"
)

// progress shows a run as it goes: a line redrawn in place on a terminal,
// a plain line per interval otherwise, and with -json an interval record
// on stdout.
type progress struct {
	b        *bench
	stdout   io.Writer
	stderr   io.Writer
	tty      bool
	color    bool
	prevPush *hdr.Snapshot
	prevOK   uint64
	prevFr   uint64
	prevT    time.Time
}

func newProgress(b *bench, stdout, stderr io.Writer) *progress {
	return &progress{b: b, stdout: stdout, stderr: stderr, tty: isTerminal(stderr), color: colorOn(stderr),
		prevPush: hdr.New(), prevT: b.start}
}

// run ticks until stop is closed; then it clears its line.
func (p *progress) run(stop <-chan struct{}) {
	t := time.NewTicker(p.b.f.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.tick()
		case <-stop:
			if p.tty {
				fmt.Fprint(p.stderr, "\r\x1b[K")
			}
			return
		}
	}
}

// intervalRecord is one JSON Lines record of a run in progress. Its
// histogram holds the interval's push latencies, so intervals of runs on
// several machines merge too.
type intervalRecord struct {
	Kind       string        `json:"kind"` // "interval"
	T          float64       `json:"t_s"`
	SocketsUp  int           `json:"sockets_up"`
	Connected  int64         `json:"connected"`
	Joined     int64         `json:"joined"`
	Pushes     uint64        `json:"pushes_ok"`
	PushRate   float64       `json:"push_rate"`
	Frames     uint64        `json:"frames"`
	FrameRate  float64       `json:"frame_rate"`
	Errors     uint64        `json:"errors_total"`
	Reconnects uint64        `json:"reconnects_total"`
	Push       *hdr.Snapshot `json:"push_latency"`
}

func (p *progress) tick() {
	b := p.b
	now := time.Now()
	dt := now.Sub(p.prevT).Seconds()
	l := b.live()
	ok := b.ok.Load()
	push := b.pushH.Snapshot()
	rec := intervalRecord{
		Kind: "interval", T: now.Sub(b.start).Seconds(),
		SocketsUp: l.up, Connected: b.connected.Load(), Joined: b.joined.Load(),
		Pushes: ok - p.prevOK, PushRate: float64(ok-p.prevOK) / dt,
		Frames: l.frames - p.prevFr, FrameRate: float64(l.frames-p.prevFr) / dt,
		Errors: b.errTotal(), Reconnects: l.reconnects,
		Push: push.Since(p.prevPush),
	}
	p.prevT, p.prevOK, p.prevFr, p.prevPush = now, ok, l.frames, push

	if b.f.json {
		_ = writeJSONLine(p.stdout, rec)
	}
	// The percentiles are of the whole run so far: an interval's few
	// samples would make the line jump.
	lat, name := push, "push"
	if !b.f.pushing() {
		lat, name = b.joinH.Snapshot(), "join"
	}
	errs := fmt.Sprintf("errors %d", rec.Errors)
	if rec.Errors > 0 {
		errs = paint(p.color, ansiRed, errs)
	}
	line := fmt.Sprintf("%6.1fs  up %d/%d  joined %d/%d  pushes %.0f/s  %s p50 %s p99 %s  recv %.0f/s  %s  reconnects %d",
		rec.T, rec.SocketsUp, b.f.sockets, rec.Joined, b.f.sockets*b.f.channels, rec.PushRate,
		name, fmtLat(lat.Quantile(0.5), lat.N), fmtLat(lat.Quantile(0.99), lat.N), rec.FrameRate, errs, rec.Reconnects)
	if p.tty {
		// A line longer than the terminal wraps, and \r would then redraw
		// only its last part.
		if w := ttyWidth(p.stderr); w > 1 {
			line = truncate(line, w-1)
		}
		fmt.Fprintf(p.stderr, "\r\x1b[K%s", line)
	} else {
		fmt.Fprintf(p.stderr, "phx bench: %s\n", line)
	}
}

// fmtLat writes a latency with three significant digits; "-" when there is
// no sample.
func fmtLat(d time.Duration, n uint64) string {
	if n == 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// benchSummary is a run's result. Every field adds up across runs taken
// at once against one server (see merge): counts and rates add, histograms
// merge, times take the longest.
type benchSummary struct {
	Kind        string            `json:"kind"` // "summary"
	Target      string            `json:"target"`
	Hosts       []string          `json:"hosts"`
	Runs        int               `json:"runs"`
	Started     time.Time         `json:"started"`
	Elapsed     float64           `json:"elapsed_s"`
	Ramp        float64           `json:"ramp_s"`
	Held        float64           `json:"held_s"`
	Interrupted bool              `json:"interrupted"`
	Scenario    benchScenario     `json:"scenario"`
	Sockets     sumSockets        `json:"sockets"`
	Channels    sumChannels       `json:"channels"`
	Pushes      sumPushes         `json:"pushes"`
	Frames      sumFrames         `json:"frames"`
	Events      map[string]sumEvt `json:"events"`
	Errors      map[string]uint64 `json:"errors"`
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	Reconnects  uint64            `json:"reconnects"`
	Latency     sumLatency        `json:"latency"`
	Memory      sumMemory         `json:"memory"`
}

type benchScenario struct {
	Sockets     int      `json:"sockets"`
	Channels    int      `json:"channels"`
	Topic       string   `json:"topic"`
	ConnectRate float64  `json:"connect_rate"`
	Event       string   `json:"event,omitempty"`
	Rate        string   `json:"rate,omitempty"`
	Inflight    int      `json:"inflight,omitempty"`
	PayloadSize int      `json:"payload_bytes,omitempty"`
	Pushes      int64    `json:"pushes,omitempty"`
	Duration    string   `json:"duration,omitempty"`
	Heartbeat   string   `json:"heartbeat,omitempty"`
	Listen      []string `json:"listen,omitempty"`
}

type sumSockets struct {
	Requested int64 `json:"requested"`
	Connected int64 `json:"connected"`
	UpAtEnd   int64 `json:"up_at_end"`
}

type sumChannels struct {
	Requested int64 `json:"requested"`
	Joined    int64 `json:"joined"`
}

type sumPushes struct {
	Sent     uint64  `json:"sent"`
	OK       uint64  `json:"ok"`
	Backlog  uint64  `json:"backlog"`
	Rate     float64 `json:"rate"`
	Intended float64 `json:"intended_rate,omitempty"`
}

type sumFrames struct {
	Received uint64  `json:"received"`
	Rate     float64 `json:"rate"`
}

type sumEvt struct {
	Count uint64  `json:"count"`
	Rate  float64 `json:"rate"`
}

type sumLatency struct {
	Connect *hdr.Snapshot `json:"connect"`
	Join    *hdr.Snapshot `json:"join"`
	Push    *hdr.Snapshot `json:"push"`
}

type sumMemory struct {
	RSS        uint64 `json:"rss_bytes"`
	RSSAfterGC uint64 `json:"rss_after_gc_bytes"`
	Base       uint64 `json:"rss_before_ramp_bytes"`
	PerSocket  uint64 `json:"rss_per_socket_bytes"`
	Goroutines int    `json:"goroutines"`
}

// summary is taken at the end of the hold, before the sockets close.
func (b *bench) summary(interrupted bool) *benchSummary {
	f := b.f
	held := b.holdEnd.Sub(b.holdStart).Seconds()
	l := b.live()
	s := &benchSummary{
		Kind: "summary", Target: b.ep, Hosts: []string{hostname()}, Runs: 1,
		Started: b.start.UTC(), Elapsed: time.Since(b.start).Seconds(),
		Ramp: b.rampEnd.Sub(b.start).Seconds(), Held: held, Interrupted: interrupted,
		Scenario: benchScenario{
			Sockets: f.sockets, Channels: f.channels, Topic: f.topic, ConnectRate: f.connectRate,
			Rate: f.rate.String(), Inflight: f.inflight, Pushes: f.pushes, Listen: b.events,
		},
		Sockets:    sumSockets{Requested: int64(f.sockets), Connected: b.connected.Load(), UpAtEnd: int64(l.up)},
		Channels:   sumChannels{Requested: int64(f.sockets * f.channels), Joined: b.joined.Load()},
		Pushes:     sumPushes{Sent: b.sent.Load(), OK: b.ok.Load(), Backlog: b.backlog.Load(), Intended: b.intendedRate},
		Frames:     sumFrames{Received: l.frames},
		Events:     map[string]sumEvt{},
		Errors:     map[string]uint64{},
		Reconnects: l.reconnects,
		Latency:    sumLatency{Connect: b.connectH.Snapshot(), Join: b.joinH.Snapshot(), Push: b.pushH.Snapshot()},
		Memory:     sumMemory{RSS: b.rss, RSSAfterGC: b.rssGC, Base: b.rssBase, Goroutines: b.goroutinesAtHoldTime},
	}
	if f.pushing() {
		s.Scenario.Event = f.event
		pre, post := f.payloadParts(0, 0)
		s.Scenario.PayloadSize = len(buildPayload(pre, post, 0))
	}
	if f.duration > 0 {
		s.Scenario.Duration = f.duration.String()
	}
	if f.heartbeat != 0 {
		s.Scenario.Heartbeat = f.heartbeat.String()
	}
	if held > 0 {
		s.Pushes.Rate = float64(s.Pushes.OK) / held
	}
	if el := s.Elapsed; el > 0 {
		s.Frames.Rate = float64(l.frames) / el
	}
	for i, e := range b.events {
		n := b.eventCounts[i].Load()
		s.Events[e] = sumEvt{Count: n, Rate: float64(n) / max(s.Elapsed, 1e-9)}
	}
	for k := range b.errs {
		if n := b.errs[k].Load(); n > 0 {
			s.Errors[errKindNames[k]] = n
			if first := b.firstErr[k].Load(); first != nil {
				if s.FirstErrors == nil {
					s.FirstErrors = map[string]string{}
				}
				s.FirstErrors[errKindNames[k]] = *first
			}
		}
	}
	s.fixPerSocket()
	return s
}

func (s *benchSummary) fixPerSocket() {
	if s.Sockets.Connected > 0 {
		s.Memory.PerSocket = (s.Memory.RSSAfterGC - min(s.Memory.Base, s.Memory.RSSAfterGC)) / uint64(s.Sockets.Connected)
	}
}

// merge adds o, a run taken at the same time against the same server.
func (s *benchSummary) merge(o *benchSummary) {
	if s.Target != o.Target {
		s.Target = "several targets"
	}
	s.Hosts = append(s.Hosts, o.Hosts...)
	s.Runs += o.Runs
	if o.Started.Before(s.Started) {
		s.Started = o.Started
	}
	s.Elapsed, s.Ramp, s.Held = max(s.Elapsed, o.Elapsed), max(s.Ramp, o.Ramp), max(s.Held, o.Held)
	s.Interrupted = s.Interrupted || o.Interrupted
	s.Scenario.Sockets += o.Scenario.Sockets // the rest stays the first run's
	s.Sockets.Requested += o.Sockets.Requested
	s.Sockets.Connected += o.Sockets.Connected
	s.Sockets.UpAtEnd += o.Sockets.UpAtEnd
	s.Channels.Requested += o.Channels.Requested
	s.Channels.Joined += o.Channels.Joined
	s.Pushes.Sent += o.Pushes.Sent
	s.Pushes.OK += o.Pushes.OK
	s.Pushes.Backlog += o.Pushes.Backlog
	s.Pushes.Rate += o.Pushes.Rate
	s.Pushes.Intended += o.Pushes.Intended
	s.Frames.Received += o.Frames.Received
	s.Frames.Rate += o.Frames.Rate
	for k, v := range o.Events {
		e := s.Events[k]
		e.Count += v.Count
		e.Rate += v.Rate
		s.Events[k] = e
	}
	for k, v := range o.Errors {
		s.Errors[k] += v
	}
	for k, v := range o.FirstErrors {
		if _, ok := s.FirstErrors[k]; !ok {
			if s.FirstErrors == nil {
				s.FirstErrors = map[string]string{}
			}
			s.FirstErrors[k] = v
		}
	}
	s.Reconnects += o.Reconnects
	s.Latency.Connect.Merge(o.Latency.Connect)
	s.Latency.Join.Merge(o.Latency.Join)
	s.Latency.Push.Merge(o.Latency.Push)
	s.Memory.RSS += o.Memory.RSS
	s.Memory.Base += o.Memory.Base
	s.Memory.RSSAfterGC += o.Memory.RSSAfterGC
	s.Memory.Goroutines += o.Memory.Goroutines
	s.fixPerSocket()
}

// writeText writes the summary for people.
func (s *benchSummary) writeText(w io.Writer, color bool) {
	sc := s.Scenario
	hosts := strings.Join(s.Hosts, ", ")
	runs := "1 run"
	if s.Runs != 1 {
		runs = fmt.Sprintf("%d runs", s.Runs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("%s\t%s (%s on %s)", paint(color, ansiBold, "phx bench"), redactURLs(s.Target), runs, hosts)
	scen := fmt.Sprintf("%d sockets × %d channel%s (%s)", sc.Sockets, sc.Channels, plural(sc.Channels), sc.Topic)
	switch {
	case sc.Rate != "":
		scen += fmt.Sprintf(", open loop %s/s of %s, %d B", sc.Rate, sc.Event, sc.PayloadSize)
	case sc.Inflight > 0:
		scen += fmt.Sprintf(", closed loop %d in flight a channel of %s, %d B", sc.Inflight, sc.Event, sc.PayloadSize)
	}
	if s.Runs > 1 {
		scen += fmt.Sprintf(" (the first of %d runs, with the sockets of all)", s.Runs)
	}
	p("scenario\t%s", scen)
	phase := fmt.Sprintf("ramp %.1fs, hold %.1fs", s.Ramp, s.Held)
	if s.Interrupted {
		phase += paint(color, ansiYellow, ", interrupted")
	}
	p("phases\t%s", phase)
	p("sockets\t%d of %d connected, %d up at the end, %d reconnects", s.Sockets.Connected, s.Sockets.Requested, s.Sockets.UpAtEnd, s.Reconnects)
	p("channels\t%d of %d joined", s.Channels.Joined, s.Channels.Requested)
	if s.Pushes.Sent > 0 || sc.Event != "" {
		line := fmt.Sprintf("%d sent, %d ok, %.1f/s", s.Pushes.Sent, s.Pushes.OK, s.Pushes.Rate)
		if s.Pushes.Intended > 0 {
			line += fmt.Sprintf(" (intended %.1f/s), backlog %d", s.Pushes.Intended, s.Pushes.Backlog)
			if s.Pushes.Backlog > 0 {
				line += paint(color, ansiYellow, " (due before the end, never sent)")
			}
		}
		p("pushes\t%s", line)
	}
	p("frames\t%d received, %.1f/s", s.Frames.Received, s.Frames.Rate)
	if len(s.Events) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Events)) {
			parts = append(parts, fmt.Sprintf("%s %d (%.1f/s)", k, s.Events[k].Count, s.Events[k].Rate))
		}
		p("events\t%s", strings.Join(parts, ", "))
	}
	if len(s.Errors) == 0 {
		p("errors\t%s", paint(color, ansiGreen, "none"))
	} else {
		var parts []string
		for _, k := range errKindNames {
			if n := s.Errors[k]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, n))
			}
		}
		p("errors\t%s", paint(color, ansiRed, strings.Join(parts, ", ")))
		for _, k := range errKindNames {
			if e, ok := s.FirstErrors[k]; ok {
				p("\tfirst %s: %s", k, redactURLs(e))
			}
		}
	}
	p("latency\tcount\tp50\tp90\tp99\tp99.9\tmax\tmean")
	for _, h := range []struct {
		name string
		s    *hdr.Snapshot
	}{{"connect", s.Latency.Connect}, {"join", s.Latency.Join}, {"push", s.Latency.Push}} {
		if h.s == nil || h.s.N == 0 {
			continue
		}
		n := h.s.N
		p("  %s\t%d\t%s\t%s\t%s\t%s\t%s\t%s", h.name, n,
			fmtLat(h.s.Quantile(0.5), n), fmtLat(h.s.Quantile(0.9), n), fmtLat(h.s.Quantile(0.99), n),
			fmtLat(h.s.Quantile(0.999), n), fmtLat(h.s.Quantile(1), n), fmtLat(h.s.Mean(), n))
	}
	_ = tw.Flush()
	if s.Memory.RSS > 0 {
		fmt.Fprintf(w, "memory    RSS %.1f MiB at the end of the hold, %.1f MiB after a GC, %.1f MiB before the ramp: %.1f KiB a connected socket; %d goroutines\n",
			float64(s.Memory.RSS)/(1<<20), float64(s.Memory.RSSAfterGC)/(1<<20), float64(s.Memory.Base)/(1<<20),
			float64(s.Memory.PerSocket)/1024, s.Memory.Goroutines)
	}
}

const benchMergeUsage = `usage: phx bench merge [-json] [-histogram] FILE...

Adds up the summaries of 'phx bench -json' runs taken at the same time
against one server, from several machines: counts and rates add, latency
histograms merge (percentiles are of all the pushes, not averages of
percentiles), durations take the longest. Each FILE is a run's JSON Lines
output (its last summary record counts) or a single summary.
`

func benchMerge(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench merge", benchMergeUsage)
	asJSON := fs.Bool("json", false, "write the merged summary as JSON")
	histogram := fs.Bool("histogram", false, "draw the latency histograms after the summary")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(fs, err, stdout, stderr)
	}
	out := newPrinter("phx bench merge", stderr)
	if len(pos) == 0 {
		out.usageError("need at least one FILE")
		return exitUsage
	}
	var total *benchSummary
	for _, name := range pos {
		s, err := readSummary(name)
		if err != nil {
			out.errorf("%v", err)
			return exitFailure
		}
		if total == nil {
			total = s
		} else {
			total.merge(s)
		}
	}
	if *asJSON {
		_ = writeJSONLine(stdout, total)
		return exitOK
	}
	total.writeText(stdout, colorOn(stdout))
	if *histogram {
		total.writeHistograms(stdout)
	}
	return exitOK
}

// readSummary reads the last summary record of a file.
func readSummary(name string) (*benchSummary, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var last []byte
	for sc.Scan() {
		line := sc.Bytes()
		var k struct{ Kind string }
		if json.Unmarshal(line, &k) == nil && k.Kind == "summary" {
			last = append(last[:0], line...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if last == nil {
		return nil, fmt.Errorf("%s: no summary record (write one with phx bench -json)", name)
	}
	s := &benchSummary{}
	if err := json.Unmarshal(last, s); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if s.Latency.Connect == nil || s.Latency.Join == nil || s.Latency.Push == nil {
		return nil, errors.New(name + ": summary without its latency histograms")
	}
	if s.Events == nil {
		s.Events = map[string]sumEvt{}
	}
	if s.Errors == nil {
		s.Errors = map[string]uint64{}
	}
	return s, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeHistograms draws each non-empty latency histogram in ranges of
// powers of two (in µs), with bars scaled to the fullest range.
func (s *benchSummary) writeHistograms(w io.Writer) {
	for _, h := range []struct {
		name string
		s    *hdr.Snapshot
	}{{"connect", s.Latency.Connect}, {"join", s.Latency.Join}, {"push", s.Latency.Push}} {
		if h.s == nil || h.s.N == 0 {
			continue
		}
		writeHistogram(w, h.name, h.s)
	}
}

func writeHistogram(w io.Writer, name string, s *hdr.Snapshot) {
	// Every bucket lies within one power-of-two range: bucket k holds the
	// values of bit length k, 2^(k-1) to 2^k-1 µs.
	var counts [65]uint64
	first, last := 64, 0
	for _, b := range s.Buckets() {
		k := bits.Len64(uint64(b.Lo))
		counts[k] += b.N
		first, last = min(first, k), max(last, k)
	}
	var most uint64
	for _, c := range counts {
		most = max(most, c)
	}
	fmt.Fprintf(w, "%s latency histogram (%d values):\n", name, s.N)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	var cum uint64
	for k := first; k <= last; k++ {
		lo, hi := int64(0), int64(1)
		if k > 0 {
			lo, hi = 1<<(k-1), 1<<k
		}
		cum += counts[k]
		bar := strings.Repeat("█", int((counts[k]*40+most-1)/most))
		fmt.Fprintf(tw, "  %s\t–\t%s\t%d\t%.1f%%\t%.1f%%\t  %s\n",
			fmtLat(time.Duration(lo)*time.Microsecond, 1), fmtLat(time.Duration(hi)*time.Microsecond, 1),
			counts[k], 100*float64(counts[k])/float64(s.N), 100*float64(cum)/float64(s.N), bar)
	}
	_ = tw.Flush()
}

// truncate cuts s to n visible runes; colour escapes do not count, and
// a cut line ends with a reset so that no colour is left on.
func truncate(s string, n int) string {
	visible, inEscape := 0, false
	for at, r := range s {
		switch {
		case inEscape:
			inEscape = r != 'm'
		case r == '\x1b':
			inEscape = true
		default:
			if visible == n {
				return s[:at] + ansiReset
			}
			visible++
		}
	}
	return s
}
