package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// colorOn reports whether w gets colour: a terminal, and NO_COLOR unset
// (https://no-color.org).
func colorOn(w io.Writer) bool {
	return os.Getenv("NO_COLOR") == "" && isTerminal(w)
}

const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

func paint(on bool, code, s string) string {
	if !on || s == "" {
		return s
	}
	return code + s + ansiReset
}

// printer writes a command's status and error lines to stderr: prefixed
// with the command, coloured on a terminal, and with every URL's query
// values (tokens) redacted.
type printer struct {
	cmd   string // "phx listen"
	w     io.Writer
	color bool
}

func newPrinter(cmd string, w io.Writer) *printer {
	return &printer{cmd: cmd, w: w, color: colorOn(w)}
}

func (p *printer) line(code, format string, a ...any) {
	msg := redactURLs(fmt.Sprintf(format, a...))
	fmt.Fprintf(p.w, "%s: %s\n", p.cmd, paint(p.color, code, msg))
}

// status is a line about the connection: connected, reconnecting, joined...
func (p *printer) status(format string, a ...any) { p.line(ansiCyan, format, a...) }

// warn is a line about something that went wrong but does not end the command.
func (p *printer) warn(format string, a ...any) { p.line(ansiYellow, format, a...) }

// errorf is a line about the failure that ends the command.
func (p *printer) errorf(format string, a ...any) { p.line(ansiRed, format, a...) }

// usageError is a bad argument: one line and where to find help.
func (p *printer) usageError(format string, a ...any) {
	p.errorf(format, a...)
	fmt.Fprintf(p.w, "run '%s -h' for help\n", p.cmd)
}

// newFlagSet returns a flag set that prints nothing while parsing:
// flagError then chooses between the help and a one-line error.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fmt.Fprintln(fs.Output(), "\nflags:")
		fs.PrintDefaults()
	}
	return fs
}

// printHelp writes a command's usage and its flags to w.
func printHelp(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fs.Usage()
	fs.SetOutput(io.Discard)
}

// flagError handles a flag parse error: -h prints the help on stdout and
// succeeds; anything else is one line and a hint on stderr.
func flagError(fs *flag.FlagSet, err error, stdout, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		printHelp(fs, stdout)
		return exitOK
	}
	newPrinter("phx "+fs.Name(), stderr).usageError("%v", err)
	return exitUsage
}

var urlPattern = regexp.MustCompile(`(?i)\b(wss?|https?)://[^\s"'<>]+`)

// redactURLs replaces the query values and any password of the URLs in s:
// Phoenix apps take tokens as connect parameters, and they must not end up
// in a terminal's scrollback or a CI log.
func redactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		// "dial ws://h/socket?token=t: refused": the colon is the message's.
		trimmed := strings.TrimRight(m, ":;,.)")
		return redactURL(trimmed) + m[len(trimmed):]
	})
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Not parseable: keep the part before any query.
		if i := strings.IndexByte(raw, '?'); i >= 0 {
			return raw[:i] + "?REDACTED"
		}
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			// vsn is the protocol's own and helps reading a log.
			if k, v, ok := strings.Cut(p, "="); ok && v != "" && k != "vsn" {
				parts[i] = k + "=REDACTED"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}
