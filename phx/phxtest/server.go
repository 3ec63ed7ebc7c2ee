package phxtest

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	vsn1 = "1.0.0"
	vsn2 = "2.0.0"

	opText   = websocket.TextMessage
	opBinary = websocket.BinaryMessage

	eventReply     = "phx_reply"
	eventJoin      = "phx_join"
	eventLeave     = "phx_leave"
	eventClose     = "phx_close"
	eventError     = "phx_error"
	eventHeartbeat = "heartbeat"
	topicPhoenix   = "phoenix"

	authTokenPrefix = "base64url.bearer.phx."
)

// Errors returned by the server's methods.
var (
	ErrServerClosed = errors.New("phxtest: server closed")
	ErrConnClosed   = errors.New("phxtest: connection closed")
	ErrNotJoined    = errors.New("phxtest: topic not joined on this connection")
	ErrOutboxFull   = errors.New("phxtest: connection outbox full")
)

// Config configures a Server. The zero value is a Phoenix 1.7 endpoint with
// Phoenix's defaults and no channels. It is copied when the server is made.
type Config struct {
	// Channels routes topics to handlers. A key ending in "*" matches every
	// topic with that prefix ("room:*"); an exact key wins over patterns and
	// a longer prefix over a shorter one. Topics with no route are answered
	// {"reason":"unmatched topic"} as Phoenix does.
	Channels map[string]Handler
	// Connect decides every connection, like connect/3. nil accepts all
	// with no socket id. An error refuses with HTTP 403 (long-poll:
	// {"status":403}).
	Connect func(ConnectInfo) (Socket, error)
	// IdleTimeout closes a WebSocket with 1002 when no frame (data or
	// ping) arrived for this long. 0 means Phoenix's 60 s; negative none.
	IdleTimeout time.Duration
	// MaxChannels is how many channels one connection may have joined, as
	// Phoenix's max_channels_per_transport: a join beyond it is answered
	// {"reason":"too many channels joined"} with status "error" and the
	// join's refs, and its handler's Join is not called. A duplicate join
	// of a joined topic is not refused. 0 means Phoenix's 100; negative,
	// no limit.
	MaxChannels int
	// MaxFrameSize is the largest client message; larger ones close the
	// socket with 1009. 0 means Bandit's 8 000 000 bytes.
	MaxFrameSize int64
	// LongPollWindow is how long a long-poll GET waits for messages before
	// answering 204, even when its session ends meanwhile; stopping the
	// server lets pending polls run it out. 0 means Phoenix's 10 s.
	LongPollWindow time.Duration
	// LongPollIdle is how often a long-poll session checks that a poll
	// started since the last check, and ends if none did: a session the
	// client abandoned lingers one to two of these. It should exceed the
	// window. 0 means 1.5 × LongPollWindow as Phoenix (15 s), at least 5 s.
	LongPollIdle time.Duration
	// LongPollResumeTimeout is how long a long-poll request carrying the
	// token of a session that has ended waits before it is answered as
	// for an unknown session (GET: a new session; POST: status 410).
	// 0 means Phoenix's pubsub_timeout_ms, 2 s.
	LongPollResumeTimeout time.Duration
	// Outbox is the number of frames queued per connection before senders
	// (broadcasts included) block. 0 means 1024.
	Outbox int
	// RecordLimit is how many received frames each connection keeps for
	// Received; older ones are dropped. 0 means 10 000; negative none.
	RecordLimit int
	// Interleave chooses the order of two frames for one client where
	// Phoenix gives none (see Interleave); the zero value reads it from
	// the environment and is otherwise InterleaveFixed.
	Interleave Interleave
	// InterleaveSeed seeds InterleaveSeeded.
	InterleaveSeed uint64
	// Phoenix18 switches to Phoenix 1.8 behaviour where it is observable:
	// phx_error carries {"reason":"channel_crash"} and a server-side
	// disconnect closes with 1001.
	Phoenix18 bool
}

