package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/presence"
)

// Exit codes shared by listen, push and presence.
const (
	exitOK          = 0
	exitFailure     = 1 // push: the reply's status was not "ok"; others: any other failure
	exitUsage       = 2
	exitTimeout     = 3 // no reply (join or push) within -timeout
	exitConnect     = 4 // cannot connect: network error or refused WebSocket upgrade
	exitJoinRefused = 5 // the server refused the join
	exitLost        = 6 // the connection or the channel went away before the reply
	exitCrashed     = 7 // push: the channel crashed on the server before replying
	exitInterrupted = 130
)

const exitCodesHelp = `exit status:
  0    ok (push: the reply's status was "ok"; listen, presence: stopped by SIGINT/SIGTERM)
  1    push: the reply's status was not "ok" (an error reply); others: another failure
  2    bad arguments or flags
  3    timeout: no join or push reply within -timeout
  4    cannot connect: network error, or the server refused the WebSocket upgrade (HTTP status shown)
  5    the server refused the join
  6    the connection or the channel went away before the reply
  7    push: the channel crashed on the server before replying
  130  interrupted before the outcome was known (push)
`

// connFlags are the flags every client subcommand shares.
type connFlags struct {
	join    jsonParams // join payload
	socket  kvParams   // connect (query) parameters
	token   string
	timeout time.Duration
	verbose bool
	// logLevel and log: the socket's own records on stderr (observe.go).
	logLevel logLevel
	log      *slog.Logger
}

// check refuses flag values no command can use.
func (c *connFlags) check() error {
	if c.timeout <= 0 {
		return fmt.Errorf("-timeout must be positive, for example -timeout 5s (got %v)", c.timeout)
	}
	return nil
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.join, "params", "join parameters: a JSON object, or k=v pairs (repeatable, or joined with &)")
	fs.Var(&c.socket, "socket", "socket connect parameter k=v, sent in the query string (repeatable; the URL's own query works too)")
	fs.StringVar(&c.token, "token", "", "auth token, sent in Sec-WebSocket-Protocol as Phoenix 1.8 expects (for a token in the query use -socket token=T)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "join and push timeout")
	fs.BoolVar(&c.verbose, "v", false, "print every frame sent (> ...) and received (< ...) to stderr, secrets redacted")
	fs.Var(&c.logLevel, "log-level", "report the socket through slog text records on stderr instead of status lines: debug (every frame too), info, warn, error or off")
}

// jsonParams is a JSON object built from JSON text or k=v pairs.
type jsonParams struct{ obj map[string]any }

func (p *jsonParams) String() string {
	if p == nil {
		return ""
	}
	b, _ := p.value()
	return string(b)
}

func (p *jsonParams) Set(s string) error {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return fmt.Errorf("not a JSON object: %v", err)
		}
		if p.obj == nil {
			p.obj = map[string]any{}
		}
		for k, v := range obj {
			p.obj[k] = v
		}
		return nil
	}
	pairs, err := parsePairs(s)
	if err != nil {
		return err
	}
	if p.obj == nil {
		p.obj = map[string]any{}
	}
	for _, kv := range pairs {
		p.obj[kv[0]] = kv[1]
	}
	return nil
}

// value is the join payload: {} when nothing was given.
func (p *jsonParams) value() (json.RawMessage, error) {
	if p.obj == nil {
		return json.RawMessage(`{}`), nil
	}
	return json.Marshal(p.obj)
}

// kvParams are query parameters from k=v pairs.
type kvParams struct{ v url.Values }

func (p *kvParams) String() string {
	if p == nil {
		return ""
	}
	return p.v.Encode()
}

func (p *kvParams) Set(s string) error {
	pairs, err := parsePairs(s)
	if err != nil {
		return err
	}
	if p.v == nil {
		p.v = url.Values{}
	}
	for _, kv := range pairs {
		p.v.Add(kv[0], kv[1])
	}
	return nil
}

// parsePairs reads "k=v" or "k1=v1&k2=v2". Values are taken literally (no
// percent-decoding) so that tokens survive as typed.
func parsePairs(s string) ([][2]string, error) {
	var out [][2]string
	for part := range strings.SplitSeq(s, "&") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not k=v", part)
		}
		out = append(out, [2]string{k, v})
	}
	if len(out) == 0 {
		return nil, errors.New("empty parameters")
	}
	return out, nil
}

