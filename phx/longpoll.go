package phx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phxgo/phxgo/actor"
	"github.com/phxgo/phxgo/wire"
)

// LongPoll is the HTTP long-poll transport, Phoenix's alternative to the
// WebSocket for networks that do not let WebSockets through. Set it as
// Config.Transport (or as the fallback of Fallback); the socket works over
// it exactly as over a WebSocket. The zero value works.
//
// A connection is one Phoenix long-poll session at <endpoint>/longpoll. Dial
// opens it with a GET that carries no session token (Phoenix answers with
// {"status":410,"token":...}). Then one goroutine polls: each GET returns the
// messages the server has buffered, or status 204 after the server's poll
// window (Phoenix: 10 s), and the next GET follows at once. Writes are queued
// and sent by a second goroutine as POSTs of newline-delimited JSON, in
// order: whatever was queued while a POST was in flight goes in the next one,
// up to 100 messages a POST, as phoenix.js batches them. Phoenix reads an
// ndjson line as a text message only when it starts with "[" (a vsn 2.0.0
// array) and as base64 otherwise, so a vsn 1.0.0 message (a JSON object)
// goes alone in a POST with an application/json body, the one form in which
// Phoenix reads it: vsn 1.0.0 sends one message per round trip.
//
// The session ends, and ReadMessage returns a *CloseError, when the server
// has forgotten it (status 410 on a poll: code 3410 "session_gone", as
// phoenix.js reports it), refuses it (403: 1008), fails (500 or an
// undecodable answer: 1011), or when a request fails (1006) or outlasts
// Timeout (1005 "timeout", as in phoenix.js); the cause (network error,
// HTTP status) is in the error's chain too. Messages received before that
// are read first. A refused session at Dial is a *DialError with Status 403, as
// a refused WebSocket upgrade is; an HTTP error status at Dial (404 when the
// server has no long-poll route) is a *DialError with that status.
//
// A server-side disconnect is noticed late, because Phoenix does not tell
// the poll in flight: that poll runs out its window (204), and the next
// request waits Phoenix's 2 s resume timeout before the server answers 410
// (with a new session's token, which is not used: the socket then opens a
// session of its own and rejoins its channels, where phoenix.js would take
// the new session as its own and leave its channels believing they are
// joined). With Phoenix's defaults the loss surfaces 2 to 12 s after it; the
// session Phoenix opened with the 410 ends by itself 15 to 30 s later.
//
// Authentication: an auth token offered in Sec-WebSocket-Protocol
// (Config.AuthToken) is sent decoded in the X-Phoenix-AuthToken header of
// every poll, as phoenix.js does for Phoenix 1.8; the other headers of
// Config.Header go with every request as they are. Phoenix's session token
// travels in the query parameter "token": a connect parameter of that name
// is sent on the opening GET only, then replaced by the session token.
//
// Binary frames: a binary message is sent base64-encoded on its own line, as
// phoenix.js sends ArrayBuffers. Phoenix puts binary replies and pushes raw
// into its JSON answer (not base64): a message whose first byte is a binary
// frame kind (0, 1 or 2, which no JSON text starts with) is read as a binary
// frame. Phoenix fails the whole poll with HTTP 500 when those bytes are not
// valid UTF-8, which ends the session with 1011.
//
// There is no close handshake: WriteClose does nothing and Close stops both
// goroutines and aborts their requests; the server drops the session after
// its idle timeout. A LongPoll is safe for concurrent use by many sockets;
// its fields must not change once it is in use.
type LongPoll struct {
	// Client makes the requests (TLS, proxy, cookies). Its Timeout, if
	// set, must exceed the server's poll window. Its idle keep-alive
	// connections are the caller's: they outlive the connection's Close
	// (call Client.CloseIdleConnections when done, before a goroutine leak
	// check for instance). Zero: each connection makes its own client on a
	// clone of http.DefaultTransport and closes its idle connections on
	// Close, so that nothing of it outlives the connection.
	Client *http.Client
	// Timeout bounds each request, as phoenix.js's longpollerTimeout. It
	// must exceed the server's poll window. Zero: 20 s (phoenix.js).
	Timeout time.Duration
	// ReadLimit bounds the body of one poll answer in bytes; a larger one
	// ends the session with 1009. Zero: 16 MiB.
	ReadLimit int64
	// WriteBuffer bounds the messages queued for sending; WriteMessage
	// waits for room until its deadline. Zero: 256.
	WriteBuffer int
}

// Protocol constants of Phoenix's long-poll transport.
const (
	lpMaxBatch      = 100 // messages per POST, phoenix.js's MAX_LONGPOLL_BATCH_SIZE
	authTokenPrefix = "base64url.bearer.phx."
	// closeSessionGone is the close code phoenix.js reports when the server
	// no longer knows the session.
	closeSessionGone = 3410
)

