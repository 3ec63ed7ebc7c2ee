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

type heldReq struct {
	id int
	rr phxtest.ReplyRef
}

type heldRes struct {
	id  int
	r   phx.Reply
	err error
}

type disc struct {
	at  time.Time
	err error
}

const (
	chaosPushTimeout = 2 * time.Second
	// A push, a held push or a round of work must end within this.
	chaosOutcomeBound = chaosPushTimeout + time.Second
	chaosHeldBase     = 1 << 30     // ids of held pushes, apart from the others
	chaosRejoinBound  = time.Second // G2: every topic rejoined within this of the server being reachable
)

// chaosConfig is a run's sizes and seed, from the flags.
type chaosConfig struct {
	cycles, nTopics, nPushes int
	nBroadcasts              int64
	nStale, crashPct         int
	heartbeat                time.Duration
	seed                     uint64
}

func chaosConfigFromFlags() chaosConfig {
	c := chaosConfig{
		cycles: *chaosCycles, nTopics: *chaosTopics, nPushes: *chaosPushes,
		nBroadcasts: int64(*chaosBroadcasts),
		nStale:      *chaosStale, crashPct: *chaosCrash,
		heartbeat: *chaosHeartbeat, seed: *chaosSeed,
	}
	if testing.Short() && !flagSet("chaos.cycles") {
		c.cycles, c.nPushes, c.nBroadcasts = 50, 1000, 100
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	return c
}

// chaosRun is one run of TestChaos: the server and the socket under test,
// the work spread across the churn, and what each part of it counted.
type chaosRun struct {
	t   *testing.T
	ctx context.Context
	chaosConfig
	rng *rand.Rand
	// Work is released in half-cycle steps: step 2c as cycle c's fault is
	// injected (in flight across it) and 2c+1 once every topic rejoined.
	steps  int64
	heapAt int // the cycle after which the heap figure's base is taken

	srv    *phxtest.Server
	sock   *phx.Socket
	topics []string
	chans  []*phx.Channel
	cur    *phxtest.Conn // the connection the latest cycle ended on

	gate      *chaosGate
	closing   atomic.Bool
	closeSock func()
	stopWork  func()
	// bg: goroutines that end once the socket is closed; pushers and
	// bcaster: ones that end once their work is done or stopped.
	bg, pushers, bcaster, heldWG sync.WaitGroup

	// The server's side. echo answers at once; held answers when the
	// test says, so that a stale reply can be aimed at a push that is
	// still waiting.
	heldIn chan heldReq
	// Topics whose next join is preceded by frames of their previous join
	// session (topic → that join_ref), which reach the client while its
	// rejoin is still waiting for the reply.
	staleOnJoin     sync.Map
	staleBeforeJoin atomic.Int64

	// The status stream: the latest join_ref each topic reported, and
	// the heartbeat timeouts that end blackhole cycles.
	stMu       sync.Mutex
	joinedRef  map[string]string
	rejoining  int // Rejoining after phx_error or a refusal: only stale frames could cause one here
	ended      []phx.ChannelEnded
	slowCons   int
	joinedNote chan struct{}
	discs      chan disc

	// The reply tap: acked[id] once the client read push id's reply.
	tap    *phx.Subscription
	acked  []bool
	tapBad atomic.Int64

	// G4 and G5 as the topics' subscriptions see them.
	reordered, dups, gapsInSession, gapsAcross, staleDelivered, delivered atomic.Int64
	subEndedEarly                                                         atomic.Int64

	// The pushers and the broadcaster.
	outcome                                      []int32 // one slot per push id
	nextPush, started, finished, hung, misrouted atomic.Int64
	otherErr                                     atomic.Pointer[error]
	progress                                     chan struct{}
	bcastErrs, bcastSent, bcastRounds            atomic.Int64

	// The churn.
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
	writtenSet              []bool // replies the server wrote (G3's "written"), by push id
	churnTime               time.Duration
	stats                   phx.Stats
}

// TestChaos: reconnect churn against phxtest over loopback WebSockets with
// every G2–G5 invariant checked; see the package's RELIABILITY figures.
// It is not parallel: the leak check and the heap figure need the process
// to itself.
func TestChaos(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	cfg := chaosConfigFromFlags()
	t.Logf("chaos: seed=%d (rerun with -chaos.seed=%d)", cfg.seed, cfg.seed)
	r := newChaosRun(t, cfg)
	// On every way out (t.Fatal included) nothing of the test outlives it.
	defer r.shutdown()

	r.watchStatus()
	r.tapReplies()
	r.joinTopics()
	r.startPushers()
	r.startBroadcaster()
	r.churn()
	r.drain()
	tl := r.tally(ignore)
	r.report(tl)
	r.check(tl)
}

// newChaosRun starts the server and connects the socket.
func newChaosRun(t *testing.T, cfg chaosConfig) *chaosRun {
	r := &chaosRun{
		t:           t,
		ctx:         t.Context(),
		chaosConfig: cfg,
		rng:         rand.New(rand.NewPCG(cfg.seed, cfg.seed>>32|1)),
		steps:       int64(2 * cfg.cycles),
		heapAt:      max(1, min(50, cfg.cycles/10)),
		heldIn:      make(chan heldReq, 64),
		joinedRef:   map[string]string{},
		joinedNote:  make(chan struct{}, 1),
		discs:       make(chan disc, 64),
		acked:       make([]bool, cfg.nPushes),
		outcome:     make([]int32, cfg.nPushes),
		progress:    make(chan struct{}, 1),
		latencies:   make([]time.Duration, 0, cfg.cycles),
		writtenSet:  make([]bool, cfg.nPushes),
		gate:        newChaosGate(),
	}
	r.srv = phxtest.NewServer(t, phxtest.Config{Channels: map[string]phxtest.Handler{"echo:*": phxtest.HandlerFuncs{
		JoinFunc: r.joinAfterStaleFrames,
		InFunc:   r.echoOrHold,
	}}})
	bo := func() backoff.BackOff {
		return backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(10*time.Millisecond),
			backoff.WithMaxInterval(100*time.Millisecond),
			backoff.WithRandomizationFactor(0),
			backoff.WithMaxElapsedTime(0))
	}
	sock, err := phx.Connect(context.Background(), r.srv.URL(), &phx.Config{
		HeartbeatInterval: cfg.heartbeat,
		HeartbeatTimeout:  cfg.heartbeat,
		Timeout:           chaosPushTimeout,
		Reconnect:         bo,
		Rejoin:            bo,
		StatusBuffer:      1 << 14,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.sock = sock
	r.closeSock = sync.OnceFunc(func() { r.closing.Store(true); sock.Close() })
	r.stopWork = sync.OnceFunc(func() { close(r.gate.stop) })
	return r
}

func (r *chaosRun) shutdown() {
	r.stopWork()
	r.closeSock()
	r.pushers.Wait()
	r.bcaster.Wait()
	r.heldWG.Wait()
	r.bg.Wait()
}

// joinAfterStaleFrames is the server's join: a topic marked in staleOnJoin
// first gets frames of its previous join session.
func (r *chaosRun) joinAfterStaleFrames(_ context.Context, ch *phxtest.Channel, _ json.RawMessage) (any, error) {
	v, ok := r.staleOnJoin.LoadAndDelete(ch.Topic())
	if !ok {
		return nil, nil
	}
	// A refusal of the join under way, with the old join_ref.
	refusal := []byte(`{"status":"error","response":{"reason":"stale"}}`)
	r.staleBeforeJoin.Add(int64(sendAll(ch.Conn(), staleFrames(ch.Topic(), v.(string), ch.JoinRef(), refusal))))
	return nil, nil
}

func (r *chaosRun) echoOrHold(ctx context.Context, _ *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
	switch in.Event {
	case "echo":
		return phxtest.Reply("ok", json.RawMessage(in.Payload))
	case "held":
		var b echoBody
		_ = json.Unmarshal(in.Payload, &b)
		select {
		case r.heldIn <- heldReq{b.ID, in.ReplyRef()}:
		case <-ctx.Done():
		}
		return phxtest.NoReply()
	}
	return phxtest.Crash()
}

// staleFrames are frames of topic's join session joinRef for after that
// session ended: a broadcast-like push, a reply to ref, phx_error and
// phx_close.
func staleFrames(topic, joinRef, ref string, reply []byte) []wire.Message {
	jr := wire.NewRef(joinRef)
	return []wire.Message{
		{JoinRef: jr, Topic: topic, Event: "seq", Payload: mustJSON(seqBody{S: 1 << 40, Stale: true})},
		{JoinRef: jr, Ref: wire.NewRef(ref), Topic: topic, Event: wire.EventReply, Payload: reply},
		{JoinRef: jr, Ref: jr, Topic: topic, Event: wire.EventError, Payload: []byte(`{}`)},
		{JoinRef: jr, Ref: jr, Topic: topic, Event: wire.EventClose, Payload: []byte(`{}`)},
	}
}

// sendAll sends ms on c and says how many it took.
func sendAll(c *phxtest.Conn, ms []wire.Message) int {
	n := 0
	for _, m := range ms {
		if c.Send(m) == nil {
			n++
		}
	}
	return n
}

func (r *chaosRun) watchStatus() {
	goWG(&r.bg, func() {
		for st := range r.sock.Status() {
			switch st := st.(type) {
			case phx.Joined:
				r.stMu.Lock()
				r.joinedRef[st.Topic] = st.JoinRef
				r.stMu.Unlock()
				trySend(r.joinedNote, struct{}{})
			case phx.Disconnected:
				trySend(r.discs, disc{time.Now(), st.Err})
			case phx.Rejoining:
				var se *phx.ServerError
				if _, refused := phx.AsReplyError(st.Err); refused || errors.As(st.Err, &se) {
					r.stMu.Lock()
					r.rejoining++
					r.stMu.Unlock()
				}
			case phx.ChannelEnded:
				r.stMu.Lock()
				r.ended = append(r.ended, st)
				r.stMu.Unlock()
			case phx.SlowConsumer:
				r.stMu.Lock()
				r.slowCons++
				r.stMu.Unlock()
			}
		}
	})
}

// pushID is the id of the push an echo reply on topic answers, if it
// answers one.
func (r *chaosRun) pushID(topic string, b replyBody) (int, bool) {
	id := b.Response.ID
	ok := strings.HasPrefix(topic, "echo:") && !b.Response.Stale && b.Response.T != "" && id >= 0 && id < r.nPushes
	return id, ok
}

// tapReplies starts the socket-wide tap. It sees every frame the socket
// accepted from its current connection, before routing: a push reply seen
// here was written by the server and read by the client (acknowledged), so
// its push must resolve with it.
func (r *chaosRun) tapReplies() {
	r.tap = mustSub(r.t, r.sock, phx.WithBuffer(4096), phx.Events("phx_reply"))
	goWG(&r.bg, func() {
		for m := range r.tap.C() {
			var b replyBody
			if err := json.Unmarshal(m.Payload, &b); err != nil {
				r.tapBad.Add(1)
				continue
			}
			if id, ok := r.pushID(m.Topic, b); ok {
				r.acked[id] = true
			}
		}
	})
}

// scanSent marks the replies the server wrote on a finished connection.
func (r *chaosRun) scanSent(c *phxtest.Conn) {
	for _, f := range c.Sent() {
		if f.Message.Event != wire.EventReply {
			continue
		}
		var b replyBody
		if json.Unmarshal(f.Message.Payload, &b) != nil {
			continue
		}
		if id, ok := r.pushID(f.Message.Topic, b); ok {
			r.writtenSet[id] = true
		}
	}
}

// joinTopics joins the topics, each with a subscription checking G4 and G5,
// and waits until the client reported every join.
func (r *chaosRun) joinTopics() {
	r.topics = make([]string, r.nTopics)
	r.chans = make([]*phx.Channel, r.nTopics)
	for i := range r.topics {
		r.topics[i] = fmt.Sprintf("echo:%d", i)
		r.chans[i] = r.sock.Channel(r.topics[i], nil)
		sub := mustSub(r.t, r.chans[i], phx.WithBuffer(1024))
		goWG(&r.bg, func() { r.checkSeq(sub) })
	}
	for _, ch := range r.chans {
		if _, err := ch.Join(r.ctx); err != nil {
			r.t.Fatal(err)
		}
	}
	cur, err := r.joinedOn(0, nil, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cur = cur
}

// checkSeq checks a topic's broadcasts: G4 (order, duplicates, gaps only
// across join sessions) and G5 (no stale frame delivered).
func (r *chaosRun) checkSeq(sub *phx.Subscription) {
	last, lastRef := int64(-1), ""
	for m := range sub.C() {
		var b seqBody
		if err := json.Unmarshal(m.Payload, &b); err != nil || m.Event != "seq" || b.Stale {
			r.staleDelivered.Add(1) // nothing but seq broadcasts is sent to the channel live
			continue
		}
		r.delivered.Add(1)
		switch {
		case b.S == last:
			r.dups.Add(1)
		case b.S < last:
			r.reordered.Add(1)
		case m.JoinRef == lastRef && b.S != last+1:
			r.gapsInSession.Add(1)
		case m.JoinRef != lastRef && b.S != last+1 && last >= 0:
			r.gapsAcross.Add(1)
		}
		if b.S > last {
			last = b.S
		}
		lastRef = m.JoinRef
	}
	if !r.closing.Load() {
		r.subEndedEarly.Add(1)
		r.t.Errorf("subscription ended before Close: %v", sub.Err())
	}
}

// joinedOn waits until a connection newer than after (or same, after a
// crash) has every topic joined, with a join_ref other than fresh[topic]
// where given, and the client reported each of those join_refs: the
// channels can deliver again.
func (r *chaosRun) joinedOn(after int64, same *phxtest.Conn, fresh map[string]string) (*phxtest.Conn, error) {
	bound := time.NewTimer(10 * time.Second)
	defer bound.Stop()
	for {
		var newest *phxtest.Conn
		for _, c := range r.srv.Conns() {
			if c.ID() > after && (newest == nil || c.ID() > newest.ID()) {
				newest = c
			}
		}
		if same != nil {
			newest = same
		}
		if newest != nil && r.allJoinedOn(newest, fresh) {
			return newest, nil
		}
		// A join reply is queued on the server before the client can
		// read it, so the client's Joined event always comes after
		// the server-side state this checks.
		select {
		case <-r.joinedNote:
		case <-time.After(50 * time.Millisecond): // a newer connection may have opened meanwhile
		case <-bound.C:
			return newest, errors.New("not all topics joined within 10 s")
		}
	}
}

func (r *chaosRun) allJoinedOn(c *phxtest.Conn, fresh map[string]string) bool {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	for _, tp := range r.topics {
		if jr, ok := c.JoinRef(tp); !ok || r.joinedRef[tp] != jr || jr == fresh[tp] {
			return false
		}
	}
	return true
}

// startPushers starts two pushers per topic, each push carrying a unique id
// that the echo reply must carry back. Push id k is released at step
// k*steps/nPushes.
func (r *chaosRun) startPushers() {
	for i := range 2 * r.nTopics {
		ch, topic := r.chans[i%r.nTopics], r.topics[i%r.nTopics]
		goWG(&r.pushers, func() {
			for {
				id := r.nextPush.Add(1) - 1
				if id >= int64(r.nPushes) || !r.gate.wait(id*r.steps/int64(r.nPushes)) {
					return
				}
				r.outcome[id] = r.push(ch, topic, int(id))
			}
		})
	}
}

// push sends push id on ch and says how it ended.
func (r *chaosRun) push(ch *phx.Channel, topic string, id int) int32 {
	r.started.Add(1)
	t0 := time.Now()
	reply, err := ch.Push(context.Background(), "echo", echoBody{ID: id, T: topic}, phx.WithTimeout(chaosPushTimeout))
	if el := time.Since(t0); el > chaosOutcomeBound {
		r.hung.Add(1)
	}
	r.finished.Add(1)
	trySend(r.progress, struct{}{})
	switch {
	case err == nil:
		var b echoBody
		if json.Unmarshal(reply.Response, &b) != nil || b.ID != id || b.T != topic {
			r.misrouted.Add(1)
		}
		return outOK
	case errors.Is(err, phx.ErrTimeout):
		return outTimeout
	case errors.Is(err, phx.ErrDisconnected):
		return outDisconnected
	case errors.Is(err, phx.ErrPushBufferFull):
		return outBufferFull
	}
	if re, ok := phx.AsReplyError(err); ok {
		var b echoBody
		if json.Unmarshal(re.Response, &b) == nil && b.Stale {
			r.misrouted.Add(1)
		}
		return outReplyError
	}
	r.otherErr.CompareAndSwap(nil, &err)
	return outOther
}

// startBroadcaster starts one sequence-numbered broadcast per topic a round,
// round k released at step k*steps/nBroadcasts. The number keeps growing
// across restarts; it is spent even when Broadcast fails, so a number is
// never sent twice.
func (r *chaosRun) startBroadcaster() {
	goWG(&r.bcaster, func() {
		for k := range r.nBroadcasts {
			if !r.gate.wait(k * r.steps / r.nBroadcasts) {
				return
			}
			for _, tp := range r.topics {
				if err := r.srv.Broadcast(tp, "seq", seqBody{S: k}); err != nil {
					r.bcastErrs.Add(1)
				} else {
					r.bcastSent.Add(1)
				}
			}
			r.bcastRounds.Add(1)
			trySend(r.progress, struct{}{})
		}
	})
}

func (r *chaosRun) churn() {
	start := time.Now()
	for cycle := range r.cycles {
		r.cycle(cycle)
	}
	r.churnTime = time.Since(start)
}

// cycle injects one fault, waits for the rejoin, lets the work released
// with it end, and sends frames of the previous join sessions.
func (r *chaosRun) cycle(cycle int) {
	f := pickFault(r.rng, r.crashPct)
	r.counts[f]++
	cycleStart := time.Now()
	old := r.settle(cycle, f)
	oldRefs := make([]string, r.nTopics)
	for i, tp := range r.topics {
		oldRefs[i], _ = old.JoinRef(tp)
	}
	sel := r.pickStale(oldRefs)
	r.gate.advance(int64(2 * cycle))
	reachable, fresh := r.inject(cycle, f, old, sel, oldRefs)
	lat := r.awaitRejoin(cycle, f, old, fresh, reachable)
	r.calm(cycle)
	r.staleAfterRejoin(cycle, sel, oldRefs)
	r.spent[f] += time.Since(cycleStart)
	r.worst[f] = max(r.worst[f], lat)
	switch cycle + 1 {
	case r.heapAt:
		r.heapBase = heapInUse()
	case r.cycles:
		r.heapEnd = heapInUse()
	}
}

// settle finds the connection the client is on now: a heartbeat timeout
// of the client's own (heartbeats are short here) may have replaced cur,
// or be replacing it. A blackhole must hit the connection the client
// uses, or nothing would ever detect it: a ping the connection receives
// proves it, and a loss after that is reported after the drain.
func (r *chaosRun) settle(cycle int, f fault) *phxtest.Conn {
	for attempt := 0; ; attempt++ {
		for len(r.discs) > 0 {
			<-r.discs
		}
		old, err := r.joinedOn(0, nil, nil)
		if err != nil {
			r.t.Fatalf("cycle %d: not settled: %v", cycle, err)
		}
		if f != faultBlackhole || r.pingedOn(old) {
			return old
		}
		if attempt == 10 {
			r.t.Fatalf("cycle %d: no ping reached the newest connection", cycle)
		}
	}
}

func (r *chaosRun) pingedOn(c *phxtest.Conn) bool {
	before := countTopic(c.Received(), wire.TopicPhoenix)
	return r.ping() == nil && countTopic(c.Received(), wire.TopicPhoenix) > before
}

func (r *chaosRun) ping() error {
	pctx, pcancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer pcancel()
	_, err := r.sock.Ping(pctx)
	return err
}

// pickStale picks the topics that get stale frames this cycle (and that
// crash, in a crash cycle), and marks them for stale frames ahead of
// their next join reply.
func (r *chaosRun) pickStale(oldRefs []string) []int {
	sel := r.rng.Perm(r.nTopics)[:max(1, min(r.nStale, r.nTopics))]
	r.staleOnJoin.Clear()
	for _, i := range sel {
		if oldRefs[i] != "" {
			r.staleOnJoin.Store(r.topics[i], oldRefs[i])
		}
	}
	return sel
}

// inject injects fault f on old and says when the server was reachable
// again; a crash also says the join_refs its rejoins must replace.
func (r *chaosRun) inject(cycle int, f fault, old *phxtest.Conn, sel []int, oldRefs []string) (reachable time.Time, fresh map[string]string) {
	switch f {
	case faultRestart:
		if err := r.srv.Restart(); err != nil {
			r.t.Fatalf("cycle %d: restart: %v", cycle, err)
		}
	case faultDrop:
		old.Drop()
	case faultClose1011:
		old.CloseWith(1011)
	case faultBlackhole:
		return r.blackhole(cycle, old), nil
	case faultCrash:
		return r.crash(cycle, old, sel, oldRefs)
	}
	return time.Now(), nil
}

// blackhole stops old reading and answering heartbeats. The server was
// reachable all along; the clock starts when the client's heartbeat
// timeout finds the dead connection.
func (r *chaosRun) blackhole(cycle int, old *phxtest.Conn) (reachable time.Time) {
	injected := time.Now()
	old.SetFaults(phxtest.Faults{IgnoreHeartbeats: true})
	old.PauseReading()
	select {
	case d := <-r.discs:
		reachable = d.at
		if errors.Is(d.err, phx.ErrHeartbeatTimeout) {
			r.maxDetect = max(r.maxDetect, reachable.Sub(injected))
		} else {
			r.t.Logf("cycle %d: blackholed connection ended by %v", cycle, d.err)
		}
	case <-old.Done(): // the client had left it after all
		reachable = time.Now()
		r.t.Logf("cycle %d: blackholed connection ended before the client reported a loss", cycle)
	case <-time.After(10 * time.Second):
		r.t.Fatalf("cycle %d: blackhole not detected within 10 s", cycle)
	}
	old.Drop()
	return reachable
}

// crash crashes the selected topics' channels on old; they rejoin on the
// same connection with join_refs other than fresh.
func (r *chaosRun) crash(cycle int, old *phxtest.Conn, sel []int, oldRefs []string) (reachable time.Time, fresh map[string]string) {
	fresh = map[string]string{}
	for _, i := range sel {
		if err := old.CrashChannel(r.ctx, r.topics[i]); err != nil {
			r.t.Logf("cycle %d: crash %s: %v", cycle, r.topics[i], err)
		}
		fresh[r.topics[i]] = oldRefs[i]
		r.crashes++
	}
	return time.Now(), fresh
}

// awaitRejoin waits until every topic rejoined after fault f and the old
// connection, if left, ended; it says how long the rejoin took from
// reachable.
func (r *chaosRun) awaitRejoin(cycle int, f fault, old *phxtest.Conn, fresh map[string]string, reachable time.Time) time.Duration {
	var c *phxtest.Conn
	var err error
	if f == faultCrash {
		c, err = r.joinedOn(0, old, fresh)
	} else {
		c, err = r.joinedOn(old.ID(), nil, nil)
	}
	if err != nil {
		r.t.Fatalf("cycle %d (%v): topics not rejoined: %v", cycle, f, err)
	}
	lat := time.Since(reachable)
	r.latencies = append(r.latencies, lat)
	if lat > chaosRejoinBound {
		r.slowRejoins++
		r.t.Logf("cycle %d (%v): rejoined after %v", cycle, f, lat)
	}
	if c != old {
		select {
		case <-old.Done():
			r.scanSent(old)
		case <-time.After(10 * time.Second):
			r.t.Fatalf("cycle %d: old connection did not end within 10 s", cycle)
		}
	}
	r.cur = c
	return lat
}

// calm is the calm half of a cycle: pushes and broadcasts on joined
// channels. Every push released so far, those in flight across the fault
// included, must have ended before the next fault.
func (r *chaosRun) calm(cycle int) {
	step := int64(2*cycle + 1)
	r.gate.advance(step)
	for r.finished.Load() < released(step, r.steps, int64(r.nPushes)) || r.bcastRounds.Load() < released(step, r.steps, r.nBroadcasts) {
		select {
		case <-r.progress:
		case <-time.After(chaosOutcomeBound):
			r.t.Fatalf("cycle %d: %d of %d pushes and %d of %d broadcast rounds ended %v after the last progress",
				cycle, r.finished.Load(), released(step, r.steps, int64(r.nPushes)), r.bcastRounds.Load(), released(step, r.steps, r.nBroadcasts), chaosOutcomeBound)
		}
	}
}

// heldRound is one cycle's held pushes, one per selected topic.
type heldRound struct {
	topic   map[int]string // push id → its topic
	out     chan heldRes
	waiting map[int]phxtest.ReplyRef // the ones the server holds
	results []heldRes
}

// staleAfterRejoin is G5: frames of the previous join session of a few
// topics: a broadcast-like push, phx_error, phx_close, and a reply aimed
// at a push that is waiting for its own reply (held by the server until
// the stale frames are read). That push must still get its own.
func (r *chaosRun) staleAfterRejoin(cycle int, sel []int, oldRefs []string) {
	h := r.startHeld(sel)
	r.awaitHeldAtServer(cycle, h)
	r.sendStale(sel, oldRefs, r.heldRefs(h))
	// A ping's reply comes after them on the same connection: once it
	// is back, the socket has read the stale frames.
	if err := r.ping(); err != nil {
		r.pingErrs++
		r.t.Logf("cycle %d: ping after the stale frames: %v", cycle, err)
	}
	for id, rr := range h.waiting {
		_ = rr.Reply("ok", echoBody{ID: id, T: h.topic[id]})
	}
	for len(h.results) < len(sel) {
		select {
		case res := <-h.out:
			h.results = append(h.results, res)
		case <-time.After(chaosOutcomeBound):
			r.t.Fatalf("cycle %d: a held push without an outcome", cycle)
		}
	}
	r.tallyHeld(cycle, h)
}

func (r *chaosRun) startHeld(sel []int) *heldRound {
	h := &heldRound{
		topic:   map[int]string{},
		out:     make(chan heldRes, len(sel)),
		waiting: map[int]phxtest.ReplyRef{},
	}
	for _, i := range sel {
		id := chaosHeldBase + r.heldN
		r.heldN++
		h.topic[id] = r.topics[i]
		ch := r.chans[i]
		goWG(&r.heldWG, func() {
			reply, err := ch.Push(r.ctx, "held", echoBody{ID: id, T: ch.Topic()}, phx.WithTimeout(chaosPushTimeout))
			h.out <- heldRes{id, reply, err}
		})
	}
	return h
}

// awaitHeldAtServer waits until each held push is held by the server or
// has ended.
func (r *chaosRun) awaitHeldAtServer(cycle int, h *heldRound) {
	for len(h.waiting)+len(h.results) < len(h.topic) {
		select {
		case in := <-r.heldIn:
			if _, ours := h.topic[in.id]; ours { // not one of an earlier cycle, on a connection since lost
				h.waiting[in.id] = in.rr
			}
		case res := <-h.out: // ended before the server had it: a connection loss
			h.results = append(h.results, res)
		case <-time.After(chaosOutcomeBound):
			r.t.Fatalf("cycle %d: held pushes neither reached the server nor ended", cycle)
		}
	}
}

// heldRefs maps each topic to the ref of its held push that the server
// holds on cur.
func (r *chaosRun) heldRefs(h *heldRound) map[string]string {
	refOf := map[string]string{}
	for _, m := range r.cur.Received() {
		if m.Event != "held" {
			continue
		}
		var b echoBody
		if json.Unmarshal(m.Payload, &b) == nil {
			if _, ok := h.waiting[b.ID]; ok {
				refOf[m.Topic], _ = m.Ref.Get()
			}
		}
	}
	return refOf
}

// sendStale sends, on cur, frames of each selected topic's previous join
// session, with a reply aimed at its held push.
func (r *chaosRun) sendStale(sel []int, oldRefs []string, refOf map[string]string) {
	for _, i := range sel {
		tp, jr := r.topics[i], oldRefs[i]
		ref, ok := refOf[tp]
		if now, _ := r.cur.JoinRef(tp); jr == "" || jr == now || !ok {
			continue
		}
		reply := mustJSON(map[string]any{"status": "ok", "response": echoBody{ID: -1, T: tp, Stale: true}})
		r.staleInjected += sendAll(r.cur, staleFrames(tp, jr, ref, reply))
		r.staleAimed++
	}
}

func (r *chaosRun) tallyHeld(cycle int, h *heldRound) {
	for _, res := range h.results {
		var b echoBody
		switch {
		case res.err == nil && json.Unmarshal(res.r.Response, &b) == nil && b.ID == res.id && b.T == h.topic[res.id]:
			r.heldOK++
		case res.err == nil:
			r.misrouted.Add(1)
			if b.Stale {
				r.staleDelivered.Add(1)
			}
			r.t.Logf("cycle %d: held push %d resolved with %s", cycle, res.id, res.r.Response)
		case errors.Is(res.err, phx.ErrDisconnected), errors.Is(res.err, phx.ErrTimeout):
			r.heldLost++
		default:
			r.t.Errorf("cycle %d: held push: %v", cycle, res.err)
		}
	}
}

// drain releases every push; each must end within its timeout (+1 s).
// Then it closes the socket and the server and waits for everything the
// run started.
func (r *chaosRun) drain() {
	r.gate.advance(r.steps)
	pushDone := make(chan struct{})
	go func() { r.pushers.Wait(); r.bcaster.Wait(); close(pushDone) }()
	select {
	case <-pushDone:
	case <-time.After(chaosOutcomeBound + 5*time.Second):
		r.stopWork()
		r.t.Errorf("pushes without an outcome: %d", r.started.Load()-r.finished.Load())
		r.closeSock()
		<-pushDone
	}
	r.stats = r.sock.Stats()
	r.closeSock()
	r.srv.Close()
	r.heldWG.Wait()
	r.bg.Wait()
	r.scanSent(r.cur)
	if p := r.otherErr.Load(); p != nil {
		r.t.Errorf("a push ended with %v", *p)
	}
}

// chaosTally is what the report and the checks are made of.
type chaosTally struct {
	byOutcome               [nOutcomes]int
	lost, unresolved        int
	written, writtenUnacked int
	leaked                  int
	heapGrowth              int64
	p50, p99, pmax          time.Duration
	staleEffects            int
}

func (r *chaosRun) tally(ignore goleak.Option) chaosTally {
	var tl chaosTally
	for id, o := range r.outcome {
		tl.byOutcome[o]++
		if o == outNone {
			tl.unresolved++
		}
		if r.acked[id] && o != outOK {
			tl.lost++
			if tl.lost <= 5 {
				r.t.Logf("push %d: reply read by the client, but outcome %s", id, outcomeNames[o])
			}
		}
		if r.writtenSet[id] {
			tl.written++
			if !r.acked[id] {
				tl.writtenUnacked++
			}
		}
	}
	if err := goleak.Find(ignore); err != nil {
		tl.leaked = max(1, strings.Count(err.Error(), "\nGoroutine "))
		r.t.Errorf("goroutine leak: %v", err)
	}
	tl.heapGrowth = int64(r.heapEnd) - int64(r.heapBase)
	slices.Sort(r.latencies)
	if n := len(r.latencies); n > 0 {
		tl.p50, tl.p99, tl.pmax = r.latencies[n/2], r.latencies[n*99/100], r.latencies[n-1]
	}
	r.stMu.Lock()
	tl.staleEffects = r.rejoining - r.crashes + len(r.ended)
	r.stMu.Unlock()
	return tl
}

func (r *chaosRun) report(tl chaosTally) {
	t, ms := r.t, time.Millisecond
	outs := make([]string, 0, nOutcomes)
	for o := outOK; o < nOutcomes; o++ {
		outs = append(outs, fmt.Sprintf("%s=%d", outcomeNames[o], tl.byOutcome[o]))
	}
	t.Logf("chaos: faults restart=%d drop=%d close1011=%d blackhole=%d crash=%d in %v (blackhole detected ≤ %v)",
		r.counts[faultRestart], r.counts[faultDrop], r.counts[faultClose1011], r.counts[faultBlackhole], r.counts[faultCrash], r.churnTime.Round(ms), r.maxDetect.Round(ms))
	for f := range nFaults {
		if r.counts[f] > 0 {
			t.Logf("chaos: %v: %d cycles, %v a cycle, slowest rejoin %v", f, r.counts[f],
				(r.spent[f] / time.Duration(r.counts[f])).Round(ms), r.worst[f].Round(ms))
		}
	}
	t.Logf("chaos: rejoin of all %d topics p50=%v p99=%v max=%v, over %v: %d", r.nTopics,
		tl.p50.Round(ms), tl.p99.Round(ms), tl.pmax.Round(ms), chaosRejoinBound, r.slowRejoins)
	t.Logf("chaos: push outcomes %s; replies written %d, read %d, written but never read %d",
		strings.Join(outs, " "), tl.written, countTrue(r.acked), tl.writtenUnacked)
	t.Logf("chaos: broadcasts sent %d (failed %d), delivered %d, gaps across sessions %d; stale frames injected %d after rejoins (pings failed %d) and %d ahead of join replies, client Stats.Stale %d + Unrouted %d",
		r.bcastSent.Load(), r.bcastErrs.Load(), r.delivered.Load(), r.gapsAcross.Load(), r.staleInjected, r.pingErrs, r.staleBeforeJoin.Load(), r.stats.Stale, r.stats.Unrouted)
	t.Logf("chaos: held pushes %d: own reply %d, lost to a connection loss %d; stale replies aimed at them %d",
		r.heldN, r.heldOK, r.heldLost, r.staleAimed)
	t.Logf("chaos: stats %+v, slow-consumer events %d, tap dropped %d (undecodable %d), heap after cycle %d: %d KiB, after %d: %d KiB",
		r.stats, r.slowCons, r.tap.Dropped(), r.tapBad.Load(), r.heapAt, r.heapBase>>10, r.cycles, r.heapEnd>>10)
	t.Logf("chaos: cycles=%d topics=%d pushes=%d lost=%d dup=%d misrouted=%d reordered=%d stale_delivered=%d heap_growth=%dKiB leaked=%d",
		r.cycles, r.nTopics, len(r.outcome), tl.lost, r.dups.Load(), r.misrouted.Load(), r.reordered.Load(),
		r.staleDelivered.Load()+int64(tl.staleEffects), tl.heapGrowth/1024, tl.leaked)
}

func (r *chaosRun) check(tl chaosTally) {
	t := r.t
	check := func(name string, n int64) {
		if n != 0 {
			t.Errorf("%s = %d, want 0 (seed %d)", name, n, r.seed)
		}
	}
	check("lost acknowledged replies", int64(tl.lost))
	check("pushes without an outcome", int64(tl.unresolved))
	check("pushes resolved later than timeout + 1 s", r.hung.Load())
	check("misrouted replies", r.misrouted.Load())
	check("pushes with an unexpected error", int64(tl.byOutcome[outOther]+tl.byOutcome[outReplyError]))
	check("duplicate broadcasts", r.dups.Load())
	check("reordered broadcasts", r.reordered.Load())
	check("gaps inside a join session", r.gapsInSession.Load())
	check("stale frames delivered", r.staleDelivered.Load())
	check("stale phx_error/phx_close that took effect", int64(tl.staleEffects))
	check("subscriptions ended early", r.subEndedEarly.Load())
	check("cycles rejoined later than 1 s", int64(r.slowRejoins))
	check("broadcasts dropped by the client", int64(r.stats.Dropped+r.stats.Overflowed))
	if r.tap.Dropped() != 0 {
		t.Errorf("the reply tap dropped %d frames: lost is a lower bound", r.tap.Dropped())
	}
	if r.cycles > r.heapAt && tl.heapGrowth > 1<<20 {
		t.Errorf("heap in use grew %d KiB from cycle %d to %d, want ≤ 1 MiB", tl.heapGrowth>>10, r.heapAt, r.cycles)
	}
	if got := tl.byOutcome[outOK]; got == 0 {
		t.Error("no push succeeded")
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
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

// trySend sends v on c unless c is full.
func trySend[T any](c chan<- T, v T) {
	select {
	case c <- v:
	default:
	}
}
