package phx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/phxgo/phxgo/wire"
)

// Logging. A socket logs through Config.Logger, nil for none:
//
//   - Info: connections opened and lost, reconnects, joins, rejoins, leaves
//     and channels closed;
//   - Warn: slow consumers, protocol errors, refused upgrades;
//   - Debug: every frame sent and received.
//
// The level is the handler's: the socket asks the logger whether Debug is
// enabled for every frame, so a slog.LevelVar the caller owns switches frame
// logging on and off on a live socket, and while Debug is off a frame costs
// that one question. Secrets (secret-named connect parameters and JSON keys,
// the auth token, credential headers) never reach a record.

// logPayloadDefault is how many payload bytes a Debug frame record shows
// when Config.LogPayload is zero.
const logPayloadDefault = 200

// debugOn says whether frames are to be logged now. It is asked per frame
// and its answer never cached, so that a level change takes effect at the
// next frame; the handler is asked directly, one call less than
// Logger.Enabled (a Logger's handler never changes).
func (s *Socket) debugOn(ctx context.Context) bool {
	return s.logH != nil && s.logH.Enabled(ctx, slog.LevelDebug)
}

// Direction is the way a frame went.
type Direction uint8

const (
	Received Direction = iota // from the server
	Sent                      // to the server
)

func (d Direction) String() string {
	if d == Sent {
		return "sent"
	}
	return "received"
}

// logFrame writes the Debug record of one frame; the caller checked
// debugOn.
func (s *Socket) logFrame(ctx context.Context, dir Direction, op wire.Opcode, data []byte) {
	var m wire.Message
	var err error
	if dir == Sent {
		m, err = s.ser.DecodeClient(op, data)
	} else {
		m, err = s.ser.DecodeServer(op, data)
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("dir", dir.String()))
	if err != nil {
		attrs = append(attrs, slog.Int("size", len(data)), slog.String("error", err.Error()))
		s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "phx: frame", attrs...)
		return
	}
	attrs = append(attrs, slog.String("topic", m.Topic), slog.String("event", m.Event))
	if jr, ok := m.JoinRef.Get(); ok {
		attrs = append(attrs, slog.String("join_ref", jr))
	}
	if r, ok := m.Ref.Get(); ok {
		attrs = append(attrs, slog.String("ref", r))
	}
	attrs = append(attrs, slog.Int("size", len(data)), slog.Int("payload_size", len(m.Payload)))
	if n := s.cfg.LogPayload; n >= 0 {
		if n == 0 {
			n = logPayloadDefault
		}
		attrs = append(attrs, slog.String("payload", showPayload(m.Payload, m.Binary, n)))
	}
	s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "phx: frame", attrs...)
}

// showPayload is a payload as a log record shows it: secrets redacted, cut
// at max bytes, binary payloads by size only.
func showPayload(p []byte, binary bool, max int) string {
	if binary {
		return "<binary " + strconv.Itoa(len(p)) + " bytes>"
	}
	p = redactPayload(p)
	if len(p) > max {
		return string(p[:max]) + "…"
	}
	return string(p)
}

// logStatus writes the record of a status event.
func (s *Socket) logStatus(st Status) {
	l := s.cfg.Logger
	if l == nil {
		return
	}
	ctx := context.Background()
	lvl := statusLevel(st)
	if !l.Enabled(ctx, lvl) {
		return
	}
	l.LogAttrs(ctx, lvl, "phx: "+statusName(st), slog.Any("", st))
}

func statusLevel(st Status) slog.Level {
	switch st := st.(type) {
	case SlowConsumer:
		return slog.LevelWarn
	case Disconnected:
		var de *DialError
		if errors.Is(st.Err, ErrProtocol) || errors.As(st.Err, &de) && de.Status != 0 {
			return slog.LevelWarn
		}
	case Closed:
		if st.Err != nil && (errors.Is(st.Err, ErrProtocol) || isRefused(st.Err)) {
			return slog.LevelWarn
		}
	}
	return slog.LevelInfo
}

func isRefused(err error) bool {
	var de *DialError
	return errors.As(err, &de) && de.Status != 0
}

func statusName(st Status) string {
	switch st.(type) {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	case Joined:
		return "joined"
	case Rejoining:
		return "rejoining"
	case ChannelEnded:
		return "channel ended"
	case SlowConsumer:
		return "slow consumer"
	}
	return fmt.Sprintf("%T", st)
}

// errValue is err as a log value: its own LogValue when it has one,
// otherwise its text with secrets redacted.
func errValue(err error) slog.Value {
	if lv, ok := err.(slog.LogValuer); ok {
		return lv.LogValue()
	}
	return slog.StringValue(redactText(err.Error()))
}

// errText is err's one-line text with secrets redacted.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return redactText(err.Error())
}

// String forms and log values of the status events.

func (c Connected) String() string { return "connected to " + redactURL(c.URL) }

// LogValue implements slog.LogValuer.
func (c Connected) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", redactURL(c.URL)))
}

func (d Disconnected) String() string {
	var b strings.Builder
	b.WriteString("disconnected")
	if d.Err != nil {
		b.WriteString(": ")
		b.WriteString(errText(d.Err))
	}
	if d.Code != 0 {
		b.WriteString(" (code ")
		b.WriteString(strconv.Itoa(d.Code))
		b.WriteString(")")
	}
	if d.Reconnect {
		b.WriteString(", will reconnect")
	} else {
		b.WriteString(", for good")
	}
	return b.String()
}

