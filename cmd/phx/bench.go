package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/cmd/phx/internal/hdr"
	"github.com/phxgo/phxgo/phx"
)

const benchUsage = `usage: phx bench [flags] URL
       phx bench merge [-json] [-histogram] FILE...

Load-tests a Phoenix Channels server. Three phases:
  ramp   open -sockets sockets (at -connect-rate a second, with -jitter;
         -concurrency dials at most at once) and join -channels topics on
         each, named by -topic
  hold   keep them for -duration (or until -pushes pushes have replied),
         pushing -event if -rate or -inflight asks, counting the -listen
         events the server broadcasts
  close  close every socket, print the summary
Ctrl-C ends the phase under way and still prints the summary.

Pushes: -rate R is open loop, R pushes a second in total ("R/channel": R
on every channel), each timed from the moment the schedule meant to send it,
so a server that stalls shows in the latency instead of slowing the load
(coordinated omission); sends the schedule could not make before the end are
reported as backlog. -inflight K is closed loop: K pushes in flight on every
channel, each timed from its send.

Templates: -topic, -socket values, -params and -payload may hold {socket}
and {channel} (0-based); -payload also {seq} (a number) and {pad} (x's,
filled so the payload is about -size bytes).

Output: a live line on a terminal (plain lines otherwise) on stderr, then a
summary on stdout. -json writes JSON Lines instead: one record per interval,
then the summary; 'phx bench merge' adds up the summaries of runs taken on
several machines at once against one server.

examples:
  phx bench -sockets 10000 -duration 60s ws://localhost:4000/socket
  phx bench -sockets 100 -channels 10 -event echo -rate 2000 -size 256 localhost:4000/socket
  phx bench -sockets 10 -event echo -inflight 4 -pushes 100000 -json localhost:4000/socket > a.json
  phx bench merge a.json b.json
`

