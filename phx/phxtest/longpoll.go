package phxtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

// The long-poll transport feeds the same session core as the WebSocket:
// POSTs deliver decoded frames to the session, GETs drain its outbox.
//
// Its timing follows Phoenix 1.7's (Phoenix.Transports.LongPoll and its
// session server), because a client's reaction to a lost session depends on
// it:
//
//   - a poll waits for messages up to LongPollWindow, then answers 204. It
//     does not watch the session: when the session ends meanwhile (a
//     server-side disconnect, a crash), the poll still runs out its window;
//   - a request whose token names a session that has ended waits
//     LongPollResumeTimeout (Phoenix's pubsub_timeout_ms) for the session to
//     answer, then gives up: a GET opens a new session (410 and its token), a
//     POST answers {"status":410}. A client therefore notices a server-side
//     disconnect 2 to 12 s later with Phoenix's defaults. A token that was
//     never issued is answered at once;
//   - a session checks every LongPollIdle (Phoenix: 1.5 × window, 15 s)
//     whether a poll started since the previous check, and ends if not: an
//     abandoned session lingers 15 to 30 s;
//   - an ndjson POST line that does not start with "[" is read as base64, and
//     one that is not base64 fails the whole POST with HTTP 500 before any of
//     its lines reaches the session, which lives on. A vsn 1.0.0 object
//     ("{...}") is one of those: Phoenix reads 1.0.0 messages only one per
//     POST, as an application/json body;
//   - stopping the server (Close, Down with a code, Restart) lets the polls
//     in flight run out their windows before the sessions end, as Phoenix's
//     endpoint drains its requests.

// lpKey signs session tokens. Phoenix signs them with the endpoint's secret,
// so a token outlives its session (and a restart); one key per process
// gives the same.
var lpKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
})

// lpToken returns a signed token for session id.
func lpToken(id int64) string {
	var b [8 + 8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(id))
	_, _ = rand.Read(b[8:16])
	m := hmac.New(sha256.New, lpKey())
	m.Write(b[:16])
	copy(b[16:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// lpTokenValid reports whether tok is a token this process issued.
func lpTokenValid(tok string) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 32 {
		return false
	}
	m := hmac.New(sha256.New, lpKey())
	m.Write(b[:16])
	return hmac.Equal(m.Sum(nil)[:16], b[16:])
}

func (s *Server) lpIdle() time.Duration {
	if d := s.cfg.LongPollIdle; d > 0 {
		return d
	}
	// Not below 5 s: a test's short window must not race a client slowed
	// by the race detector. Phoenix's windows are seconds long anyway.
	return max(s.cfg.LongPollWindow*3/2, 5*time.Second)
}

func (s *Server) lpResumeTimeout() time.Duration {
	if d := s.cfg.LongPollResumeTimeout; d > 0 {
		return d
	}
	return 2 * time.Second
}

func (s *Server) serveLongPoll(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "max-age=0, private, must-revalidate")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
		h.Set("Access-Control-Allow-Methods", "get, post, options")
		h.Set("Access-Control-Max-Age", "3600")
		w.WriteHeader(http.StatusOK)
		return
	}
	token := r.URL.Query().Get("token")
	s.mu.Lock()
	c := s.lp[token]
	s.mu.Unlock()
	if c != nil && c.ctx.Err() != nil {
		c = nil
	}
	if c == nil && lpTokenValid(token) {
		// The session this token named has ended; Phoenix waits for it to
		// answer before it gives up.
		t := time.NewTimer(s.lpResumeTimeout())
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch r.Method {
	case http.MethodGet:
		if c == nil {
			s.newLongPoll(w, r)
			return
		}
		c.poll(w, r, token)
	case http.MethodPost:
		if c == nil {
			writeJSON(w, http.StatusOK, map[string]any{"status": 410})
			return
		}
		c.publish(w, r)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, _ := marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// serverError answers as Phoenix's error page does when a long-poll request
// raises: HTTP 500 without the CORS header the transport had set.
func serverError(w http.ResponseWriter) {
	w.Header().Del("Access-Control-Allow-Origin")
	writeJSON(w, http.StatusInternalServerError, map[string]any{"errors": map[string]any{"detail": "Internal Server Error"}})
}

func (s *Server) newLongPoll(w http.ResponseWriter, r *http.Request) {
	sock, vsn, ok := s.connect(r, "longpoll")
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"status": 403})
		return
	}
	c := newConn(s, "longpoll", vsn, sock, r.URL.Query())
	c.lpActive = make(chan struct{}, 1)
	if !s.add(c) {
		writeJSON(w, http.StatusOK, map[string]any{"status": 410})
		return
	}
	token := lpToken(c.id)
	s.mu.Lock()
	s.lp[token] = c
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.runLongPoll(token)
	}()
	if c.effectiveFaults().CloseOnOpen {
		c.terminate(0, true)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": []any{}, "status": 410, "token": token})
}

