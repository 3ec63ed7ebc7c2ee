package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/phxgo/phxgo/phx"
)

// logLevel is the -log-level flag: the level of the socket's records on
// stderr, or off.
type logLevel struct {
	level slog.Level
	off   bool
	set   bool // given on the command line
}

func (l *logLevel) String() string {
	if l == nil {
		return ""
	}
	if l.off {
		return "off"
	}
	return strings.ToLower(l.level.String())
}

func (l *logLevel) Set(s string) error {
	l.set = true
	l.off = false
	switch strings.ToLower(s) {
	case "off", "none":
		l.off = true
		return nil
	case "debug", "info", "warn", "error":
		return l.level.UnmarshalText([]byte(s))
	}
	return fmt.Errorf("%q is not debug, info, warn, error or off", s)
}

// logger is the socket's logger on stderr when -log-level was given: its
// status records (connected, reconnecting, joined...) at Info, slow
// consumers and protocol errors at Warn, every frame at Debug, through
// slog's text handler; they replace the command's own status lines. Nil
// without -log-level (status lines) and with -log-level off (neither).
func (c *connFlags) logger(stderr io.Writer) *slog.Logger {
	if !c.logLevel.set || c.logLevel.off {
		return nil
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel.level}))
}

// printFrames prints every frame the socket sends and receives to w, "> "
// before a frame sent and "< " before one received, secrets redacted, until
// the socket closes or ctx ends. wg tracks its goroutine.
func printFrames(ctx context.Context, sock *phx.Socket, w io.Writer, wg *sync.WaitGroup) error {
	tap, err := sock.Frames(ctx, 1024)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for f := range tap.C() {
			fmt.Fprintln(w, frameText(f))
		}
		if n := tap.Dropped(); n > 0 {
			fmt.Fprintf(w, "(%d frames not shown: stderr was too slow)\n", n)
		}
	}()
	return nil
}

func frameText(f phx.Frame) string {
	dir := "<"
	if f.Dir == phx.Sent {
		dir = ">"
	}
	return dir + " " + f.Text()
}
