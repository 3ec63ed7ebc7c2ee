package managed

import (
	"context"
	"log/slog"
)

// logOff is a level above every record: logging is off.
const logOff = slog.Level(1 << 20)

// switchHandler passes records on to h only while level allows them, so
// that logging can be switched on and off on a running client, and the same
// Logger can be handed to a socket.
type switchHandler struct {
	h     slog.Handler
	level *slog.LevelVar
}

func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= s.level.Level() && s.h.Enabled(ctx, l)
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error { return s.h.Handle(ctx, r) }

func (s *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &switchHandler{h: s.h.WithAttrs(as), level: s.level}
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	return &switchHandler{h: s.h.WithGroup(name), level: s.level}
}

// StartLogging logs, at debug level on Config.Logger, every message the
// client sends (joins, pushes, leaves) and receives (channel events,
// replies). Join payloads are never logged: they carry tokens.
func (c *Client) StartLogging() { c.level.Set(slog.LevelDebug) }

// StopLogging stops the logging StartLogging started.
func (c *Client) StopLogging() { c.level.Set(logOff) }

// Logging reports whether logging is on.
func (c *Client) Logging() bool { return c.level.Level() < logOff }

// Logger is the client's switched logger: it logs only while logging is
// on. Give it to other parts (a socket's logger) to switch them together.
func (c *Client) Logger() *slog.Logger { return c.logger }

// Log writes msg with args when logging is on.
func (c *Client) Log(msg string, args ...any) { c.logger.Debug(msg, args...) }
