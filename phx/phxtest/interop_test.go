package phxtest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phxgo/phxgo/phx/phxtest"
)

// ctl is the interop script's remote control: "drop" ends the connection
// abruptly, so the client has to reconnect and rejoin. It reports the vsn
// of the connection it dropped on vsns.
func ctl(vsns chan<- string) phxtest.HandlerFuncs {
	return phxtest.HandlerFuncs{
		InFunc: func(_ context.Context, ch *phxtest.Channel, in phxtest.Inbound) phxtest.Result {
			if in.Event == "drop" {
				select {
				case vsns <- ch.Conn().Vsn():
				default:
				}
				ch.Conn().Drop()
			}
			return phxtest.NoReply()
		},
	}
}

// TestJavaScriptClient runs the official Phoenix JavaScript client (npm
// phoenix, in node) against phxtest: testdata/js/interop_phxtest.mjs, with
// each serializer.
func TestJavaScriptClient(t *testing.T) {
	t.Parallel()
	node := jsNode(t, "../../testdata/js")
	for _, vsn := range []string{"2.0.0", "1.0.0"} {
		t.Run("vsn="+vsn, func(t *testing.T) {
			t.Parallel()
			cfg := phxtest.DemoConfig()
			vsns := make(chan string, 1)
			cfg.Channels["ctl:*"] = ctl(vsns)
			srv := phxtest.NewServer(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "interop_phxtest.mjs", srv.URL(), vsn)
			cmd.Dir = "../../testdata/js"
			out, err := cmd.CombinedOutput()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				t.Log(l)
			}
			if err != nil {
				t.Fatalf("interop script: %v", err)
			}
			if !strings.Contains(string(out), "ok longpoll broadcast and presence") {
				t.Fatal("the script ended before its last check")
			}
			select {
			case v := <-vsns:
				if v != vsn {
					t.Fatalf("the WebSocket connection used vsn %s", v)
				}
			default:
				t.Fatal("the script did not drop its connection")
			}
		})
	}
}

// jsNode returns node for a test that runs the pinned Phoenix JavaScript
// client of testdata/js. Without node or the installed client (`make js`)
// the test is skipped, unless CI is set: there it must run.
func jsNode(t *testing.T, jsDir string) string {
	t.Helper()
	miss := func(what string) string {
		msg := what + "; run `make js` (needs node and npm) to run this test"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: JavaScript tests must run)")
		}
		t.Skip(msg)
		return ""
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return miss("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "phoenix", "package.json")); err != nil {
		return miss("the Phoenix JavaScript client is not installed in " + jsDir)
	}
	return node
}
