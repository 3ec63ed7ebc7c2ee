package phxtest_test

import (
	"testing"

	"github.com/phxgo/phxgo/phx"
	"github.com/phxgo/phxgo/phx/phxtest"
	"go.uber.org/goleak"
)

// The leak check runs as a cleanup registered before NewServer, so it runs
// after the server's own cleanup closed it. Not parallel: goleak sees the
// whole process.
func TestNewServerWithGoleak(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	srv := phxtest.NewServer(t, phxtest.DemoConfig())
	sock, err := phx.Connect(t.Context(), srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	ch := sock.Channel("room:leak", nil)
	if _, err := ch.Join(t.Context()); err != nil {
		t.Fatal(err)
	}
}