// runLongPoll owns a long-poll session: its session core, and the check
// that ends it when the client stops polling.
func (c *Conn) runLongPoll(token string) {
	var wg sync.WaitGroup
	startSession(c, &wg)
	idle := c.srv.lpIdle()
	tick := time.NewTicker(idle)
	last := time.Now()
	for c.ctx.Err() == nil {
		select {
		case <-c.ctx.Done():
		case <-c.lpActive:
			last = time.Now()
		case now := <-tick.C:
			if now.Sub(last) > idle {
				c.terminate(0, true)
			}
		}
	}
	tick.Stop()
	wg.Wait()
	c.srv.mu.Lock()
	delete(c.srv.lp, token)
	c.srv.mu.Unlock()
	c.srv.remove(c)
	close(c.done)
}

// touch tells the session a poll started: only polls keep a Phoenix
// session alive, not POSTs.
func (c *Conn) touch() {
	select {
	case c.lpActive <- struct{}{}:
	default:
	}
}

func (c *Conn) poll(w http.ResponseWriter, r *http.Request, token string) {
	c.touch()
	var frames []*outFrame
	t := time.NewTimer(c.srv.cfg.LongPollWindow)
	defer t.Stop()
	noContent := func() {
		writeJSON(w, http.StatusOK, map[string]any{"messages": []any{}, "status": 204, "token": token})
	}
	select {
	case f := <-c.out:
		frames = append(frames, f)
	case <-t.C:
		noContent()
		return
	case <-c.ctx.Done():
		// The session has ended and what it had buffered with it; the
		// poll does not know and runs out its window.
		select {
		case <-t.C:
			noContent()
		case <-r.Context().Done():
		}
		return
	case <-r.Context().Done():
		return
	}
drain:
	for {
		select {
		case f := <-c.out:
			frames = append(frames, f)
		default:
			break drain
		}
	}
	msgs := make([]string, 0, len(frames))
	for _, f := range frames {
		_, data := encode(c.vsn, f)
		// Phoenix puts binary frames into the JSON as they are; bytes that
		// are not UTF-8 make the response fail and the batch is lost.
		if !utf8.Valid(data) {
			serverError(w)
			return
		}
		msgs = append(msgs, string(data))
	}
	for _, f := range frames {
		c.recordSent(f)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs, "status": 200, "token": token})
}

func (c *Conn) publish(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, c.srv.cfg.MaxFrameSize+1))
	if err != nil || int64(len(body)) > c.srv.cfg.MaxFrameSize {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	// Every line is read before any is dispatched: one that is not base64
	// fails the POST and none of its lines reaches the session.
	type line struct {
		data   []byte
		binary bool
	}
	var lines []line
	if r.Header.Get("Content-Type") == "application/x-ndjson" {
		for _, l := range bytes.Split(body, []byte("\n")) {
			l = bytes.TrimSuffix(l, []byte("\r"))
			switch {
			case len(l) == 0:
				// phxgo and phoenix.js never send an empty line; Phoenix
				// would pass it on as an empty binary message.
			case l[0] == '[':
				lines = append(lines, line{data: l})
			default:
				bin, err := base64.StdEncoding.DecodeString(string(l))
				if err != nil {
					serverError(w)
					return
				}
				lines = append(lines, line{data: bin, binary: true})
			}
		}
	} else {
		lines = []line{{data: body}}
	}
	if len(lines) > 0 && c.effectiveFaults().FailFrames {
		serverError(w)
		return
	}
	// The frames go to the session as one batch, so that Interleave can
	// order the replies of one POST as Phoenix may.
	frames := make([]inFrame, 0, len(lines))
	var bad bool
	for _, l := range lines {
		var f inFrame
		var err error
		if l.binary {
			f, err = decodeBinary(c.vsn, l.data)
		} else {
			f, err = decodeText(c.vsn, l.data)
		}
		if err != nil {
			bad = true
			break
		}
		frames = append(frames, f)
	}
	if len(frames) > 0 && c.deliverBatch(r.Context(), frames) != nil {
		writeJSON(w, http.StatusOK, map[string]any{"status": 410})
		return
	}
	if bad {
		// The session process would crash on this frame.
		c.terminate(0, true)
		serverError(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": 200})
}

// closeHTTP stops the HTTP server hs. Unless abrupt, the requests in flight
// finish first, as Phoenix's endpoint drains them when it stops: a pending
// poll runs out its window (so a stop with a long-poll client attached takes
// up to LongPollWindow), then the client's next request finds no server.
func (s *Server) closeHTTP(hs *http.Server, abrupt bool) {
	if abrupt {
		hs.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LongPollWindow+time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx) // its error is the listener's, closed already
	hs.Close()           // what outlasted the bound
}
