package phxtest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// The replay test sends the client frames of every transcript recorded
// from real Phoenix to phxtest running the recorded application
// (phxtest.DemoConfig) and compares what comes back, connection by
// connection, byte for byte after normalising what a server invents:
// phx_ref values (mapped to R1, R2, ... in order of appearance, so that
// equal refs must stay equal), online_at seconds and long-poll tokens.

type tline struct {
	Dir       string            `json:"dir"`
	TMs       float64           `json:"t_ms"`
	Conn      string            `json:"conn"`
	Opcode    string            `json:"opcode"`
	Data      string            `json:"data"`
	Code      int               `json:"code"`
	Note      string            `json:"note"`
	Len       int               `json:"len"`
	Sha256    string            `json:"sha256"`
	Truncated bool              `json:"truncated"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	ReqHdr    map[string]string `json:"req_headers"`
	ReqBody   string            `json:"req_body"`
	Status    int               `json:"status"`
	RespHdr   map[string]string `json:"resp_headers"`
	RespBody  string            `json:"resp_body"`
	ElapsedMs float64           `json:"elapsed_ms"`
}

// knownDifferences names every place where phxtest is allowed to differ
// from the recording, with the reason. Keys are "file/conn/#index" of the
// recorded frame (or "file/conn/extra" for frames Phoenix did not send).
var knownDifferences = map[string]string{}

func loadTranscript(t *testing.T, path string) []tline {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []tline
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var x tline
		if err := json.Unmarshal(l, &x); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, x)
	}
	// An http line is written when its response arrives; replay it where
	// its request started.
	var http_, rest []tline
	for _, l := range out {
		if l.Dir == "http" && l.Conn == "admin" {
			http_ = append(http_, l)
		} else {
			rest = append(rest, l)
		}
	}
	for _, h := range http_ {
		i := sort.Search(len(rest), func(i int) bool { return rest[i].TMs > h.TMs })
		rest = append(rest[:i], append([]tline{h}, rest[i:]...)...)
	}
	return rest
}

func TestReplayTranscripts(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../testdata/phoenix/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "idle_timeout" && testing.Short() {
				t.Skip("replays 21 s of recorded time; skipped with -short")
			}
			if strings.HasSuffix(name, "_B") {
				t.Skip("replayed together with its _A pair")
			}
			lines := loadTranscript(t, f)
			if strings.HasSuffix(name, "_A") {
				// Paired files share their time origin: one scenario.
				lines = append(lines, loadTranscript(t, strings.TrimSuffix(f, "_A.jsonl")+"_B.jsonl")...)
				sort.SliceStable(lines, func(i, j int) bool { return lines[i].TMs < lines[j].TMs })
			}
			if name == "longpoll" {
				replayLongPoll(t, name, lines)
				return
			}
			replayWebSocket(t, name, lines)
		})
	}
}

// TestReplayTranscriptsVsn1 replays every channel scenario recorded on
// vsn 2.0.0 once more on a vsn 1.0.0 socket, translated as Phoenix's V1
// serializer would have it: objects instead of arrays, no join_ref from the
// server, and phx_close / phx_error naming their session by the join ref
// in ref (as vsn1_join_push.jsonl shows). Recordings with binary or
// shortened frames, malformed frames, long-poll and the timed idle one are
// left out.
func TestReplayTranscriptsVsn1(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../testdata/phoenix/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	skip := map[string]bool{"binary_push_reply": true, "large_payload": true, "malformed_frames": true,
		"longpoll": true, "idle_timeout": true, "vsn1_join_push": true, "broadcast_two_clients_B": true}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		if skip[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lines := loadTranscript(t, f)
			if strings.HasSuffix(name, "_A") {
				lines = append(lines, loadTranscript(t, strings.TrimSuffix(f, "_A.jsonl")+"_B.jsonl")...)
				sort.SliceStable(lines, func(i, j int) bool { return lines[i].TMs < lines[j].TMs })
			}
			for i := range lines {
				lines[i] = toVsn1(t, lines[i])
			}
			replayWebSocket(t, name+"@vsn1", lines)
		})
	}
}

// toVsn1 translates one line of a vsn 2.0.0 recording to vsn 1.0.0. The
// payload, topic and event are kept byte for byte.
func toVsn1(t *testing.T, l tline) tline {
	t.Helper()
	switch {
	case l.Dir == "note":
		l.Note = strings.Replace(l.Note, "vsn=2.0.0", "vsn=1.0.0", 1)
		return l
	case (l.Dir != "send" && l.Dir != "recv") || l.Opcode != "text":
		return l
	}
	var a []json.RawMessage
	if err := json.Unmarshal([]byte(l.Data), &a); err != nil || len(a) != 5 {
		t.Fatalf("not a vsn 2.0.0 message at %.3f ms: %s", l.TMs, l.Data)
	}
	joinRef, ref, topic, event, payload := a[0], a[1], a[2], a[3], a[4]
	if l.Dir == "send" {
		// As phoenix.js sends it: a null join_ref is left out.
		s := `{"topic":` + string(topic) + `,"event":` + string(event) + `,"payload":` + string(payload) + `,"ref":` + string(ref)
		if string(joinRef) != "null" {
			s += `,"join_ref":` + string(joinRef)
		}
		l.Data = s + "}"
		return l
	}
	if (string(event) == `"phx_close"` || string(event) == `"phx_error"`) && string(ref) == "null" {
		ref = joinRef
	}
	l.Data = `{"event":` + string(event) + `,"payload":` + string(payload) + `,"ref":` + string(ref) + `,"topic":` + string(topic) + "}"
	return l
}

// got is one frame a replay client received.
type got struct {
	opcode string
	data   []byte
	code   int
}

type rclient struct {
	name    string
	ws      *websocket.Conn
	mu      sync.Mutex
	frames  []got
	dropped bool          // closed by the replay without a close frame
	conn    *phxtest.Conn // the server's side, nil if it was not seen
	changed chan struct{}
	done    chan struct{}
}

func (c *rclient) add(g got) {
	c.mu.Lock()
	c.frames = append(c.frames, g)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *rclient) read() {
	defer close(c.done)
	for {
		op, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.add(got{opcode: "close", code: ce.Code})
			}
			return
		}
		kind := "text"
		if op == websocket.BinaryMessage {
			kind = "binary"
		}
		c.add(got{opcode: kind, data: data})
	}
}

// waitN waits until the client has n frames or has ended.
func (c *rclient) waitN(ctx context.Context, n int) {
	for {
		c.mu.Lock()
		have, ch := len(c.frames), c.changed
		c.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-ch:
		case <-c.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

type replay struct {
	t       *testing.T
	name    string
	srv     *phxtest.Server
	clients map[string]*rclient
	helpers map[string]*rclient
	expect  map[string][]tline
	bufSize map[string]int
}

func dialReplay(t *testing.T, srv *phxtest.Server, name, path string, wbuf int) *rclient {
	t.Helper()
	var last int64 // the replay dials one connection at a time
	for _, c := range srv.Conns() {
		last = max(last, c.ID())
	}
	d := websocket.Dialer{WriteBufferSize: wbuf, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+srv.Addr()+path, nil)
	if err != nil {
		t.Fatalf("dial %s %s: %v", name, path, err)
	}
	resp.Body.Close()
	c := &rclient{name: name, ws: ws, changed: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Wait(ctx, func() bool {
		for _, sc := range srv.Conns() {
			if sc.ID() > last {
				c.conn = sc
				return true
			}
		}
		return false
	})
	cancel()
	ws.SetPongHandler(func(data string) error {
		c.add(got{opcode: "pong", data: []byte(data)})
		return nil
	})
	go c.read()
	t.Cleanup(func() { ws.Close(); <-c.done })
	return c
}

var connectedRe = regexp.MustCompile(`^connected GET (\S+) -> HTTP 101`)

// frameData rebuilds a frame the recorder shortened: its first and last
// 256 characters around a run of the character found at the cut.
func frameData(t *testing.T, l tline) []byte {
	if l.Opcode == "binary" || strings.Contains(l.Note, "hex-encoded") {
		b, err := hex.DecodeString(l.Data)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !l.Truncated {
		return []byte(l.Data)
	}
	i := strings.Index(l.Data, "...<")
	j := strings.Index(l.Data, " omitted>...")
	head, tail := l.Data[:i], l.Data[j+len(" omitted>..."):]
	fill := head[len(head)-1:]
	body := head + strings.Repeat(fill, l.Len-len(head)-len(tail)) + tail
	if sum := sha256.Sum256([]byte(body)); hex.EncodeToString(sum[:]) != l.Sha256 {
		t.Fatalf("cannot rebuild the shortened frame at %.3f ms", l.TMs)
	}
	return []byte(body)
}

func replayWebSocket(t *testing.T, name string, lines []tline) {
	cfg := phxtest.DemoConfig()
	scale := 0.0
	if name == "idle_timeout" {
		// The recording's 3 000 ms timeout and the client's schedule, in
		// real time: compressed schedules fail on a loaded machine, where
		// a frame can leave a second late.
		cfg.IdleTimeout = 3 * time.Second
		scale = 1
	}
	srv := phxtest.NewServer(t, cfg)
	r := &replay{t: t, name: name, srv: srv, clients: map[string]*rclient{}, helpers: map[string]*rclient{},
		expect: map[string][]tline{}, bufSize: map[string]int{}}
	for _, l := range lines {
		if l.Dir == "send" && (l.Opcode == "text" || l.Opcode == "binary") {
			n := len(l.Data)
			if l.Truncated {
				n = l.Len
			}
			if strings.Contains(l.Note, "fragmented") || strings.Contains(lines[0].Note, "fragmented") {
				n = 0
			}
			r.bufSize[l.Conn] = max(r.bufSize[l.Conn], n+1024)
		}
		if l.Dir == "note" && strings.Contains(l.Note, "fragmented") {
			r.bufSize[l.Conn] = -1
		}
	}
	start := time.Now()
	for _, l := range lines {
		if scale > 0 && (l.Dir == "send" || l.Dir == "note") {
			pace(start, time.Duration(l.TMs*scale*float64(time.Millisecond)))
		}
		switch l.Dir {
		case "note":
			if m := connectedRe.FindStringSubmatch(l.Note); m != nil {
				r.settle()
				r.settleConns()
				buf := r.bufSize[l.Conn]
				if buf <= 0 {
					buf = 65536
				}
				r.clients[l.Conn] = dialReplay(t, srv, l.Conn, m[1], buf)
			} else if strings.HasPrefix(l.Note, "ACTION: ") {
				r.settle()
				r.action(strings.TrimPrefix(l.Note, "ACTION: "))
			}
		case "recv":
			r.expect[l.Conn] = append(r.expect[l.Conn], l)
		case "send":
			c := r.clients[l.Conn]
			if c == nil {
				t.Fatalf("send on unknown connection %q", l.Conn)
			}
			if strings.Contains(l.Note, "client echoes") {
				continue // gorilla echoes the server's close itself
			}
			if scale > 0 {
				// Timed replay: only this connection's earlier frames
				// matter; waiting for others would delay the schedule.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c.waitN(ctx, len(r.expect[l.Conn]))
				cancel()
			} else {
				r.settle()
			}
			switch l.Opcode {
			case "text":
				_ = c.ws.WriteMessage(websocket.TextMessage, frameData(t, l))
			case "binary":
				_ = c.ws.WriteMessage(websocket.BinaryMessage, frameData(t, l))
			case "ping":
				_ = c.ws.WriteControl(websocket.PingMessage, []byte(l.Data), time.Now().Add(time.Second))
			case "close":
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(l.Code, l.Reason()), time.Now().Add(time.Second))
			}
		case "http":
			r.settle()
			r.settleConns()
			r.admin(l)
		}
	}
	r.settle()
	// Every connection ends (the client closed or the server did); then
	// nothing more can arrive and the comparison is complete.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range r.clients {
		select {
		case <-c.done:
		case <-ctx.Done():
			t.Errorf("%s: connection %s did not end", name, c.name)
		}
	}
	r.compare()
}

func (l tline) Reason() string { return "" }

func pace(start time.Time, at time.Duration) {
	if d := time.Until(start.Add(at)); d > 0 {
		tm := time.NewTimer(d)
		<-tm.C
	}
}

// settle waits until every connection received the frames the recording
// shows before this point (or 30 s passed, for a loaded machine).
func (r *replay) settle() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, c := range r.clients {
		c.waitN(ctx, len(r.expect[name]))
	}
}

// settleConns waits until the server has ended the connections the
// replay has seen end, their channels and presences included, as the
// recording's next case started after them.
func (r *replay) settleConns() {
	open := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range []map[string]*rclient{r.clients, r.helpers} {
		for _, c := range m {
			c.mu.Lock()
			closed := c.dropped || len(c.frames) > 0 && c.frames[len(c.frames)-1].opcode == "close"
			c.mu.Unlock()
			select {
			case <-c.done:
				closed = true
			default:
			}
			if !closed {
				open++
			} else if c.conn != nil {
				select {
				case <-c.conn.Done():
				case <-ctx.Done():
					r.t.Errorf("the server did not end connection %s", c.name)
				}
			}
		}
	}
	if err := r.srv.Wait(ctx, func() bool { return r.srv.Stats().Active == open }); err != nil {
		r.t.Errorf("%d connections expected open, server has %d: %v", open, r.srv.Stats().Active, err)
	}
}

func (r *replay) admin(l tline) {
	u, err := url.Parse(l.URL)
	if err != nil {
		r.t.Fatal(err)
	}
	q := u.Query()
	switch u.Path {
	case "/admin/broadcast":
		n, _ := strconv.Atoi(q.Get("n"))
		for i := 1; i <= n; i++ {
			if h := q.Get("binary"); h != "" {
				b, _ := hex.DecodeString(h)
				err = r.srv.BroadcastBinary(q.Get("topic"), q.Get("event"), b)
			} else {
				err = r.srv.Broadcast(q.Get("topic"), q.Get("event"), map[string]any{"i": i})
			}
			if err != nil {
				r.t.Fatal(err)
			}
		}
	case "/admin/disconnect":
		r.srv.Disconnect("user_socket:" + q.Get("user"))
	default:
		r.t.Fatalf("unknown admin call %s", l.URL)
	}
}

var (
	joinAction = regexp.MustCompile(`^(\w+) joins (a second time from another socket )?with device (\w+)`)
	pushAction = regexp.MustCompile(`^(\w+) \(first socket, device \w+\) pushes update_meta (\{.*\})$`)
)

// action performs what the presence recording did on sockets it did not
// record: other users joining, updating, leaving and dropping.
func (r *replay) action(a string) {
	t := r.t
	send := func(c *rclient, s string) {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(c *rclient, n int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.waitN(ctx, n)
	}
	switch {
	case joinAction.MatchString(a):
		m := joinAction.FindStringSubmatch(a)
		name := m[1]
		if m[2] != "" {
			name += "b"
		}
		c := dialReplay(t, r.srv, name, "/socket/websocket?vsn=2.0.0&user="+m[1], 65536)
		r.helpers[name] = c
		send(c, `["1","1","room:presence","phx_join",{"device":"`+m[3]+`"}]`)
		wait(c, 3)
	case pushAction.MatchString(a):
		m := pushAction.FindStringSubmatch(a)
		c := r.helpers[m[1]]
		send(c, `["1","2","room:presence","update_meta",`+m[2]+`]`)
	case strings.HasSuffix(a, "leaves (phx_leave)"):
		send(r.helpers[strings.Fields(a)[0]], `["1","3","room:presence","phx_leave",{}]`)
	case strings.Contains(a, "closed abruptly"):
		c := r.helpers[strings.TrimSuffix(strings.Fields(a)[0], "'s")]
		c.mu.Lock()
		c.dropped = true
		c.mu.Unlock()
		c.ws.UnderlyingConn().Close()
	case strings.Contains(a, "closes its websocket"):
		c := r.helpers[strings.Fields(a)[0]]
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		<-c.done
	default:
		t.Fatalf("unknown action %q", a)
	}
}

// normaliser maps invented values to stable placeholders, one mapping per
// side so that a ref that repeats must repeat on both sides.
type normaliser struct {
	refs map[string]string
}

var (
	phxRefRe   = regexp.MustCompile(`"(phx_ref|phx_ref_prev)":"([^"]*)"`)
	onlineAtRe = regexp.MustCompile(`"online_at":"\d+"`)
)