var (
	errLPRefused  = errors.New("phx: long-poll session refused")
	errLPNoToken  = errors.New("phx: long-poll session opened without a token")
	errLPClosed   = fmt.Errorf("phx: long-poll connection closed: %w", net.ErrClosed)
	errLPTooLarge = errors.New("phx: long-poll answer exceeds ReadLimit")
	errLPBadJSON  = errors.New("phx: long-poll: undecodable answer")
)

// Dial opens a long-poll session. u is the socket's WebSocket URL
// (ws(s)://host/path/websocket?...): its scheme becomes http(s) and its
// last path element longpoll. An http(s) URL is accepted as well.
func (t *LongPoll) Dial(ctx context.Context, u string, header http.Header) (Conn, error) {
	var cfg LongPoll
	if t != nil {
		cfg = *t
	}
	var own *http.Transport // the connection's own, when Client is zero
	if cfg.Client == nil {
		own = http.DefaultTransport.(*http.Transport).Clone()
		cfg.Client = &http.Client{Transport: own}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 16 << 20
	}
	if cfg.WriteBuffer <= 0 {
		cfg.WriteBuffer = 256
	}
	ep, err := longPollURL(u)
	if err != nil {
		return nil, newDialError(u, err)
	}
	get, post := longPollHeaders(header)
	postJSON := post.Clone()
	postJSON.Set("Content-Type", "application/json")

	opened := false
	if own != nil {
		defer func() {
			if !opened {
				own.CloseIdleConnections()
			}
		}()
	}
	r, err := cfg.request(ctx, http.MethodGet, ep.String(), get, nil)
	if err != nil {
		de := newDialError(ep.String(), err)
		var se *lpStatusError
		if errors.As(err, &se) {
			de.Status, de.Body = se.status, se.body
		}
		return nil, de
	}
	switch {
	case r.Status == http.StatusForbidden:
		return nil, lpDialError(ep.String(), http.StatusForbidden, errLPRefused)
	case r.Status != http.StatusGone:
		return nil, newDialError(ep.String(), fmt.Errorf("phx: long-poll: unexpected status %d opening a session", r.Status))
	case r.Token == "":
		return nil, newDialError(ep.String(), errLPNoToken)
	}
	q := ep.Query()
	q.Set("token", r.Token)
	ep.RawQuery = q.Encode()

	// The connection outlives Dial's ctx (the caller may bound only the
	// dial with it) but keeps its values; Close ends it.
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	opened = true
	c := &lpConn{
		cfg:      cfg,
		own:      own,
		url:      ep.String(),
		get:      get,
		post:     post,
		postJSON: postJSON,
		ctx:      cctx,
		cancel:   cancel,
		in:       make(chan [][]byte, 1),
		out:      make(chan lpFrame, cfg.WriteBuffer),
	}
	c.g.Spawn(cctx, actor.Func(c.pollLoop))
	c.g.Spawn(cctx, actor.Func(c.postLoop))
	return c, nil
}

// longPollURL maps the socket's WebSocket URL to the long-poll endpoint, as
// phoenix.js does: same host, path and query, http(s), "longpoll" in place
// of the last "websocket".
func longPollURL(u string) (*url.URL, error) {
	ep, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	switch ep.Scheme {
	case "ws":
		ep.Scheme = "http"
	case "wss":
		ep.Scheme = "https"
	case "http", "https":
	default:
		return nil, fmt.Errorf("unsupported scheme %q", ep.Scheme)
	}
	if ep.Host == "" {
		return nil, errors.New("no host")
	}
	switch p := ep.Path; {
	case strings.HasSuffix(p, "/websocket"):
		ep.Path = strings.TrimSuffix(p, "websocket") + "longpoll"
	case !strings.HasSuffix(p, "/longpoll"):
		ep.Path = strings.TrimSuffix(p, "/") + "/longpoll"
	}
	ep.RawPath = ""
	return ep, nil
}

// longPollHeaders turns the WebSocket request headers into those of the
// polls and of the POSTs. The auth token offered as a subprotocol goes,
// decoded, into X-Phoenix-AuthToken (Phoenix 1.8) on the polls only, as
// phoenix.js sends it (the server reads it when a poll opens the session);
// the WebSocket-only header is dropped.
func longPollHeaders(header http.Header) (get, post http.Header) {
	post = header.Clone()
	if post == nil {
		post = make(http.Header)
	}
	var tok string
	for _, v := range post.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(p), authTokenPrefix); ok {
				tok = decodeAuthToken(t)
			}
		}
	}
	post.Del("Sec-WebSocket-Protocol")
	get = post.Clone()
	get.Set("Accept", "application/json")
	if tok != "" {
		get.Set("X-Phoenix-AuthToken", tok)
	}
	post.Set("Content-Type", "application/x-ndjson")
	return get, post
}