// errKind classifies an outcome; -1 for one that is no error of the server's
// (the run was interrupted).
func errKind(err error, joining bool) int {
	var de *phx.DialError
	switch {
	case errors.Is(err, context.Canceled):
		return -1
	case errors.As(err, &de) && de.Status != 0:
		return errRefusedUpgrade
	case errors.As(err, &de):
		return errConnect
	case errors.Is(err, phx.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	}
	if _, ok := phx.AsReplyError(err); ok {
		if joining {
			return errRefusedJoin
		}
		return errReply
	}
	if errors.Is(err, phx.ErrDisconnected) || errors.Is(err, phx.ErrClosed) {
		return errDisconnect
	}
	return errOther
}

// bench is one run. Counters are atomics: the ramp's, the pushers' and the
// listeners' goroutines all add to them while the progress loop reads.
type bench struct {
	f      benchFlags
	ep     string
	events []string

	socks []atomic.Pointer[benchSock] // published once connected
	chans [][]benchChan               // by socket; written by its opener, read after the ramp

	connectH, joinH, pushH hdr.Histogram

	connected, joined    atomic.Int64
	sent, ok, backlog    atomic.Uint64
	interrupted          atomic.Uint64
	errs                 [numErrKinds]atomic.Uint64
	eventCounts          []atomic.Uint64
	firstErr             [numErrKinds]atomic.Pointer[string]
	listeners            sync.WaitGroup
	start, holdStart     time.Time
	holdEnd              time.Time
	rampEnd              time.Time
	intendedRate         float64
	rss, rssGC, rssBase  uint64
	goroutinesAtHoldTime int
}

type benchSock struct {
	s       *phx.Socket
	release func() // after Close: see dialSocket
}

type benchChan struct {
	ch        *phx.Channel
	pre, post []byte
}

func (b *bench) fail(kind int, err error) {
	if kind < 0 {
		b.interrupted.Add(1)
		return
	}
	b.errs[kind].Add(1)
	if b.firstErr[kind].Load() == nil {
		s := redactURLs(err.Error())
		b.firstErr[kind].CompareAndSwap(nil, &s)
	}
}

// open connects socket i and joins its channels, recording each latency.
func (b *bench) open(ctx context.Context, i int) {
	cfg := phx.Config{
		Params:                 b.f.connectParams(i),
		AuthToken:              b.f.token,
		Timeout:                b.f.timeout,
		HeartbeatInterval:      b.f.heartbeat,
		ReconnectOnNormalClose: true, // a server that closes is a loss to count, not an end
		ReconnectJitter:        0.2,  // 10,000 sockets must not come back in lockstep
		SubscriptionBuffer:     1024, // -listen's counter reads as fast as it can
	}
	handshakeTimeout(&cfg, b.f.timeout)
	dctx, cancel := context.WithTimeout(ctx, b.f.timeout)
	t0 := time.Now()
	sock, release, err := dialSocket(dctx, b.ep, &cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		b.fail(errKind(err, false), err)
		return
	}
	b.connectH.Record(time.Since(t0))
	b.connected.Add(1)
	b.socks[i].Store(&benchSock{s: sock, release: release})

	if len(b.events) > 0 {
		sub, err := sock.Subscribe(ctx, phx.Events(b.events...))
		if err != nil {
			b.fail(errKind(err, false), err)
			return
		}
		b.listeners.Add(1)
		go b.count(sub)
	}
	var joined []benchChan
	for c := range b.f.channels {
		params, _ := b.f.joinParams(i, c)
		ch := sock.Channel(fill(b.f.topic, i, c), params)
		t0 := time.Now()
		if _, err := ch.Join(ctx); err != nil {
			b.fail(errKind(err, true), err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		b.joinH.Record(time.Since(t0))
		b.joined.Add(1)
		bc := benchChan{ch: ch}
		if b.f.pushing() {
			bc.pre, bc.post = b.f.payloadParts(i, c)
		}
		joined = append(joined, bc)
	}
	b.chans[i] = joined
}

// count tallies one socket's broadcasts by event until the socket closes.
func (b *bench) count(sub *phx.Subscription) {
	defer b.listeners.Done()
	for m := range sub.C() {
		for i, e := range b.events {
			if e == m.Event {
				b.eventCounts[i].Add(1)
				break
			}
		}
	}
}

// ramp opens the sockets on schedule; it returns when every open has
// finished, or at once for those not started when ctx ends.
func (b *bench) ramp(ctx context.Context) {
	sem := make(chan struct{}, b.f.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	var timer *time.Timer
	next := time.Now()
	for i := range b.f.sockets {
		if b.f.connectRate > 0 && i > 0 {
			gap := float64(time.Second) / b.f.connectRate
			next = next.Add(time.Duration(gap * (1 + b.f.jitter*(2*rand.Float64()-1))))
			if d := time.Until(next); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
					defer timer.Stop()
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b.open(ctx, i)
		}()
	}
}

// push sends one push on c and records its outcome, timed from since.
func (b *bench) push(ctx context.Context, c benchChan, seq uint64, since time.Time) {
	b.sent.Add(1)
	_, err := c.ch.Push(ctx, b.f.event, json.RawMessage(buildPayload(c.pre, c.post, seq)))
	if err != nil {
		b.fail(errKind(err, false), err)
		return
	}
	b.pushH.Record(time.Since(since))
	b.ok.Add(1)
}

// pushes runs the push scenario on chans until stop is closed or the push
// budget is spent; the returned channel is closed when every pusher has
// returned. In-flight pushes end with their reply, their timeout or ctx.
func (b *bench) pushes(ctx context.Context, chans []benchChan, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	if len(chans) == 0 || !b.f.pushing() {
		close(done)
		return done
	}
	var claimed atomic.Int64
	claim := func() (uint64, bool) {
		n := claimed.Add(1)
		return uint64(n - 1), b.f.pushes == 0 || n <= b.f.pushes
	}
	var wg sync.WaitGroup
	if b.f.inflight > 0 {
		for _, c := range chans {
			for range b.f.inflight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						seq, ok := claim()
						if !ok {
							return
						}
						b.push(ctx, c, seq, time.Now())
					}
				}()
			}
		}
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.openLoop(ctx, chans, stop, claim)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

type pushJob struct {
	c   benchChan
	seq uint64
	at  time.Time // when the schedule meant to send it
}

// openLoop sends pushes on a fixed schedule, whatever the replies do. Up to
// -workers pushes are in flight; a send that finds them all busy waits, and
// its wait is part of its latency because it is timed from its slot.
func (b *bench) openLoop(ctx context.Context, chans []benchChan, stop <-chan struct{}, claim func() (uint64, bool)) {
	rate := b.f.rate.perSecond
	if b.f.rate.perChannel {
		rate *= float64(len(chans))
	}
	b.intendedRate = rate
	jobs := make(chan pushJob, b.f.workers)
	var wg sync.WaitGroup
	for range b.f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				select {
				case <-stop:
					b.backlog.Add(1) // queued, never sent
					continue
				default:
				}
				b.push(ctx, j.c, j.seq, j.at)
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)

	start := time.Now()
	slot := func(i int64) time.Time { return start.Add(time.Duration(float64(i) / rate * float64(time.Second))) }
	// unsent counts the slots meant for before the hold ended that were
	// never handed out, i being the next one. holdEnd is written before
	// stop is closed.
	unsent := func(i int64) {
		due := int64(math.Ceil(b.holdEnd.Sub(start).Seconds() * rate))
		b.backlog.Add(uint64(max(0, due-i)))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var i int64
	for {
		due := int64(time.Since(start).Seconds()*rate) + 1
		for ; i < due; i++ {
			seq, ok := claim()
			if !ok {
				return
			}
			select {
			case jobs <- pushJob{c: chans[i%int64(len(chans))], seq: seq, at: slot(i)}:
			case <-stop:
				unsent(i)
				return
			}
		}
		timer.Reset(time.Until(slot(i)))
		select {
		case <-timer.C:
		case <-stop:
			unsent(i)
			return
		}
	}
}

// closeAll closes every socket, a thousand at a time: each Close waits for
// the server to answer its close frame.
func (b *bench) closeAll() {
	sem := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	for i := range b.socks {
		s := b.socks[i].Load()
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = s.s.Close()
			s.release()
		}()
	}
	wg.Wait()
	b.listeners.Wait()
}

// live is what the progress line and the interval records show.
type live struct {
	up         int
	reconnects uint64
	frames     uint64
}

func (b *bench) live() live {
	var l live
	for i := range b.socks {
		s := b.socks[i].Load()
		if s == nil {
			continue
		}
		if s.s.State() == phx.StateConnected {
			l.up++
		}
		st := s.s.Stats()
		l.reconnects += st.Reconnects
		l.frames += st.Received
	}
	return l
}

func (b *bench) errTotal() uint64 {
	var n uint64
	for i := range b.errs {
		n += b.errs[i].Load()
	}
	return n
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "merge" {
		return benchMerge(args[1:], stdout, stderr)
	}
	fs := newFlagSet("bench", benchUsage)
	var f benchFlags
	f.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(fs, err, stdout, stderr)
	}
	out := newPrinter("phx bench", stderr)
	if len(pos) != 1 {
		out.usageError("need one URL")
		return exitUsage
	}
	if err := f.check(); err != nil {
		out.usageError("%v", err)
		return exitUsage
	}
	ep, err := endpoint(pos[0])
	if err != nil {
		out.usageError("%v", err)
		return exitUsage
	}
	if msg := raiseFileLimit(uint64(f.sockets)); msg != "" {
		out.status("%s", msg)
	}

	b := &bench{f: f, ep: ep, events: f.events()}
	b.socks = make([]atomic.Pointer[benchSock], f.sockets)
	b.chans = make([][]benchChan, f.sockets)
	b.eventCounts = make([]atomic.Uint64, len(b.events))
	b.start = time.Now()
	b.rssBase = rssBytes()

	prog := newProgress(b, stdout, stderr)
	progDone := make(chan struct{})
	progStop := make(chan struct{})
	go func() {
		defer close(progDone)
		prog.run(progStop)
	}()

	b.ramp(ctx)
	b.rampEnd = time.Now()
	var chans []benchChan
	for _, cs := range b.chans {
		chans = append(chans, cs...)
	}

	stop := make(chan struct{})
	b.holdStart = time.Now()
	pushesDone := b.pushes(ctx, chans, stop)
	if ctx.Err() == nil { // else the ramp was interrupted: no hold
		var hold <-chan time.Time
		if f.duration > 0 {
			t := time.NewTimer(f.duration)
			defer t.Stop()
			hold = t.C
		}
		budget := pushesDone // only a push budget ends the hold early
		if f.pushes == 0 {
			budget = nil
		}
		select {
		case <-ctx.Done():
		case <-hold:
		case <-budget:
		}
	}
	b.holdEnd = time.Now()
	b.rss = rssBytes()
	b.goroutinesAtHoldTime = numGoroutine()
	close(stop)
	<-pushesDone // in-flight pushes end with their reply, -timeout or Ctrl-C
	// With the sockets still open and the pushes done: what the sockets
	// hold, without the garbage a collection would free.
	runtime.GC()
	debug.FreeOSMemory()
	b.rssGC = rssBytes()
	close(progStop)
	<-progDone
	switch n := b.connected.Load(); {
	case ctx.Err() != nil:
		out.status("interrupted: closing %d sockets", n)
	case n >= 1000: // a few seconds: say what the wait is
		out.status("closing %d sockets", n)
	}
	sum := b.summary(ctx.Err() != nil)
	b.closeAll()
	sum.Elapsed = time.Since(b.start).Seconds()

	text := stdout
	if f.json {
		_ = writeJSONLine(stdout, sum)
		text = stderr
	}
	sum.writeText(text, colorOn(text))
	if f.histogram {
		sum.writeHistograms(text)
	}
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case b.connected.Load() == 0:
		return exitConnect
	}
	return exitOK
}
