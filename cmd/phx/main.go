// Command phx is phxgo's command-line client for Phoenix Channels.
//
//	phx listen URL TOPIC...               print every event of the topics as JSON Lines
//	phx push URL TOPIC EVENT [PAYLOAD]    push one event and print the reply
//	phx shell URL TOPIC [EVENT]           push a line of input at a time (phx push -i)
//	phx presence URL TOPIC                follow a topic's presence list
//	phx bench URL                         load-test a server: sockets, channels, pushes
//	phx serve [-addr 127.0.0.1:4000]      a Phoenix-compatible dev server with demo channels
//	phx demo                              the dev server, three simulated users and a managed client
//	phx version                           the module version and VCS revision
//
// Each command has -h. It uses only phxgo's public API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// commands is the table of 'phx -h', in its order.
var commands = [][2]string{
	{"listen   URL TOPIC...", "join topics and print every event as JSON Lines"},
	{"push     URL TOPIC EVENT [PAYLOAD]", "join, push one event, print the reply (exit status = outcome)"},
	{"shell    URL TOPIC [EVENT]", "join, then push a line of standard input at a time (push -i)"},
	{"presence URL TOPIC", "follow a topic's presence list (a live table on a terminal)"},
	{"bench    URL", "load-test a server: sockets, channels, pushes, latency histograms"},
	{"serve", "run a Phoenix-compatible dev server with demo channels"},
	{"demo", "the dev server, simulated users and a managed client (about 14 s)"},
	{"version", "print the module version and VCS revision"},
	{"help     [COMMAND]", "this list, or a command's help"},
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: phx <command> [flags] [arguments]\n\ncommands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c[0]))
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c[0], c[1])
	}
	b.WriteString(`
URL: ws://host:4000/socket, wss://..., http(s)://... or host:4000/socket;
"/websocket" is added unless present. 'phx help COMMAND' or 'phx COMMAND -h'
for a command's flags.
`)
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code. ctx ending stands
// for SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "listen":
		return listen(ctx, args[1:], stdout, stderr)
	case "push":
		return push(ctx, args[1:], stdin, stdout, stderr, false)
	case "shell":
		return push(ctx, args[1:], stdin, stdout, stderr, true)
	case "presence":
		return presenceCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, version())
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			if args[1] == "help" || !isCommand(args[1]) {
				fmt.Fprintf(stderr, "phx help: unknown command %q\n", args[1])
				fmt.Fprint(stderr, usage())
				return exitUsage
			}
			return run(ctx, []string{args[1], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	fmt.Fprintf(stderr, "phx: unknown command %q\nrun 'phx -h' for the list of commands\n", args[0])
	return exitUsage
}

func isCommand(name string) bool {
	for _, c := range commands {
		if strings.Fields(c[0])[0] == name {
			return true
		}
	}
	return false
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := serve(ctx, args, stdout, stderr)
	var fe flagErr
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &fe):
		return fe.code
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	newPrinter("phx serve", stderr).errorf("%v", err)
	return exitFailure
}

// version is the module version and VCS revision the binary was built
// from: "(devel)" for a build inside a checkout, the tag for go install
// ...@version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "phx (no build information)"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	s := "phx " + bi.Main.Path + " " + v
	var rev, at, dirty string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	if rev != "" {
		s += ", revision " + rev + dirty
		if at != "" {
			s += " of " + at
		}
	}
	return s + ", " + bi.GoVersion
}