// decodeAuthToken reverses the subprotocol encoding: phoenix.js writes the
// standard alphabet without padding; padded and URL-alphabet forms are
// accepted too.
func decodeAuthToken(s string) string {
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return string(b)
		}
	}
	return s
}

// lpResponse is the JSON body of every long-poll answer; the real status is
// in it (the HTTP status is 200).
type lpResponse struct {
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
}

// lpStatusError is an answer with an HTTP status other than 200.
type lpStatusError struct {
	status int
	body   []byte
}

func (e *lpStatusError) Error() string {
	return fmt.Sprintf("phx: long-poll: HTTP %d: %s", e.status, e.body)
}

// request makes one request bounded by ctx and Timeout and decodes its
// answer.
func (t *LongPoll) request(ctx context.Context, method, u string, h http.Header, body []byte) (lpResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return lpResponse{}, redactErr(err)
	}
	req.Header = h.Clone() // the client adds cookies from its jar to it
	resp, err := t.Client.Do(req)
	if err != nil {
		return lpResponse{}, redactErr(err) // its text has the URL, session token included
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, t.ReadLimit+1))
	if err != nil {
		return lpResponse{}, err
	}
	if resp.StatusCode != http.StatusOK {
		if len(b) > 512 {
			b = b[:512]
		}
		return lpResponse{}, &lpStatusError{status: resp.StatusCode, body: b}
	}
	if int64(len(b)) > t.ReadLimit {
		return lpResponse{}, errLPTooLarge
	}
	var r lpResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return lpResponse{}, fmt.Errorf("%w: %w", errLPBadJSON, err)
	}
	return r, nil
}

// lpConn is one long-poll session. It owns two goroutines, the poller and
// the poster, stopped by Close; the first failure of either ends the
// connection, and is its error (the cancellation cause of ctx).
type lpConn struct {
	cfg       LongPoll
	own       *http.Transport // nil when the client is the caller's
	url       string
	get, post http.Header // each read by one goroutine only
	postJSON  http.Header // POSTs of a message that cannot be an ndjson line

	ctx    context.Context
	cancel context.CancelCauseFunc
	g      actor.Group
	closed atomic.Bool

	in  chan [][]byte // polled batches; the poller waits when the reader lags
	cur [][]byte      // the batch being read, owned by the reader
	out chan lpFrame  // frames waiting for the poster
}

type lpFrame struct {
	data   []byte
	binary bool
}

// lostError ends a session: it reads as its *CloseError (CloseCode,
// errors.As) and keeps the cause (network error, HTTP status) in the chain.
type lostError struct {
	close *CloseError
	err   error
}

func (e *lostError) Error() string   { return e.close.Error() + ": " + e.err.Error() }
func (e *lostError) Unwrap() []error { return []error{e.close, e.err} }

// fail ends the connection with err unless it has already ended.
func (c *lpConn) fail(code int, reason string, cause error) {
	ce := &CloseError{Code: code, Reason: reason}
	if cause == nil {
		c.cancel(ce)
		return
	}
	c.cancel(&lostError{close: ce, err: cause})
}

// failRequest maps a failed request to the close code phoenix.js reports.
func (c *lpConn) failRequest(err error) {
	if c.ctx.Err() != nil {
		return // Close aborted it
	}
	var se *lpStatusError
	switch {
	case errors.As(err, &se), errors.Is(err, errLPBadJSON):
		c.fail(1011, "internal server error", err)
	case errors.Is(err, errLPTooLarge):
		c.fail(1009, "message too big", err)
	case errors.Is(err, context.DeadlineExceeded):
		c.fail(1005, "timeout", err)
	default:
		c.fail(1006, "", err)
	}
}

// failStatus ends the session on a body status other than the expected.
func (c *lpConn) failStatus(status int) {
	switch status {
	case http.StatusGone:
		c.fail(closeSessionGone, "session_gone", nil)
	case http.StatusForbidden:
		c.fail(1008, "forbidden", nil)
	default:
		c.fail(1011, "internal server error", fmt.Errorf("phx: long-poll: status %d", status))
	}
}