// parseArgs parses flags placed anywhere among the positional arguments
// (users type `phx push URL topic event -timeout 1s`), stopping at "--".
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endpoint accepts the URL forms users type: ws(s)://, http(s)://, or a bare
// host:port/path, with or without /websocket (phx.Connect appends it).
func endpoint(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "ws://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %v", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", fmt.Errorf("bad URL %q: scheme must be ws, wss, http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("bad URL %q: no host", raw)
	}
	return u.String(), nil
}

// connect dials the socket for a subcommand. ctx (the signal context)
// bounds the dial only: a signal during a dial that hangs returns at once,
// while a signal later lets the command leave its channels before it
// closes the socket. release must be called after the socket's Close.
func connect(ctx context.Context, rawURL string, c *connFlags, cfg phx.Config) (sock *phx.Socket, release func(), code int, err error) {
	ep, err := endpoint(rawURL)
	if err != nil {
		return nil, nil, exitUsage, err
	}
	cfg.Params = c.socket.v
	cfg.AuthToken = c.token
	cfg.Timeout = c.timeout
	cfg.Logger = c.log
	handshakeTimeout(&cfg, c.timeout)
	sock, release, err = dialSocket(ctx, ep, &cfg)
	switch {
	case err == nil:
		return sock, release, exitOK, nil
	case ctx.Err() != nil:
		return nil, nil, exitInterrupted, fmt.Errorf("interrupted while connecting to %s", withoutQuery(ep))
	}
	return nil, nil, exitConnect, describeDialError(ep, err)
}

// dialSocket is phx.Connect with ctx bounding only the dial: the socket it
// returns lives until its Close, whatever ctx does next. release must be
// called after Close.
//
// It returns as soon as ctx ends even when the dial hangs (a server that
// accepts TCP and never answers the upgrade). phx.Connect itself returns
// only once its dial has, within the WebSocket handshake timeout
// (handshakeTimeout sets it); its goroutine then closes any socket it got.
func dialSocket(ctx context.Context, ep string, cfg *phx.Config) (sock *phx.Socket, release func(), err error) {
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	type result struct {
		sock *phx.Socket
		err  error
	}
	res := make(chan result)
	abandoned := make(chan struct{})
	go func() {
		s, err := phx.Connect(life, ep, cfg)
		select {
		case res <- result{s, err}:
		case <-abandoned:
			if err == nil {
				_ = s.Close()
			}
			cancel()
		}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			cancel()
			return nil, nil, r.err
		}
		return r.sock, cancel, nil
	case <-ctx.Done():
		close(abandoned)
		return nil, nil, ctx.Err()
	}
}

// handshakeTimeout bounds the WebSocket handshake (the dialer's default is
// 45 s) by the command's timeout.
func handshakeTimeout(cfg *phx.Config, d time.Duration) {
	dialer := *websocket.DefaultDialer
	dialer.HandshakeTimeout = d
	cfg.Dialer = &dialer
}

func describeDialError(ep string, err error) error {
	var de *phx.DialError
	if !errors.As(err, &de) {
		return fmt.Errorf("cannot connect to %s: %v", withoutQuery(ep), err)
	}
	u := withoutQuery(de.URL)
	if u == "" {
		u = withoutQuery(ep)
	}
	switch {
	case de.Status == 401 || de.Status == 403:
		msg := fmt.Sprintf("cannot connect to %s: the server refused the WebSocket upgrade with HTTP %d", u, de.Status)
		if line := bodyLine(de.Body); line != "" {
			msg += ": " + line
		}
		return errors.New(msg)
	case de.Status != 0:
		// Not a Phoenix socket: a web page, a proxy's error, a wrong path.
		msg := fmt.Sprintf("cannot connect to %s: HTTP %d %s", u, de.Status, http.StatusText(de.Status))
		if line := bodyLine(de.Body); line != "" {
			msg += " (" + line + ")"
		}
		return errors.New(msg + "; no Phoenix socket answers there: check the host and the socket's path (often /socket)")
	}
	return fmt.Errorf("cannot connect to %s: %v", u, de.Err)
}

