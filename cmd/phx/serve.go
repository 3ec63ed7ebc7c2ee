package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// serve runs phxtest's demo application until ctx ends (SIGINT/SIGTERM).
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4000", "listen address")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: phx serve [-addr host:port]\n\n"+
			"A Phoenix-compatible server (Phoenix 1.7 wire behaviour) for trying any Phoenix client.\n"+
			"Channels: room:* (chat with presence; events echo, new_msg, broadcast_from, update_meta, ...;\n"+
			"room:secret refuses joins) and echo:* (replies every push with its payload).\n"+
			"Socket params: user=<name> names the presence; token=bad is refused.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %v", fs.Args())
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