func (c *lpConn) pollLoop(ctx context.Context) error {
	for ctx.Err() == nil {
		r, err := c.cfg.request(ctx, http.MethodGet, c.url, c.get, nil)
		if err != nil {
			c.failRequest(err)
			return nil
		}
		switch r.Status {
		case http.StatusOK:
			if len(r.Messages) == 0 {
				continue
			}
			batch := make([][]byte, len(r.Messages))
			for i, m := range r.Messages {
				batch[i] = []byte(m)
			}
			select {
			case c.in <- batch:
			case <-ctx.Done():
				return nil
			}
		case http.StatusNoContent:
		default:
			// 410 here is a new session the server opened because it no
			// longer knows ours: the channels must rejoin on a new one.
			c.failStatus(r.Status)
			return nil
		}
	}
	return nil
}

func (c *lpConn) postLoop(ctx context.Context) error {
	var body []byte
	var held *lpFrame // taken from the queue but kept for the next POST
	for {
		var f lpFrame
		if held != nil {
			f, held = *held, nil
		} else {
			select {
			case f = <-c.out:
			case <-ctx.Done():
				return nil
			}
		}
		h := c.post
		if !f.ndjson() {
			h = c.postJSON
			body = append(body[:0], f.data...)
		} else {
			body = appendLine(body[:0], f)
		batch:
			for n := 1; n < lpMaxBatch; n++ {
				select {
				case f = <-c.out:
					if !f.ndjson() {
						held = &f
						break batch
					}
					body = append(body, '\n')
					body = appendLine(body, f)
				default:
					break batch
				}
			}
		}
		r, err := c.cfg.request(ctx, http.MethodPost, c.url, h, body)
		if err != nil {
			c.failRequest(err)
			return nil
		}
		if r.Status != http.StatusOK {
			c.failStatus(r.Status)
			return nil
		}
		if cap(body) > 1<<20 { // do not keep a huge batch's buffer
			body = nil
		}
	}
}

// ndjson reports whether f can be a line of an ndjson POST: Phoenix reads
// a line as text only when it starts with "[", and base64-decodes any
// other.
func (f *lpFrame) ndjson() bool { return f.binary || (len(f.data) > 0 && f.data[0] == '[') }

// appendLine appends f as one ndjson line: binary frames in base64, as
// phoenix.js sends them.
func appendLine(dst []byte, f lpFrame) []byte {
	if f.binary {
		return base64.StdEncoding.AppendEncode(dst, f.data)
	}
	return append(dst, f.data...)
}

// ReadMessage returns the next polled message. Once the session has ended
// it returns the messages already polled, then the error that ended it.
func (c *lpConn) ReadMessage() (wire.Opcode, []byte, error) {
	for len(c.cur) == 0 {
		if c.closed.Load() {
			return 0, nil, errLPClosed
		}
		select {
		case b := <-c.in:
			c.cur = b
		case <-c.ctx.Done():
			select {
			case b := <-c.in:
				c.cur = b
				continue
			default:
			}
			return 0, nil, context.Cause(c.ctx)
		}
	}
	m := c.cur[0]
	c.cur[0] = nil
	c.cur = c.cur[1:]
	op := wire.Text
	if len(m) > 0 && m[0] <= 2 {
		op = wire.Binary
	}
	return op, m, nil
}

// WriteMessage queues one message for the poster; it waits for room until
// deadline (no deadline when zero). An error means the session has ended or
// the queue stayed full.
func (c *lpConn) WriteMessage(op wire.Opcode, data []byte, deadline time.Time) error {
	if err := context.Cause(c.ctx); err != nil {
		return err
	}
	f := lpFrame{binary: op == wire.Binary}
	switch {
	case f.binary:
		f.data = bytes.Clone(data)
	case bytes.ContainsAny(data, "\r\n"):
		// One message per line: JSON's insignificant whitespace goes (a
		// newline inside a string is escaped by any encoder).
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return fmt.Errorf("phx: long-poll: %w", err)
		}
		f.data = b.Bytes()
	default:
		f.data = bytes.Clone(data)
	}
	select {
	case c.out <- f:
		return nil
	default:
	}
	var expired <-chan time.Time // a zero deadline waits for room
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case c.out <- f:
		return nil
	case <-c.ctx.Done():
		return context.Cause(c.ctx)
	case <-expired:
		return fmt.Errorf("phx: long-poll: write queue full: %w", context.DeadlineExceeded)
	}
}

// WriteClose does nothing: long-poll has no close handshake.
func (c *lpConn) WriteClose(int, string, time.Time) error { return nil }

// Close ends the session at once, aborting the requests in flight, and
// returns once both goroutines have stopped.
func (c *lpConn) Close() error {
	c.closed.Store(true)
	c.cancel(errLPClosed)
	c.g.Wait()
	if c.own != nil {
		// Aborted requests closed their connections; the keep-alive ones
		// would outlive the session.
		c.own.CloseIdleConnections()
	}
	return nil
}

func lpDialError(u string, status int, err error) *DialError {
	de := newDialError(u, err)
	de.Status = status
	return de
}
