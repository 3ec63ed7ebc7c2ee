package phx_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/goleak"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"github.com/phxgo/phxgo/wire"
)

// The chaos test produces the CI-tier figures G2–G5 of RELIABILITY.md, and
// G1's leak check after them: reconnect churn with the fault mix, pushes
// and sequence-numbered broadcasts spread across it, and frames of
// previous join sessions sent before and after every rejoin.
//
// A reply counts as acknowledged when a socket-wide subscription saw it:
// the socket hands a frame to it only once it accepted the frame from
// its current connection, so the client read it and must resolve the
// push with it. Replies the server wrote come from phxtest's Conn.Sent.
//
// Sizes are flags, so a soak is one flag away:
//
//	go test -race -run TestChaos -v ./phx/ -chaos.cycles=10000 -chaos.pushes=100000
var (
	chaosCycles     = flag.Int("chaos.cycles", 500, "chaos: reconnect cycles")
	chaosTopics     = flag.Int("chaos.topics", 20, "chaos: joined topics")
	chaosPushes     = flag.Int("chaos.pushes", 10000, "chaos: pushes spread across the cycles")
	chaosBroadcasts = flag.Int("chaos.broadcasts", 1000, "chaos: sequence-numbered broadcasts per topic")
	chaosStale      = flag.Int("chaos.stale", 4, "chaos: topics that get frames of their previous join session after each rejoin")
	chaosSeed       = flag.Uint64("chaos.seed", 0, "chaos: seed of the fault sequence (0: from the clock)")
	chaosCrash      = flag.Int("chaos.crash", 0, "chaos: percent of cycles that crash channels on the server (phx_error, rejoin on the same connection) instead of the G2 mix")
	chaosHeartbeat  = flag.Duration("chaos.heartbeat", 100*time.Millisecond, "chaos: heartbeat interval and timeout")
)

type fault int

const (
	faultRestart   fault = iota // F1: listener down and up, close 1001
	faultDrop                   // TCP closed with no close frame
	faultClose1011              // close frame 1011
	faultBlackhole              // server stops reading and answering heartbeats (F4)
	faultCrash                  // channels crash on the server (F9); not in the G2 mix
	nFaults
)

func (f fault) String() string {
	return [...]string{"restart", "drop", "close1011", "blackhole", "crash"}[f]
}

// pickFault draws crashPct% crashes, else the G2 mix: 40% restart, 20% each
// of the others.
func pickFault(rng *rand.Rand, crashPct int) fault {
	if rng.IntN(100) < crashPct {
		return faultCrash
	}
	switch n := rng.IntN(10); {
	case n < 4:
		return faultRestart
	case n < 6:
		return faultDrop
	case n < 8:
		return faultClose1011
	default:
		return faultBlackhole
	}
}

// Push outcomes, one slot per push id.
const (
	outNone int32 = iota
	outOK
	outReplyError
	outTimeout
	outDisconnected
	outBufferFull
	outOther
	nOutcomes
)

var outcomeNames = [...]string{"none", "ok", "reply_error", "timeout", "disconnected", "buffer_full", "other"}

// chaosGate releases work paced by the cycle counter, so that pushes and
// broadcasts spread over the whole churn instead of bunching at its start.
type chaosGate struct {
	cycle atomic.Int64
	adv   atomic.Pointer[chan struct{}]
	stop  chan struct{}
}

func newChaosGate() *chaosGate {
	g := &chaosGate{stop: make(chan struct{})}
	c := make(chan struct{})
	g.adv.Store(&c)
	return g
}

// wait blocks until the cycle counter reaches n; false once stopped.
func (g *chaosGate) wait(n int64) bool {
	for {
		c := g.adv.Load()
		if g.cycle.Load() >= n {
			return true
		}
		select {
		case <-*c:
		case <-g.stop:
			return false
		}
	}
}

func (g *chaosGate) advance(n int64) {
	g.cycle.Store(n)
	c := make(chan struct{})
	close(*g.adv.Swap(&c))
}

type echoBody struct {
	ID    int    `json:"id"`
	T     string `json:"t"`
	Stale bool   `json:"stale,omitempty"`
}

type replyBody struct {
	Status   string   `json:"status"`
	Response echoBody `json:"response"`
}

