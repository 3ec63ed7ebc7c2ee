package managed

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/phxgo/phxgo/phx"
)

func (l *loop) emit(ev Event) {
	if l.streamDone {
		return
	}
	if l.dropped > l.reported {
		// Reported once there is room again, without dropping for it.
		select {
		case l.c.events <- Overflowed{Dropped: l.dropped}:
			l.reported = l.dropped
		default:
		}
	}
	if !l.offer(ev) {
		l.dropped++
	}
}

// offer puts ev on the stream under the overflow policy and reports whether
// it went in.
func (l *loop) offer(ev Event) bool {
	ch := l.c.events
	switch l.cfg.Overflow {
	case phx.Block:
		select {
		case ch <- ev:
			return true
		case <-l.ctx.Done():
			return false
		}
	case phx.DropOldest:
		for {
			select {
			case ch <- ev:
				return true
			default:
			}
			select {
			case <-ch: // the actor is the only sender: this makes room
				l.dropped++
			default:
			}
		}
	case phx.CloseWithError:
		select {
		case ch <- ev:
			return true
		default:
			l.c.streamErr = phx.ErrSlowConsumer
			l.streamDone = true
			close(ch)
			return true
		}
	default:
		select {
		case ch <- ev:
			return true
		default:
			return false
		}
	}
}

func (l *loop) logging() bool { return l.c.logger.Enabled(l.ctx, slog.LevelDebug) }

func (l *loop) logf(msg string, args ...any) {
	if l.logging() {
		l.c.logger.Debug(msg, args...)
	}
}

// logPayload is a push's payload as it goes on the wire, for the log.
func logPayload(v any) string {
	switch v := v.(type) {
	case nil:
		return "{}"
	case json.RawMessage:
		return string(v)
	case []byte:
		return fmt.Sprintf("(%d bytes)", len(v))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "(not JSON)"
	}
	return string(b)
}
