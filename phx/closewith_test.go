package phx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/phxgo/phxgo/phx"
)

// CloseWith sends the close code and reason it is given; a code a close
// frame may not carry is refused and the socket stays open.
func TestCloseWithCode(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := demo(t)
	sock := dial(t, srv, nil)
	conn, err := srv.WaitConn(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		code   int
		reason string
	}{{1001, ""}, {2999, ""}, {5000, ""}, {4000, strings.Repeat("x", 124)}} {
		if err := sock.CloseWith(bad.code, bad.reason); !errors.Is(err, phx.ErrInvalidArgument) {
			t.Fatalf("CloseWith(%d, %d bytes) = %v, want ErrInvalidArgument", bad.code, len(bad.reason), err)
		}
	}
	if _, err := sock.Ping(ctx); err != nil {
		t.Fatalf("socket not open after refused CloseWith: %v", err)
	}
	if err := sock.CloseWith(4001, "bye"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-ctx.Done():
		t.Fatal("the server's connection did not end")
	}
	if c := conn.ClientCloseCode(); c != 4001 {
		t.Fatalf("server saw close code %d, want 4001", c)
	}
	if err := sock.Close(); err != nil {
		t.Fatalf("Close after CloseWith = %v", err)
	}
}