type seqBody struct {
	S     int64 `json:"s"`
	Stale bool  `json:"stale,omitempty"`
}

// TestChaos: reconnect churn against phxtest over loopback WebSockets with
// every G2–G5 invariant checked; see the package's RELIABILITY figures.
// It is not parallel: the leak check and the heap figure need the process
// to itself.
func TestChaos(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	cycles, nTopics, nPushes := *chaosCycles, *chaosTopics, *chaosPushes
	nBroadcasts := int64(*chaosBroadcasts)
	if testing.Short() && !flagSet("chaos.cycles") {
		cycles, nPushes, nBroadcasts = 50, 1000, 100
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos: seed=%d (rerun with -chaos.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32|1))
	hb := *chaosHeartbeat
	const pushTimeout = 2 * time.Second
	const heldBase = 1 << 30        // ids of held pushes, apart from the others
	const rejoinBound = time.Second // G2: every topic rejoined within this of the server being reachable
	heapAt := max(1, min(50, cycles/10))

	ctx := t.Context()
	// echo answers at once; held answers when the test says, so that a
	// stale reply can be aimed at a push that is still waiting.
	type heldReq struct {
		id int
		rr phxtest.ReplyRef
	}
	heldIn := make(chan heldReq, 64)
	// Topics whose next join is preceded by frames of their previous join
	// session (topic → that join_ref), which reach the client while its
	// rejoin is still waiting for the reply.
	var staleOnJoin sync.Map
	var staleBeforeJoin atomic.Int64
	srv := phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"echo:*": phxtest.HandlerFuncs{
		JoinFunc: func(_ context.Context, ch *phxtest.Channel, _ json.RawMessage) (any, error) {
			v, ok := staleOnJoin.LoadAndDelete(ch.Topic())
			if !ok {
				return nil, nil
			}
			jr, tp := wire.NewRef(v.(string)), ch.Topic()
			for _, m := range []wire.Message{
				{JoinRef: jr, Topic: tp, Event: "seq", Payload: mustJSON(seqBody{S: 1 << 40, Stale: true})},
				// A refusal of the join under way, with the old join_ref.
				{JoinRef: jr, Ref: wire.NewRef(ch.JoinRef()), Topic: tp, Event: wire.EventReply,
					Payload: []byte(`{"status":"error","response":{"reason":"stale"}}`)},
				{JoinRef: jr, Ref: jr, Topic: tp, Event: wire.EventError, Payload: []byte(`{}`)},
				{JoinRef: jr, Ref: jr, Topic: tp, Event: wire.EventClose, Payload: []byte(`{}`)},
			} {
				if ch.Conn().Send(m) == nil {
					staleBeforeJoin.Add(1)
				}
			}
			return nil, nil
		},
		InFunc: func(ctx context.Context, _ *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
			switch in.Event {
			case "echo":
				return phxtest.Reply("ok", json.RawMessage(in.Payload))
			case "held":
				var b echoBody
				_ = json.Unmarshal(in.Payload, &b)
				select {
				case heldIn <- heldReq{b.ID, in.ReplyRef()}:
				case <-ctx.Done():
				}
				return phxtest.NoReply()
			}
			return phxtest.Crash()
		},
	}}})
	bo := func() backoff.BackOff {
		return backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(10*time.Millisecond),
			backoff.WithMaxInterval(100*time.Millisecond),
			backoff.WithRandomizationFactor(0),
			backoff.WithMaxElapsedTime(0))
	}
	sock, err := phx.Connect(context.Background(), srv.URL(), &phx.Config{
		HeartbeatInterval: hb,
		HeartbeatTimeout:  hb,
		Timeout:           pushTimeout,
		Reconnect:         bo,
		Rejoin:            bo,
		StatusBuffer:      1 << 14,
	})
	if err != nil {
		t.Fatal(err)
	}
	var closing atomic.Bool
	closeSock := sync.OnceFunc(func() { closing.Store(true); sock.Close() })
	gate := newChaosGate()
	stopWork := sync.OnceFunc(func() { close(gate.stop) })
	// bg: goroutines that end once the socket is closed; pushers and
	// bcaster: ones that end once their work is done or stopped.
	var bg, pushers, bcaster, heldWG sync.WaitGroup
	// On every way out (t.Fatal included) nothing of the test outlives it.
	defer func() {
		stopWork()
		closeSock()
		pushers.Wait()
		bcaster.Wait()
		heldWG.Wait()
		bg.Wait()
	}()

	// The status stream: the latest join_ref each topic reported, and
	// the heartbeat timeouts that end blackhole cycles.
	var (
		stMu      sync.Mutex
		joinedRef = map[string]string{}
		rejoining int // Rejoining after phx_error or a refusal: only stale frames could cause one here
		ended     []phx.ChannelEnded
		slowCons  int
	)
	joinedNote := make(chan struct{}, 1)
	type disc struct {
		at  time.Time
		err error
	}
	discs := make(chan disc, 64)
	goWG(&bg, func() {
		for st := range sock.Status() {
			switch st := st.(type) {
			case phx.Joined:
				stMu.Lock()
				joinedRef[st.Topic] = st.JoinRef
				stMu.Unlock()
				select {
				case joinedNote <- struct{}{}:
				default:
				}
			case phx.Disconnected:
				select {
				case discs <- disc{time.Now(), st.Err}:
				default:
				}
			case phx.Rejoining:
				var se *phx.ServerError
				if _, refused := phx.AsReplyError(st.Err); refused || errors.As(st.Err, &se) {
					stMu.Lock()
					rejoining++
					stMu.Unlock()
				}
			case phx.ChannelEnded:
				stMu.Lock()
				ended = append(ended, st)
				stMu.Unlock()
			case phx.SlowConsumer:
				stMu.Lock()
				slowCons++
				stMu.Unlock()
			}
		}
	})

	// The socket-wide tap sees every frame the socket accepted from its
	// current connection, before routing: a push reply seen here was
	// written by the server and read by the client (acknowledged), so its
	// push must resolve with it.
	acked := make([]bool, nPushes)
	tap := sock.SubscribeWith([]phx.Option{phx.WithBuffer(4096)}, "phx_reply")
	var tapBad atomic.Int64
	goWG(&bg, func() {
		for m := range tap.C() {
			var r replyBody
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				tapBad.Add(1)
				continue
			}
			if strings.HasPrefix(m.Topic, "echo:") && !r.Response.Stale && r.Response.T != "" {
				if id := r.Response.ID; id >= 0 && id < nPushes {
					acked[id] = true
				}
			}
		}
	})

	// Topics, each with a subscription checking G4 (order, duplicates,
	// gaps only across join sessions) and G5 (no stale frame delivered).
	topics := make([]string, nTopics)
	chans := make([]*phx.Channel, nTopics)
	var (
		reordered, dups, gapsInSession, gapsAcross, staleDelivered, delivered atomic.Int64
		subEndedEarly                                                         atomic.Int64
	)
	subs := make([]*phx.Subscription, nTopics)
	for i := range topics {
		topics[i] = fmt.Sprintf("echo:%d", i)
		chans[i] = sock.Channel(topics[i], nil)
		subs[i] = chans[i].SubscribeWith([]phx.Option{phx.WithBuffer(1024)})
		sub := subs[i]
		goWG(&bg, func() {
			last, lastRef := int64(-1), ""
			for m := range sub.C() {
				var b seqBody
				if err := json.Unmarshal(m.Payload, &b); err != nil || m.Event != "seq" || b.Stale {
					staleDelivered.Add(1) // nothing but seq broadcasts is sent to the channel live
					continue
				}
				delivered.Add(1)
				switch {
				case b.S == last:
					dups.Add(1)
				case b.S < last:
					reordered.Add(1)
				case m.JoinRef == lastRef && b.S != last+1:
					gapsInSession.Add(1)
				case m.JoinRef != lastRef && b.S != last+1 && last >= 0:
					gapsAcross.Add(1)
				}
				if b.S > last {
					last = b.S
				}
				lastRef = m.JoinRef
			}
			if !closing.Load() {
				subEndedEarly.Add(1)
				t.Errorf("subscription ended before Close: %v", sub.Err())
			}
		})
	}
	for _, ch := range chans {
		if _, err := ch.Join(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Waits until a connection newer than after (or same, after a crash)
	// has every topic joined, with a join_ref other than fresh[topic] where
	// given, and the client reported each of those join_refs: the
	// channels can deliver again.
	joinedOn := func(after int64, same *phxtest.Conn, fresh map[string]string) (*phxtest.Conn, error) {
		bound := time.NewTimer(10 * time.Second)
		defer bound.Stop()
		for {
			var newest *phxtest.Conn
			for _, c := range srv.Conns() {
				if c.ID() > after && (newest == nil || c.ID() > newest.ID()) {
					newest = c
				}
			}
			if same != nil {
				newest = same
			}
			if newest != nil {
				all := true
				stMu.Lock()
				for _, tp := range topics {
					if jr, ok := newest.JoinRef(tp); !ok || joinedRef[tp] != jr || jr == fresh[tp] {
						all = false
						break
					}
				}
				stMu.Unlock()
				if all {
					return newest, nil
				}
			}
			// A join reply is queued on the server before the client can
			// read it, so the client's Joined event always comes after
			// the server-side state this checks.
			select {
			case <-joinedNote:
			case <-time.After(50 * time.Millisecond): // a newer connection may have opened meanwhile
			case <-bound.C:
				return newest, errors.New("not all topics joined within 10 s")
			}
		}
	}
	cur, err := joinedOn(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Work is released in half-cycle steps: step 2c as cycle c's fault is
	// injected (in flight across it) and 2c+1 once every topic rejoined.
	steps := int64(2 * cycles)

	// Pushers: two per topic, each push carrying a unique id that the echo
	// reply must carry back. Push id k is released at step k*steps/n.
	outcome := make([]int32, nPushes)
	var nextPush, started, finished, hung, misrouted atomic.Int64
	var otherErr atomic.Pointer[error]
	progress := make(chan struct{}, 1)
	for i := range 2 * nTopics {
		ch, topic := chans[i%nTopics], topics[i%nTopics]
		goWG(&pushers, func() {
			for {
				id := nextPush.Add(1) - 1
				if id >= int64(nPushes) || !gate.wait(id*steps/int64(nPushes)) {
					return
				}
				started.Add(1)
				t0 := time.Now()
				r, err := ch.Push(context.Background(), "echo", echoBody{ID: int(id), T: topic}, phx.WithTimeout(pushTimeout))
				if el := time.Since(t0); el > pushTimeout+time.Second {
					hung.Add(1)
				}
				finished.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
				o := outOther
				switch {
				case err == nil:
					o = outOK
					var b echoBody
					if json.Unmarshal(r.Response, &b) != nil || b.ID != int(id) || b.T != topic {
						misrouted.Add(1)
					}
				case errors.Is(err, phx.ErrTimeout):
					o = outTimeout
				case errors.Is(err, phx.ErrDisconnected):
					o = outDisconnected
				case errors.Is(err, phx.ErrPushBufferFull):
					o = outBufferFull
				default:
					if _, ok := phx.AsReplyError(err); ok {
						o = outReplyError
						var b echoBody
						if re, _ := phx.AsReplyError(err); json.Unmarshal(re.Response, &b) == nil && b.Stale {
							misrouted.Add(1)
						}
					} else {
						otherErr.CompareAndSwap(nil, &err)
					}
				}
				outcome[id] = o
			}
		})
	}

	// The broadcaster: one sequence-numbered broadcast per topic a round,
	// round r released at step r*steps/rounds. The number keeps growing
	// across restarts; it is spent even when Broadcast fails, so a
	// number is never sent twice.
	var bcastErrs, bcastSent, bcastRounds atomic.Int64
	goWG(&bcaster, func() {
		for r := range nBroadcasts {
			if !gate.wait(r * steps / nBroadcasts) {
				return
			}
			for _, tp := range topics {
				if err := srv.Broadcast(tp, "seq", seqBody{S: r}); err != nil {
					bcastErrs.Add(1)
				} else {
					bcastSent.Add(1)
				}
			}
			bcastRounds.Add(1)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	})

	// The churn.
	var (
		counts                  [nFaults]int
		spent, worst            [nFaults]time.Duration
		latencies               []time.Duration
		slowRejoins             int
		maxDetect               time.Duration
		staleInjected, pingErrs int
		staleAimed              int // stale replies aimed at a waiting push
		heldN, heldOK, heldLost int
		crashes                 int // channels crashed: each is one expected Rejoining
		heapBase, heapEnd       uint64
		written, writtenUnacked int
	)
	latencies = make([]time.Duration, 0, cycles)
	crashedFresh := map[string]string{}
	writtenSet := make([]bool, nPushes)
	heapInUse := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	// Replies the server wrote on a finished connection (G3's "written").
	scanSent := func(c *phxtest.Conn) {
		for _, f := range c.Sent() {
			if f.Message.Event != wire.EventReply || !strings.HasPrefix(f.Message.Topic, "echo:") {
				continue
			}
			var r replyBody
			if json.Unmarshal(f.Message.Payload, &r) == nil && !r.Response.Stale && r.Response.T != "" &&
				r.Response.ID >= 0 && r.Response.ID < nPushes {
				writtenSet[r.Response.ID] = true
			}
		}
	}
	pingedOn := func(c *phxtest.Conn) bool {
		before := countTopic(c.Received(), wire.TopicPhoenix)
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		_, err := sock.Ping(pctx)
		return err == nil && countTopic(c.Received(), wire.TopicPhoenix) > before
	}
	start := time.Now()
	for cycle := range cycles {
		f := pickFault(rng, *chaosCrash)
		counts[f]++
		cycleStart := time.Now()
		// The connection the client is on now: a heartbeat timeout of the
		// client's own (heartbeats are short here) may have replaced cur,
		// or be replacing it. A blackhole must hit the connection the
		// client uses, or nothing would ever detect it: a ping the
		// connection receives proves it, and a loss after that is
		// reported after the drain.
		var old *phxtest.Conn
		for attempt := 0; ; attempt++ {
			for len(discs) > 0 {
				<-discs
			}
			old, err = joinedOn(0, nil, nil)
			if err != nil {
				t.Fatalf("cycle %d: not settled: %v", cycle, err)
			}
			if f != faultBlackhole || pingedOn(old) {
				break
			}
			if attempt == 10 {
				t.Fatalf("cycle %d: no ping reached the newest connection", cycle)
			}
		}
		oldRefs := make([]string, nTopics)
		for i, tp := range topics {
			oldRefs[i], _ = old.JoinRef(tp)
		}
		// The topics that get stale frames this cycle (and that crash, in
		// a crash cycle).
		sel := rng.Perm(nTopics)[:max(1, min(*chaosStale, nTopics))]
		staleOnJoin.Clear()
		for _, i := range sel {
			if oldRefs[i] != "" {
				staleOnJoin.Store(topics[i], oldRefs[i])
			}
		}
		gate.advance(int64(2 * cycle))
		var reachable time.Time
		switch f {
		case faultRestart:
			if err := srv.Restart(); err != nil {
				t.Fatalf("cycle %d: restart: %v", cycle, err)
			}
			reachable = time.Now()
		case faultDrop:
			old.Drop()
			reachable = time.Now()
		case faultClose1011:
			old.CloseWith(1011)
			reachable = time.Now()
		case faultBlackhole:
			injected := time.Now()
			old.SetFaults(phxtest.Faults{IgnoreHeartbeats: true})
			old.PauseReading()
			// The server was reachable all along; the clock starts when
			// the client's heartbeat timeout finds the dead connection.
			select {
			case d := <-discs:
				reachable = d.at
				if errors.Is(d.err, phx.ErrHeartbeatTimeout) {
					maxDetect = max(maxDetect, reachable.Sub(injected))
				} else {
					t.Logf("cycle %d: blackholed connection ended by %v", cycle, d.err)
				}
			case <-old.Done(): // the client had left it after all
				reachable = time.Now()
				t.Logf("cycle %d: blackholed connection ended before the client reported a loss", cycle)
			case <-time.After(10 * time.Second):
				t.Fatalf("cycle %d: blackhole not detected within 10 s", cycle)
			}
			old.Drop()
		case faultCrash:
			for _, i := range sel {
				if err := old.CrashChannel(ctx, topics[i]); err != nil {
					t.Logf("cycle %d: crash %s: %v", cycle, topics[i], err)
				}
				crashedFresh[topics[i]] = oldRefs[i]
				crashes++
			}
			reachable = time.Now()
		}
		var c *phxtest.Conn
		if f == faultCrash {
			c, err = joinedOn(0, old, crashedFresh)
			clear(crashedFresh)
		} else {
			c, err = joinedOn(old.ID(), nil, nil)
		}
		if err != nil {
			t.Fatalf("cycle %d (%v): topics not rejoined: %v", cycle, f, err)
		}
		lat := time.Since(reachable)
		latencies = append(latencies, lat)
		if lat > rejoinBound {
			slowRejoins++
			t.Logf("cycle %d (%v): rejoined after %v", cycle, f, lat)
		}
		if c != old {
			select {
			case <-old.Done():
				scanSent(old)
			case <-time.After(10 * time.Second):
				t.Fatalf("cycle %d: old connection did not end within 10 s", cycle)
			}
		}
		cur = c
		// The calm half: pushes and broadcasts on joined channels. Every
		// push released so far, those in flight across the fault
		// included, must have ended before the next fault.
		step := int64(2*cycle + 1)
		gate.advance(step)
		for finished.Load() < released(step, steps, int64(nPushes)) || bcastRounds.Load() < released(step, steps, nBroadcasts) {
			select {
			case <-progress:
			case <-time.After(pushTimeout + time.Second):
				t.Fatalf("cycle %d: %d of %d pushes and %d of %d broadcast rounds ended %v after the last progress",
					cycle, finished.Load(), released(step, steps, int64(nPushes)), bcastRounds.Load(), released(step, steps, nBroadcasts), pushTimeout+time.Second)
			}
		}

		// G5: frames of the previous join session of a few topics: a
		// broadcast-like push, phx_error, phx_close, and a reply aimed at a
		// push that is waiting for its own reply (held by the server until
		// the stale frames are read). That push must still get its own.
		type heldRes struct {
			id  int
			r   phx.Reply
			err error
		}
		heldOut := make(chan heldRes, len(sel))
		heldTopic := map[int]string{}
		for _, i := range sel {
			id := heldBase + heldN
			heldN++
			heldTopic[id] = topics[i]
			ch := chans[i]
			goWG(&heldWG, func() {
				r, err := ch.Push(ctx, "held", echoBody{ID: id, T: ch.Topic()}, phx.WithTimeout(pushTimeout))
				heldOut <- heldRes{id, r, err}
			})
		}
		waiting := map[int]phxtest.ReplyRef{}
		var results []heldRes
		for len(waiting)+len(results) < len(sel) {
			select {
			case h := <-heldIn:
				if _, ours := heldTopic[h.id]; ours { // not one of an earlier cycle, on a connection since lost
					waiting[h.id] = h.rr
				}
			case r := <-heldOut: // ended before the server had it: a connection loss
				results = append(results, r)
			case <-time.After(pushTimeout + time.Second):
				t.Fatalf("cycle %d: held pushes neither reached the server nor ended", cycle)
			}
		}
		refOf := map[string]string{} // topic → ref of its held push
		for _, m := range cur.Received() {
			if m.Event != "held" {
				continue
			}
			var b echoBody
			if json.Unmarshal(m.Payload, &b) == nil {
				if _, ok := waiting[b.ID]; ok {
					refOf[m.Topic], _ = m.Ref.Get()
				}
			}
		}
		for _, i := range sel {
			tp, jr := topics[i], oldRefs[i]
			ref, ok := refOf[tp]
			if now, _ := cur.JoinRef(tp); jr == "" || jr == now || !ok {
				continue
			}
			stale := []wire.Message{
				{JoinRef: wire.NewRef(jr), Topic: tp, Event: "seq", Payload: mustJSON(seqBody{S: 1 << 40, Stale: true})},
				{JoinRef: wire.NewRef(jr), Ref: wire.NewRef(ref), Topic: tp, Event: wire.EventReply,
					Payload: mustJSON(map[string]any{"status": "ok", "response": echoBody{ID: -1, T: tp, Stale: true}})},
				{JoinRef: wire.NewRef(jr), Ref: wire.NewRef(jr), Topic: tp, Event: wire.EventError, Payload: []byte(`{}`)},
				{JoinRef: wire.NewRef(jr), Ref: wire.NewRef(jr), Topic: tp, Event: wire.EventClose, Payload: []byte(`{}`)},
			}
			for _, m := range stale {
				if cur.Send(m) == nil {
					staleInjected++
				}
			}
			staleAimed++
		}
		// A ping's reply comes after them on the same connection: once it
		// is back, the socket has read the stale frames.
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := sock.Ping(pctx); err != nil {
			pingErrs++
			t.Logf("cycle %d: ping after the stale frames: %v", cycle, err)
		}
		pcancel()
		for id, rr := range waiting {
			_ = rr.Reply("ok", echoBody{ID: id, T: heldTopic[id]})
		}
		for len(results) < len(sel) {
			select {
			case r := <-heldOut:
				results = append(results, r)
			case <-time.After(pushTimeout + time.Second):
				t.Fatalf("cycle %d: a held push without an outcome", cycle)
			}
		}
		for _, r := range results {
			var b echoBody
			switch {
			case r.err == nil && json.Unmarshal(r.r.Response, &b) == nil && b.ID == r.id && b.T == heldTopic[r.id]:
				heldOK++
			case r.err == nil:
				misrouted.Add(1)
				if b.Stale {
					staleDelivered.Add(1)
				}
				t.Logf("cycle %d: held push %d resolved with %s", cycle, r.id, r.r.Response)
			case errors.Is(r.err, phx.ErrDisconnected), errors.Is(r.err, phx.ErrTimeout):
				heldLost++
			default:
				t.Errorf("cycle %d: held push: %v", cycle, r.err)
			}
		}

		spent[f] += time.Since(cycleStart)
		worst[f] = max(worst[f], lat)
		switch cycle + 1 {
		case heapAt:
			heapBase = heapInUse()
		case cycles:
			heapEnd = heapInUse()
		}
	}
	churn := time.Since(start)

	// Every push released; each must end within its timeout (+1 s).
	gate.advance(steps)
	pushDone := make(chan struct{})
	go func() { pushers.Wait(); bcaster.Wait(); close(pushDone) }()
	select {
	case <-pushDone:
	case <-time.After(pushTimeout + time.Second + 5*time.Second):
		stopWork()
		t.Errorf("pushes without an outcome: %d", started.Load()-finished.Load())
		closeSock()
		<-pushDone
	}
	stats := sock.Stats()
	closeSock()
	srv.Close()
	heldWG.Wait()
	bg.Wait()
	scanSent(cur)
	if p := otherErr.Load(); p != nil {
		t.Errorf("a push ended with %v", *p)
	}

	// Tally.
	var byOutcome [nOutcomes]int
	lost, unresolved := 0, 0
	for id, o := range outcome {
		byOutcome[o]++
		if o == outNone {
			unresolved++
		}
		if acked[id] && o != outOK {
			lost++
			if lost <= 5 {
				t.Logf("push %d: reply read by the client, but outcome %s", id, outcomeNames[o])
			}
		}
		if writtenSet[id] {
			written++
			if !acked[id] {
				writtenUnacked++
			}
		}
	}
	leaked := 0
	if err := goleak.Find(ignore); err != nil {
		leaked = max(1, strings.Count(err.Error(), "\nGoroutine "))
		t.Errorf("goroutine leak: %v", err)
	}
	heapGrowth := int64(heapEnd) - int64(heapBase)
	slices.Sort(latencies)
	var p50, p99, pmax time.Duration
	if n := len(latencies); n > 0 {
		p50, p99, pmax = latencies[n/2], latencies[n*99/100], latencies[n-1]
	}
	outs := make([]string, 0, nOutcomes)
	for o := outOK; o < nOutcomes; o++ {
		outs = append(outs, fmt.Sprintf("%s=%d", outcomeNames[o], byOutcome[o]))
	}
	stMu.Lock()
	staleEffects := rejoining - crashes + len(ended)
	stMu.Unlock()

	t.Logf("chaos: faults restart=%d drop=%d close1011=%d blackhole=%d crash=%d in %v (blackhole detected ≤ %v)",
		counts[faultRestart], counts[faultDrop], counts[faultClose1011], counts[faultBlackhole], counts[faultCrash], churn.Round(time.Millisecond), maxDetect.Round(time.Millisecond))
	for f := range nFaults {
		if counts[f] > 0 {
			t.Logf("chaos: %v: %d cycles, %v a cycle, slowest rejoin %v", f, counts[f],
				(spent[f] / time.Duration(counts[f])).Round(time.Millisecond), worst[f].Round(time.Millisecond))
		}
	}
	t.Logf("chaos: rejoin of all %d topics p50=%v p99=%v max=%v, over %v: %d", nTopics,
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), pmax.Round(time.Millisecond), rejoinBound, slowRejoins)
	t.Logf("chaos: push outcomes %s; replies written %d, read %d, written but never read %d",
		strings.Join(outs, " "), written, countTrue(acked), writtenUnacked)
	t.Logf("chaos: broadcasts sent %d (failed %d), delivered %d, gaps across sessions %d; stale frames injected %d after rejoins (pings failed %d) and %d ahead of join replies, client Stats.Stale %d + Unrouted %d",
		bcastSent.Load(), bcastErrs.Load(), delivered.Load(), gapsAcross.Load(), staleInjected, pingErrs, staleBeforeJoin.Load(), stats.Stale, stats.Unrouted)
	t.Logf("chaos: held pushes %d: own reply %d, lost to a connection loss %d; stale replies aimed at them %d",
		heldN, heldOK, heldLost, staleAimed)
	t.Logf("chaos: stats %+v, slow-consumer events %d, tap dropped %d (undecodable %d), heap after cycle %d: %d KiB, after %d: %d KiB",
		stats, slowCons, tap.Dropped(), tapBad.Load(), heapAt, heapBase>>10, cycles, heapEnd>>10)
	t.Logf("chaos: cycles=%d topics=%d pushes=%d lost=%d dup=%d misrouted=%d reordered=%d stale_delivered=%d heap_growth=%dKiB leaked=%d",
		cycles, nTopics, len(outcome), lost, dups.Load(), misrouted.Load(), reordered.Load(),
		staleDelivered.Load()+int64(staleEffects), heapGrowth/1024, leaked)

	check := func(name string, n int64) {
		if n != 0 {
			t.Errorf("%s = %d, want 0 (seed %d)", name, n, seed)
		}
	}
	check("lost acknowledged replies", int64(lost))
	check("pushes without an outcome", int64(unresolved))
	check("pushes resolved later than timeout + 1 s", hung.Load())
	check("misrouted replies", misrouted.Load())
	check("pushes with an unexpected error", int64(byOutcome[outOther]+byOutcome[outReplyError]))
	check("duplicate broadcasts", dups.Load())
	check("reordered broadcasts", reordered.Load())
	check("gaps inside a join session", gapsInSession.Load())
	check("stale frames delivered", staleDelivered.Load())
	check("stale phx_error/phx_close that took effect", int64(staleEffects))
	check("subscriptions ended early", subEndedEarly.Load())
	check("cycles rejoined later than 1 s", int64(slowRejoins))
	check("broadcasts dropped by the client", int64(stats.Dropped+stats.Overflowed))
	if tap.Dropped() != 0 {
		t.Errorf("the reply tap dropped %d frames: lost is a lower bound", tap.Dropped())
	}
	if cycles > heapAt && heapGrowth > 1<<20 {
		t.Errorf("heap in use grew %d KiB from cycle %d to %d, want ≤ 1 MiB", heapGrowth>>10, heapAt, cycles)
	}
	if got := byOutcome[outOK]; got == 0 {
		t.Error("no push succeeded")
	}
}

func countTopic(ms []wire.Message, topic string) int {
	n := 0
	for _, m := range ms {
		if m.Topic == topic {
			n++
		}
	}
	return n
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// released is how many of n work items are released at step s of steps,
// item k being released at step k*steps/n.
func released(s, steps, n int64) int64 {
	return min(n, ((s+1)*n+steps-1)/steps)
}

// goWG runs f on a goroutine that wg waits for.
func goWG(wg *sync.WaitGroup, f func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		f()
	}()
}
