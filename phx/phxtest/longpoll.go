package phxtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

// The long-poll transport feeds the same session core as the WebSocket:
// POSTs deliver decoded frames to the session, GETs drain its outbox.

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

func (s *Server) newLongPoll(w http.ResponseWriter, r *http.Request) {
	sock, vsn, ok := s.connect(r, "longpoll")
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"status": 403})
		return
	}
	var b [18]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	c := newConn(s, "longpoll", vsn, sock, r.URL.Query())
	c.lpActive = make(chan struct{}, 1)
	if !s.add(c) {
		writeJSON(w, http.StatusOK, map[string]any{"status": 410})
		return
	}
	s.mu.Lock()
	s.lp[token] = c
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.runLongPoll(token)
	}()
	writeJSON(w, http.StatusOK, map[string]any{"messages": []any{}, "status": 410, "token": token})
}

// runLongPoll owns a long-poll session: its session core, and the timer
// that ends it when the client stops polling.
func (c *Conn) runLongPoll(token string) {
	var wg sync.WaitGroup
	startSession(c, &wg)
	// A session whose client stopped polling ends after two windows, but
	// not sooner than 5 s: short test windows must not race a busy client.
	idle := max(2*c.srv.cfg.LongPollWindow, 5*time.Second)
	t := time.NewTimer(idle)
	for c.ctx.Err() == nil {
		select {
		case <-c.ctx.Done():
		case <-c.lpActive:
			if !t.Stop() {
				<-t.C
			}
			t.Reset(idle)
		case <-t.C:
			c.terminate(0, true)
		}
	}
	t.Stop()
	wg.Wait()
	c.srv.mu.Lock()
	delete(c.srv.lp, token)
	c.srv.mu.Unlock()
	c.srv.remove(c)
	close(c.done)
}

func (c *Conn) touch() {
	select {
	case c.lpActive <- struct{}{}:
	default:
	}
}

func (c *Conn) poll(w http.ResponseWriter, r *http.Request, token string) {
	c.touch()
	defer c.touch()
	var frames []*outFrame
	t := time.NewTimer(c.srv.cfg.LongPollWindow)
	defer t.Stop()
	select {
	case f := <-c.out:
		frames = append(frames, f)
	case <-t.C:
		writeJSON(w, http.StatusOK, map[string]any{"messages": []any{}, "status": 204, "token": token})
		return
	case <-c.ctx.Done():
		writeJSON(w, http.StatusOK, map[string]any{"messages": []any{}, "status": 410, "token": token})
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
			writeJSON(w, http.StatusInternalServerError, map[string]any{"errors": map[string]any{"detail": "Internal Server Error"}})
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
	c.touch()
	body, err := io.ReadAll(io.LimitReader(r.Body, c.srv.cfg.MaxFrameSize+1))
	if err != nil || int64(len(body)) > c.srv.cfg.MaxFrameSize {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var lines [][]byte
	if r.Header.Get("Content-Type") == "application/x-ndjson" {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, len(body)+1)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) > 0 {
				lines = append(lines, append([]byte(nil), sc.Bytes()...))
			}
		}
	} else {
		lines = [][]byte{body}
	}
	for _, line := range lines {
		var f inFrame
		var err error
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
			f, err = decodeText(c.vsn, line)
		} else {
			var bin []byte
			if bin, err = base64.StdEncoding.DecodeString(string(trimmed)); err == nil {
				f, err = decodeBinary(c.vsn, bin)
			}
		}
		if err != nil {
			// The session process would crash on this frame.
			c.terminate(0, true)
			writeJSON(w, http.StatusInternalServerError, map[string]any{"errors": map[string]any{"detail": "Internal Server Error"}})
			return
		}
		if c.deliver(r.Context(), f) != nil {
			writeJSON(w, http.StatusOK, map[string]any{"status": 410})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": 200})
}