// LogValue implements slog.LogValuer.
func (d Disconnected) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 4)
	if d.Err != nil {
		attrs = append(attrs, slog.Any("err", errValue(d.Err)))
	}
	if d.Code != 0 {
		attrs = append(attrs, slog.Int("code", d.Code))
	}
	attrs = append(attrs, slog.String("cause", CauseOf(d.Err).String()), slog.Bool("reconnect", d.Reconnect))
	return slog.GroupValue(attrs...)
}

func (r Reconnecting) String() string {
	return "reconnecting in " + r.Delay.String() + " (attempt " + strconv.Itoa(r.Attempt) + ")"
}

// LogValue implements slog.LogValuer.
func (r Reconnecting) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("attempt", r.Attempt), slog.Duration("delay", r.Delay))
}

func (c Closed) String() string {
	if c.Err == nil {
		return "closed"
	}
	return "closed: " + errText(c.Err)
}

// LogValue implements slog.LogValuer.
func (c Closed) LogValue() slog.Value {
	if c.Err == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(slog.Any("err", errValue(c.Err)))
}

func (j Joined) String() string { return "joined " + j.Topic + " (join_ref " + j.JoinRef + ")" }

// LogValue implements slog.LogValuer.
func (j Joined) LogValue() slog.Value {
	return slog.GroupValue(slog.String("topic", j.Topic), slog.String("join_ref", j.JoinRef))
}

func (r Rejoining) String() string {
	s := "rejoining " + r.Topic + " in " + r.Delay.String() + " (attempt " + strconv.Itoa(r.Attempt) + ")"
	if r.Err != nil {
		s += ": " + errText(r.Err)
	}
	return s
}

// LogValue implements slog.LogValuer.
func (r Rejoining) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("topic", r.Topic), slog.Int("attempt", r.Attempt), slog.Duration("delay", r.Delay)}
	if r.Err != nil {
		attrs = append(attrs, slog.Any("err", errValue(r.Err)))
	}
	return slog.GroupValue(attrs...)
}

func (c ChannelEnded) String() string {
	if c.Err == nil {
		return "channel " + c.Topic + " ended"
	}
	return "channel " + c.Topic + " ended: " + errText(c.Err)
}

// LogValue implements slog.LogValuer.
func (c ChannelEnded) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("topic", c.Topic)}
	if c.Err != nil {
		attrs = append(attrs, slog.Any("err", errValue(c.Err)))
	}
	return slog.GroupValue(attrs...)
}

func (s SlowConsumer) String() string {
	return "slow consumer on " + s.Topic + ": " + strconv.FormatUint(s.Dropped, 10) + " dropped"
}

// LogValue implements slog.LogValuer.
func (s SlowConsumer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("topic", s.Topic), slog.Uint64("dropped", s.Dropped))
}

// String forms and log values of the error types. String is the error's
// text with secrets redacted; LogValue gives its fields.

func (e *ReplyError) String() string { return errText(e) }

// LogValue implements slog.LogValuer.
func (e *ReplyError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("status", e.Status), slog.String("response", showPayload(e.Response, false, logPayloadDefault)))
}

func (e *JoinError) String() string { return errText(e) }

// LogValue implements slog.LogValuer.
func (e *JoinError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("topic", e.Topic), slog.Any("err", errValue(e.Err)))
}

func (e *DialError) String() string { return errText(e) }

// LogValue implements slog.LogValuer.
func (e *DialError) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("url", redactURL(e.URL))}
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("http_status", e.Status))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", errText(e.Err)))
	}
	return slog.GroupValue(attrs...)
}

func (e *CloseError) String() string { return e.Error() }

// LogValue implements slog.LogValuer.
func (e *CloseError) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("code", e.Code), slog.String("reason", e.Reason))
}

func (e *DecodeError) String() string { return errText(e) }

// LogValue implements slog.LogValuer.
func (e *DecodeError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("topic", e.Topic), slog.String("event", e.Event), slog.String("err", errText(e.Err)))
}

func (e *ServerError) String() string { return errText(e) }

// LogValue implements slog.LogValuer.
func (e *ServerError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("topic", e.Topic), slog.String("event", e.Event), slog.String("payload", showPayload(e.Payload, false, logPayloadDefault)))
}

// Cause is why a connection ended, as Stats and observers count
// reconnects.
type Cause uint8

const (
	CauseError            Cause = iota // the connection failed (read or write error, reset)
	CauseDial                          // the connection attempt failed
	CauseHeartbeatTimeout              // a heartbeat went unanswered
	CauseServerClose                   // the server sent a close frame
	CauseProtocol                      // the server sent a frame that could not be decoded
	NumCauses                          // the number of causes
)

// CauseOf classifies the error a connection ended with.
func CauseOf(err error) Cause {
	var de *DialError
	var ce *CloseError
	switch {
	case errors.Is(err, ErrHeartbeatTimeout):
		return CauseHeartbeatTimeout
	case errors.Is(err, ErrProtocol):
		return CauseProtocol
	case errors.As(err, &de):
		return CauseDial
	case errors.As(err, &ce) && ce.Code != 1006:
		return CauseServerClose
	}
	return CauseError
}

func (c Cause) String() string {
	switch c {
	case CauseError:
		return "error"
	case CauseDial:
		return "dial"
	case CauseHeartbeatTimeout:
		return "heartbeat_timeout"
	case CauseServerClose:
		return "server_close"
	case CauseProtocol:
		return "protocol"
	}
	return "unknown"
}
