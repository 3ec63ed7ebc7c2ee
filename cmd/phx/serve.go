package main

import (
	"context"
	"fmt"
	"io"

	"github.com/phxgo/phxgo/phx/phxtest"
)

const serveUsage = `usage: phx serve [-addr host:port]

A Phoenix-compatible server (Phoenix 1.7 wire behaviour) for trying any
Phoenix client, and for 'phx bench'.
Channels: room:* (chat with presence; events echo, new_msg, broadcast_from,
update_meta, ...; room:secret refuses joins) and echo:* (replies every push
with its payload). Socket params: user=<name> names the presence; token=bad
is refused.
`

// flagErr is a flag error already reported, with its exit code.
type flagErr struct{ code int }

func (e flagErr) Error() string { return "bad flags" }

// serve runs phxtest's demo application until ctx ends (SIGINT/SIGTERM).
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveUsage)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagErr{flagError(fs, err, stdout, stderr)}
	}
	if len(pos) > 0 {
		newPrinter("phx serve", stderr).usageError("unexpected arguments %v", pos)
		return flagErr{exitUsage}
	}
	srv, err := phxtest.Start(*addr, phxtest.DemoConfig())
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "phx serve: Phoenix socket at %s (WebSocket %s, long-poll %s)\n",
		srv.URL(), srv.WebSocketURL(), srv.LongPollURL())
	fmt.Fprintf(stdout, "phx serve: channels room:* and echo:*; Ctrl-C to stop\n")
	<-ctx.Done()
	fmt.Fprintln(stdout, "phx serve: stopping")
	return nil
}