func (n *normaliser) text(s string) string {
	s = phxRefRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := phxRefRe.FindStringSubmatch(m)
		id, ok := n.refs[sub[2]]
		if !ok {
			id = "R" + strconv.Itoa(len(n.refs)+1)
			n.refs[sub[2]] = id
		}
		return `"` + sub[1] + `":"` + id + `"`
	})
	return onlineAtRe.ReplaceAllString(s, `"online_at":"T"`)
}

func describe(g got) string {
	switch g.opcode {
	case "close":
		return fmt.Sprintf("close %d", g.code)
	case "binary":
		return "binary " + hex.EncodeToString(g.data)
	}
	if len(g.data) > 65536 {
		sum := sha256.Sum256(g.data)
		return fmt.Sprintf("%s len=%d sha256=%s", g.opcode, len(g.data), hex.EncodeToString(sum[:]))
	}
	return g.opcode + " " + string(g.data)
}

func describeRecorded(l tline) string {
	switch l.Opcode {
	case "close":
		return fmt.Sprintf("close %d", l.Code)
	case "binary":
		return "binary " + l.Data
	}
	if l.Truncated {
		return fmt.Sprintf("%s len=%d sha256=%s", l.Opcode, l.Len, l.Sha256)
	}
	return l.Opcode + " " + l.Data
}