// ConnectInfo is what the Connect hook sees.
type ConnectInfo struct {
	Transport string     // "websocket" or "longpoll"
	Params    url.Values // query parameters, vsn and the long-poll token included
	Header    http.Header
	// AuthToken is the token a client offered in Sec-WebSocket-Protocol
	// ("base64url.bearer.phx.<base64>") or in the long-poll
	// X-Phoenix-AuthToken header, decoded; "" when none.
	AuthToken string
}

// Socket is an accepted connection's identity: ID is the socket id used by
// Disconnect ("" for none) and Assigns are visible to channels.
type Socket struct {
	ID      string
	Assigns map[string]any
}

// Stats counts connections since the server was made.
type Stats struct {
	Accepted int64 // connections accepted (WebSocket and long-poll sessions)
	Refused  int64 // connections refused: Connect hook, RefuseNext or bad vsn
	Active   int   // connections open now, as Conns lists them
}

// Server is an in-process Phoenix-compatible endpoint. All methods are safe
// for concurrent use. After Close every method that talks to clients
// returns ErrServerClosed.
//
// Each WebSocket connection runs one reader goroutine (the HTTP handler's),
// one writer goroutine, one session goroutine that owns the routing state
// (channels by topic, join refs, heartbeats) and one goroutine per joined
// channel. A long-poll session runs the same session and channels, fed by
// HTTP requests. Every goroutine stops when its connection ends, and Close
// waits for all of them.
type Server struct {
	cfg     Config
	routes  []route
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pubsub  pubsub
	pres    presence
	upgrade websocket.Upgrader

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	changed  chan struct{} // closed and replaced on every change
	ln       net.Listener
	hs       *http.Server
	addr     string
	closed   bool
	serveErr chan error
	lp       map[string]*Conn // long-poll sessions by token

	refuse   atomic.Int64
	accepted atomic.Int64
	refused  atomic.Int64
	nextID   atomic.Int64
	faults   atomic.Pointer[Faults]
}

type route struct {
	pattern string
	prefix  bool
	h       Handler
}

