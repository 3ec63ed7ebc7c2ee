package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

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
  130  interrupted before the outcome was known (push)
`

// connFlags are the flags every client subcommand shares.
type connFlags struct {
	join    jsonParams // join payload
	socket  kvParams   // connect (query) parameters
	token   string
	timeout time.Duration
	verbose bool
	// logLevel and log: the socket's records on stderr (observe.go).
	logLevel logLevel
	log      *slog.Logger
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.join, "params", "join parameters: a JSON object, or k=v pairs (repeatable, or joined with &)")
	fs.Var(&c.socket, "socket", "socket connect parameter k=v, sent in the query string (repeatable; the URL's own query works too)")
	fs.StringVar(&c.token, "token", "", "auth token, sent in Sec-WebSocket-Protocol as Phoenix 1.8 expects (for a token in the query use -socket token=T)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "join and push timeout")
	fs.BoolVar(&c.verbose, "v", false, "print every frame sent (> ...) and received (< ...) to stderr, secrets redacted")
	fs.Var(&c.logLevel, "log-level", "socket records on stderr: debug (every frame too), info (status), warn, error or off")
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

// connect dials the socket for a subcommand. The socket lives until its
// Close: the caller's ctx (signals) is watched separately so that a signal
// can leave channels cleanly before the socket goes.
func connect(rawURL string, c *connFlags, cfg phx.Config) (*phx.Socket, int, error) {
	ep, err := endpoint(rawURL)
	if err != nil {
		return nil, exitUsage, err
	}
	cfg.Params = c.socket.v
	cfg.AuthToken = c.token
	cfg.Timeout = c.timeout
	cfg.Logger = c.log
	sock, err := phx.Connect(context.Background(), ep, &cfg)
	if err != nil {
		return nil, exitConnect, describeDialError(ep, err)
	}
	return sock, exitOK, nil
}

func describeDialError(ep string, err error) error {
	var de *phx.DialError
	if !errors.As(err, &de) {
		return fmt.Errorf("cannot connect to %s: %v", withoutQuery(ep), err)
	}
	de.URL = withoutQuery(de.URL)
	if de.Status != 0 {
		msg := fmt.Sprintf("cannot connect to %s: the server refused the WebSocket upgrade with HTTP %d", de.URL, de.Status)
		if body := strings.TrimSpace(string(de.Body)); body != "" {
			if len(body) > 200 {
				body = body[:200] + "..."
			}
			msg += ": " + body
		}
		return errors.New(msg)
	}
	return fmt.Errorf("cannot connect to %s: %v", de.URL, de.Err)
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

// statusLine renders a socket status event; "" for events not worth a line.
func statusLine(st phx.Status) string {
	switch e := st.(type) {
	case phx.Connected:
		return "connected to " + e.URL
	case phx.Disconnected:
		s := "disconnected"
		if e.Code != 0 {
			s += fmt.Sprintf(" (close code %d)", e.Code)
		}
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
		if !e.Reconnect {
			s += "; not reconnecting"
		}
		return s
	case phx.Reconnecting:
		return fmt.Sprintf("reconnecting in %v (attempt %d)", e.Delay, e.Attempt)
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

// newFlagSet returns a flag set whose -help prints usage then the flags.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fmt.Fprintln(fs.Output(), "\nflags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseExit turns a flag parse error into an exit code: -help is a success.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
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