func (r *replay) compare() {
	names := make([]string, 0, len(r.clients))
	for n := range r.clients {
		names = append(names, n)
	}
	sort.Strings(names)
	want, have := &normaliser{refs: map[string]string{}}, &normaliser{refs: map[string]string{}}
	for _, name := range names {
		c := r.clients[name]
		c.mu.Lock()
		frames := append([]got(nil), c.frames...)
		c.mu.Unlock()
		exp := r.expect[name]
		for i := 0; i < max(len(exp), len(frames)); i++ {
			key := fmt.Sprintf("%s/%s/#%d", r.name, name, i)
			var w, h string
			if i < len(exp) {
				w = want.text(describeRecorded(exp[i]))
			}
			if i < len(frames) {
				h = have.text(describe(frames[i]))
			}
			if i >= len(exp) {
				key = fmt.Sprintf("%s/%s/extra", r.name, name)
			}
			if w == h {
				continue
			}
			if why, ok := knownDifferences[key]; ok {
				r.t.Logf("known difference %s: %s", key, why)
				continue
			}
			r.t.Errorf("%s\n recorded: %s\n  phxtest: %s", key, w, h)
		}
	}
}

// replayLongPoll replays the long-poll recording over HTTP. Batching of
// messages into GET responses depends on timing, so the messages of all
// successful polls are compared as one sequence; every other response is
// compared whole.
func replayLongPoll(t *testing.T, name string, lines []tline) {
	cfg := phxtest.DemoConfig()
	// The recording's 10 s window, shortened.
	cfg.LongPollWindow = 500 * time.Millisecond
	srv := phxtest.NewServer(t, cfg)
	base := "http://" + srv.Addr()
	tokens := map[string]string{} // recorded → ours
	var reqs []tline
	for _, l := range lines {
		if l.Dir == "http" {
			reqs = append(reqs, l)
		}
	}
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].TMs < reqs[j].TMs })

	type result struct {
		l      tline
		u      string // the URL requested
		status int
		body   string
		hdr    http.Header
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
		pending []tline
		waits   []chan struct{}
	)
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(l tline, u string) {
		var body io.Reader
		if l.ReqBody != "" {
			body = strings.NewReader(l.ReqBody)
		}
		req, _ := http.NewRequest(l.Method, u, body)
		for k, v := range l.ReqHdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", l.Method, l.URL, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		mu.Lock()
		results = append(results, result{l: l, u: u, status: resp.StatusCode, body: string(b), hdr: resp.Header})
		mu.Unlock()
	}
	learn := func(recorded string, ours string) {
		var a, b struct{ Token string }
		_ = json.Unmarshal([]byte(recorded), &a)
		_ = json.Unmarshal([]byte(ours), &b)
		if a.Token != "" && b.Token != "" {
			mu.Lock()
			tokens[a.Token] = b.Token
			mu.Unlock()
		}
	}
	for _, l := range reqs {
		// Wait for earlier requests that had answered before this one
		// started in the recording.
		for i := 0; i < len(pending); i++ {
			if pending[i].TMs+pending[i].ElapsedMs < l.TMs {
				<-waits[i]
				pending, waits = append(pending[:i], pending[i+1:]...), append(waits[:i], waits[i+1:]...)
				i--
			}
		}
		if l.Conn == "admin" {
			u, _ := url.Parse(l.URL)
			q := u.Query()
			n, _ := strconv.Atoi(q.Get("n"))
			for i := 1; i <= n; i++ {
				if err := srv.Broadcast(q.Get("topic"), q.Get("event"), map[string]any{"i": i}); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		u := base + l.URL
		mu.Lock()
		for rec, ours := range tokens {
			u = strings.ReplaceAll(u, rec, ours)
		}
		mu.Unlock()
		done := make(chan struct{})
		wg.Add(1)
		go func(l tline, u string) {
			defer wg.Done()
			defer close(done)
			do(l, u)
			mu.Lock()
			last := results[len(results)-1]
			mu.Unlock()
			learn(l.RespBody, last.body)
		}(l, u)
		if l.ElapsedMs > 100 {
			pending, waits = append(pending, l), append(waits, done)
			continue
		}
		<-done
	}
	wg.Wait()

	sort.SliceStable(results, func(i, j int) bool { return results[i].l.TMs < results[j].l.TMs })
	want, have := &normaliser{refs: map[string]string{}}, &normaliser{refs: map[string]string{}}
	tokenRe := regexp.MustCompile(`"token":"[^"]*"`)
	var wantMsgs, haveMsgs []string
	for _, res := range results {
		l := res.l
		key := fmt.Sprintf("%s/%s %s", name, l.Method, l.URL)
		var rb, hb struct {
			Messages []string
			Status   int
		}
		isPoll := l.Method == http.MethodGet && json.Unmarshal([]byte(l.RespBody), &rb) == nil && rb.Status == 200
		if isPoll || (l.Method == http.MethodGet && l.Status == 500) {
			// Messages are compared below as one sequence.
			wantMsgs = append(wantMsgs, rb.Messages...)
			if json.Unmarshal([]byte(res.body), &hb) == nil && hb.Status == 200 {
				haveMsgs = append(haveMsgs, hb.Messages...)
			}
			if l.Status == 500 && res.status != 500 {
				t.Errorf("%s: HTTP %d, recorded 500", key, res.status)
			}
			continue
		}
		if json.Unmarshal([]byte(res.body), &hb) == nil && hb.Status == 200 && l.Method == http.MethodGet {
			// A poll that found messages where the recording's poll had
			// none: the batching differs, the sequence is what counts.
			haveMsgs = append(haveMsgs, hb.Messages...)
			continue
		}
		w := tokenRe.ReplaceAllString(l.RespBody, `"token":"T"`)
		h := tokenRe.ReplaceAllString(res.body, `"token":"T"`)
		if res.status != l.Status || w != h {
			t.Errorf("%s\n recorded: %d %s\n  phxtest: %d %s", key, l.Status, w, res.status, h)
		}
		for k, v := range l.RespHdr {
			if strings.HasPrefix(k, "Access-Control") && res.hdr.Get(k) != v {
				t.Errorf("%s: header %s = %q, recorded %q", key, k, res.hdr.Get(k), v)
			}
		}
	}
	// The recording's last polls found messages that a loaded machine may
	// not have queued yet when ours ran: poll on, as a client would.
	if n := len(wantMsgs) - len(haveMsgs); n > 0 {
		haveMsgs = append(haveMsgs, pollMore(t, client, results[len(results)-1].u, n)...)
	}
	for i := 0; i < max(len(wantMsgs), len(haveMsgs)); i++ {
		var w, h string
		if i < len(wantMsgs) {
			w = want.text(wantMsgs[i])
		}
		if i < len(haveMsgs) {
			h = have.text(haveMsgs[i])
		}
		if w != h {
			key := fmt.Sprintf("%s/messages/#%d", name, i)
			if why, ok := knownDifferences[key]; ok {
				t.Logf("known difference %s: %s", key, why)
				continue
			}
			t.Errorf("%s\n recorded: %s\n  phxtest: %s", key, w, h)
		}
	}
}

// pollMore polls u until it has n more messages or a poll comes back empty
// (the server's window passed with nothing to send), at most a few times.
func pollMore(t *testing.T, client *http.Client, u string, n int) []string {
	var msgs []string
	for range 5 {
		resp, err := client.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			return msgs
		}
		var body struct {
			Messages []string
			Status   int
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || body.Status != 200 {
			return msgs
		}
		msgs = append(msgs, body.Messages...)
		if len(msgs) >= n {
			return msgs
		}
	}
	return msgs
}

// TestReplayConnectRefused checks the HTTP answers to refused and invalid
// connects recorded in connect_refused.json.
func TestReplayConnectRefused(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../testdata/phoenix/connect_refused.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Case    string            `json:"case"`
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"request_headers"`
			Status  int               `json:"status"`
			Body    string            `json:"body"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	for _, c := range doc.Cases {
		t.Run(c.Case, func(t *testing.T) {
			req, _ := http.NewRequest(c.Method, "http://"+srv.Addr()+c.URL, nil)
			for k, v := range c.Headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.Status {
				t.Fatalf("status %d, recorded %d", resp.StatusCode, c.Status)
			}
			if c.Status == http.StatusSwitchingProtocols {
				return // the body is the WebSocket; the client goes away
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != c.Body {
				t.Fatalf("body %q, recorded %q", body, c.Body)
			}
		})
	}
}