// New returns a server that is not listening: use it as an http.Handler
// mounted at the socket path (with a trailing slash: mux.Handle("/socket/",
// srv) serves /socket/websocket and /socket/longpoll), or call Listen.
func New(cfg Config) *Server {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.MaxChannels == 0 {
		cfg.MaxChannels = 100
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = 8_000_000
	}
	if cfg.LongPollWindow == 0 {
		cfg.LongPollWindow = 10 * time.Second
	}
	if cfg.Outbox == 0 {
		cfg.Outbox = 1024
	}
	if cfg.RecordLimit == 0 {
		cfg.RecordLimit = 10000
	}
	if cfg.Interleave == InterleaveDefault {
		cfg.Interleave, cfg.InterleaveSeed = interleaveFromEnv()
	}
	s := &Server{cfg: cfg, conns: map[*Conn]struct{}{}, changed: make(chan struct{}), lp: map[string]*Conn{}}
	for p, h := range cfg.Channels {
		r := route{pattern: p, h: h}
		if strings.HasSuffix(p, "*") {
			r.prefix, r.pattern = true, strings.TrimSuffix(p, "*")
		}
		s.routes = append(s.routes, r)
	}
	sort.Slice(s.routes, func(i, j int) bool {
		a, b := s.routes[i], s.routes[j]
		if a.prefix != b.prefix {
			return !a.prefix
		}
		return len(a.pattern) > len(b.pattern)
	})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pubsub.subs = map[string]map[*chanProc]struct{}{}
	s.pres.topics = map[string][]*presEntry{}
	s.pres.srv = s
	s.upgrade = websocket.Upgrader{
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{"phoenix"},
		// Phoenix answers a failed upgrade with 400 and a text body.
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	return s
}

// Start makes a server listening on addr ("127.0.0.1:0" for a random port)
// and serving the socket at /socket.
func Start(addr string, cfg Config) (*Server, error) {
	s := New(cfg)
	if err := s.Listen(addr); err != nil {
		return nil, err
	}
	return s, nil
}

// TB is the part of testing.TB that NewServer uses; *testing.T and
// *testing.B satisfy it. phxtest does not import package testing, so that
// programs which serve with it (cmd/phx) do not link it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewServer starts a server on 127.0.0.1 with a random port for a test and
// closes it in t.Cleanup.
//
// Cleanups run after the test's deferred calls, so a deferred
// goleak.VerifyNone(t) would see the server's goroutines still running.
// Register the leak check as a cleanup before NewServer instead (cleanups
// run last registered first), or use goleak.VerifyTestMain:
//
//	t.Cleanup(func() { goleak.VerifyNone(t) })
//	srv := phxtest.NewServer(t, phxtest.DemoConfig())
func NewServer(t TB, cfg Config) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("phxtest: start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen serves the socket at /socket on addr. A server listens on at most
// one address; Restart reuses it.
func (s *Server) Listen(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.ln != nil {
		return errors.New("phxtest: already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.serveLocked(ln)
	return nil
}

func (s *Server) serveLocked(ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/socket/", s)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.ln, s.hs = ln, hs
	done := make(chan error, 1)
	s.serveErr = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		done <- hs.Serve(ln)
	}()
}

// Addr is the listening address ("127.0.0.1:port"), "" when not listening.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the socket endpoint as clients are given it: ws://host:port/socket.
// Clients append /websocket (or /longpoll) as phoenix.js does.
func (s *Server) URL() string { return "ws://" + s.Addr() + "/socket" }

// WebSocketURL is URL plus /websocket.
func (s *Server) WebSocketURL() string { return s.URL() + "/websocket" }

// LongPollURL is the long-poll endpoint http://host:port/socket/longpoll.
func (s *Server) LongPollURL() string { return "http://" + s.Addr() + "/socket/longpoll" }

// ServeHTTP serves .../websocket and .../longpoll under whatever path the
// server is mounted at. A WebSocket request returns when its connection ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/websocket"):
		s.serveWebSocket(w, r)
	case strings.HasSuffix(r.URL.Path, "/longpoll"):
		s.serveLongPoll(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
	}
}

// Close disconnects every client (close code 1001, as an endpoint shutting
// down), stops listening and waits for every goroutine the server started.
// It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.down(websocket.CloseGoingAway, false)
	s.cancel()
	s.wg.Wait()
}

// Down stops listening and ends every connection with code (abruptly, with
// no close frame, when code is 0), keeping the address for Up. Clients
// see the server as gone until Up.
func (s *Server) Down(code int) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	s.down(code, code == 0)
	return nil
}

// Up listens again on the address the server had before Down.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.ln != nil {
		return nil
	}
	if s.addr == "" {
		return errors.New("phxtest: never listened")
	}
	var ln net.Listener
	var err error
	// The old socket may linger briefly in the kernel; retry a few times.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		t := time.NewTimer(10 * time.Millisecond)
		<-t.C
	}
	if err != nil {
		return err
	}
	s.serveLocked(ln)
	return nil
}

// Restart is Down(1001) then Up: every client is disconnected and can
// reconnect to the same address.
func (s *Server) Restart() error {
	if err := s.Down(websocket.CloseGoingAway); err != nil {
		return err
	}
	return s.Up()
}

func (s *Server) down(code int, abrupt bool) {
	s.mu.Lock()
	ln, hs, done := s.ln, s.hs, s.serveErr
	s.ln, s.hs = nil, nil
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
		s.closeHTTP(hs, abrupt) // hijacked WebSockets are ours, not http.Server's
		<-done
	}
	for _, c := range conns {
		c.terminate(code, abrupt)
	}
	for _, c := range conns {
		<-c.done
	}
}

