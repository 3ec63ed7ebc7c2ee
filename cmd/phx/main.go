// Command phx is phxgo's command-line client for Phoenix Channels.
//
//	phx listen URL TOPIC...           print every event of the topics as JSON Lines
//	phx push URL TOPIC EVENT [JSON]   push one event and print the reply
//	phx presence URL TOPIC            follow a topic's presence list
//	phx serve [-addr 127.0.0.1:4000]  a Phoenix-compatible dev server with demo channels
//	phx demo                          the dev server and three simulated users, in ten seconds
//
// Each command has -help. It uses only phxgo's public API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: phx <command> [flags] [arguments]

commands:
  listen    URL TOPIC...          join topics and print every event as JSON Lines
  push      URL TOPIC EVENT [JSON] join, push one event, print the reply (exit status = outcome)
  presence  URL TOPIC             follow a topic's presence list (a live table on a terminal)
  serve                           run a Phoenix-compatible dev server with demo channels
  demo                            the dev server and three simulated users, in about ten seconds

URL: ws://host:4000/socket, wss://..., http(s)://... or host:4000/socket;
"/websocket" is added unless present. 'phx <command> -help' for details.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code. ctx ending stands
// for SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "listen":
		return listen(ctx, args[1:], stdout, stderr)
	case "push":
		return push(ctx, args[1:], stdout, stderr)
	case "presence":
		return presenceCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		err := serve(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		}
		fmt.Fprintf(stderr, "phx serve: %v\n", err)
		return exitFailure
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "phx: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