var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// bodyLine is one short line from a response body: an HTML page's title,
// or the first line of text; never the page itself.
func bodyLine(body []byte) string {
	b := strings.TrimSpace(string(body))
	if strings.HasPrefix(b, "<") {
		m := htmlTitle.FindStringSubmatch(b)
		if m == nil {
			return ""
		}
		b = strings.Join(strings.Fields(html.UnescapeString(m[1])), " ")
	}
	b, _, _ = strings.Cut(b, "\n")
	b = strings.TrimSpace(b)
	if len(b) > 120 {
		b = b[:120] + "..."
	}
	return b
}

// withoutQuery drops the query from a URL for messages: it may hold a token.
func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery = ""
	return u.String()
}

// joinOutcome maps a Join error to a message and an exit code.
func joinOutcome(topic string, err error) (int, error) {
	if re, ok := phx.AsReplyError(err); ok {
		return exitJoinRefused, fmt.Errorf("join %s refused: %s %s", topic, re.Status, re.Response)
	}
	switch {
	case errors.Is(err, phx.ErrTimeout):
		return exitTimeout, fmt.Errorf("join %s: no reply within the timeout", topic)
	case errors.Is(err, context.Canceled):
		return exitInterrupted, fmt.Errorf("join %s: interrupted", topic)
	}
	return exitLost, fmt.Errorf("join %s: %v", topic, err)
}

// statusLines renders a socket's status events, one line per reconnect
// attempt: a Disconnected that a Reconnecting follows is held and told
// with it.
type statusLines struct {
	lost *phx.Disconnected
}

// line renders st; "" for events not worth a line (or not yet).
func (sl *statusLines) line(st phx.Status) string {
	switch e := st.(type) {
	case phx.Connected:
		sl.lost = nil
		return "connected to " + e.URL
	case phx.Disconnected:
		if e.Reconnect {
			sl.lost = &e
			return ""
		}
		return disconnected(e) + "; not reconnecting"
	case phx.Reconnecting:
		why := "disconnected"
		if sl.lost != nil {
			why = disconnected(*sl.lost)
			sl.lost = nil
		}
		return fmt.Sprintf("%s; reconnecting in %v (attempt %d)", why, e.Delay, e.Attempt)
	case phx.Closed:
		if e.Err != nil {
			return "closed: " + e.Err.Error()
		}
		return "closed"
	case phx.Joined:
		return "joined " + e.Topic
	case phx.Rejoining:
		when := fmt.Sprintf("in %v", e.Delay)
		if e.Delay == 0 {
			when = "when reconnected"
		}
		s := fmt.Sprintf("%s: rejoining %s (attempt %d)", e.Topic, when, e.Attempt)
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		return s
	case phx.ChannelEnded:
		if e.Err != nil {
			return fmt.Sprintf("%s: ended: %v", e.Topic, e.Err)
		}
		return e.Topic + ": ended"
	case phx.SlowConsumer:
		return fmt.Sprintf("%s: slow consumer, %d messages dropped so far", e.Topic, e.Dropped)
	}
	return ""
}

func disconnected(e phx.Disconnected) string {
	s := "disconnected"
	if e.Code != 0 {
		s += fmt.Sprintf(" (close code %d)", e.Code)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// payloadJSON is a payload ready to embed in a JSON line: binary payloads
// become base64 strings.
func payloadJSON(p []byte, binary bool) json.RawMessage {
	if binary {
		b, _ := json.Marshal(base64.StdEncoding.EncodeToString(p))
		return b
	}
	if !json.Valid(p) {
		b, _ := json.Marshal(string(p))
		return b
	}
	return p
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// newMetas are the metas a presence Join brings that the key did not have
// already. The fold reports a join for every meta of a diff, as phoenix.js
// does, even when the presence_state that came first listed it.
func newMetas(j presence.Join) []presence.Meta {
	if j.Current == nil {
		return j.New.Metas
	}
	known := map[string]bool{}
	for _, r := range j.Current.Refs() {
		known[r] = true
	}
	var out []presence.Meta
	for _, m := range j.New.Metas {
		if m.Ref == "" || !known[m.Ref] {
			out = append(out, m)
		}
	}
	return out
}

// isTerminal reports whether w is a character device (a terminal), without
// x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