// SetFaults sets fault switches for every connection, current and future.
// They combine with each connection's own (Conn.SetFaults).
func (s *Server) SetFaults(f Faults) { s.faults.Store(&f) }

// RefuseNext makes the next n connection attempts fail with HTTP 403.
func (s *Server) RefuseNext(n int) { s.refuse.Store(int64(n)) }

// Stats returns connection counts.
func (s *Server) Stats() Stats {
	return Stats{Accepted: s.accepted.Load(), Refused: s.refused.Load(), Active: len(s.Conns())}
}

// Conns returns the open connections, oldest first. A connection that is
// ending (dropped, closed by either side) is no longer open, though its
// goroutines may still be stopping.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		if c.ctx.Err() == nil {
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (s *Server) route(topic string) Handler {
	for _, r := range s.routes {
		if (!r.prefix && topic == r.pattern) || (r.prefix && strings.HasPrefix(topic, r.pattern)) {
			return r.h
		}
	}
	return nil
}

// Broadcast sends event with payload (any JSON value) to every channel
// joined on topic, as Endpoint.broadcast does. It returns once every
// subscriber's connection has queued the frame.
func (s *Server) Broadcast(topic, event string, payload any) error {
	body, err := marshal(payload)
	if err != nil {
		return err
	}
	return s.pubsub.broadcast(s.ctx, topic, event, body, false, nil, false)
}

// BroadcastBinary broadcasts a binary payload ({:binary, data}).
func (s *Server) BroadcastBinary(topic, event string, data []byte) error {
	return s.pubsub.broadcast(s.ctx, topic, event, data, true, nil, false)
}

// Disconnect closes every connection whose socket id is id, as
// Endpoint.broadcast(id, "disconnect", %{}) does: close code 1000 (1001
// with Phoenix18). It returns how many connections it closed.
func (s *Server) Disconnect(id string) int {
	code := websocket.CloseNormalClosure
	if s.cfg.Phoenix18 {
		code = websocket.CloseGoingAway
	}
	n := 0
	for _, c := range s.Conns() {
		if id != "" && c.sock.ID == id {
			c.terminate(code, false)
			n++
		}
	}
	return n
}

// Presence returns the presence list of topic in presence_state's shape:
// key → {"metas": [meta, ...]}.
func (s *Server) Presence(topic string) map[string]any { return s.pres.list(topic) }

// connect runs the refusal checks shared by both transports.
func (s *Server) connect(r *http.Request, transport string) (Socket, string, bool) {
	q := r.URL.Query()
	vsn := q.Get("vsn")
	if vsn == "" {
		vsn = vsn1
	}
	if vsn != vsn1 && vsn != vsn2 {
		s.refused.Add(1)
		return Socket{}, "", false
	}
	for {
		n := s.refuse.Load()
		if n <= 0 {
			break
		}
		if s.refuse.CompareAndSwap(n, n-1) {
			s.refused.Add(1)
			return Socket{}, "", false
		}
	}
	info := ConnectInfo{Transport: transport, Params: q, Header: r.Header}
	for _, p := range websocket.Subprotocols(r) {
		if strings.HasPrefix(p, authTokenPrefix) {
			info.AuthToken = decodeToken(strings.TrimPrefix(p, authTokenPrefix))
		}
	}
	if t := r.Header.Get("X-Phoenix-AuthToken"); t != "" {
		info.AuthToken = t
	}
	var sock Socket
	if s.cfg.Connect != nil {
		var err error
		if sock, err = s.cfg.Connect(info); err != nil {
			s.refused.Add(1)
			return Socket{}, "", false
		}
	}
	return sock, vsn, true
}

// decodeToken accepts the standard alphabet without padding (what
// phoenix.js sends) and the URL alphabet.
func decodeToken(s string) string {
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return string(b)
		}
	}
	return s
}

func (s *Server) add(c *Conn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.accepted.Add(1)
	s.notify()
	return true
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.notify()
}
