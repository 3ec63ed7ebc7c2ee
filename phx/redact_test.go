package phx

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ws://h/socket/websocket?token=abc&vsn=2.0.0": "ws://h/socket/websocket?token=REDACTED&vsn=2.0.0",
		"ws://h/socket/websocket":                     "ws://h/socket/websocket",
		"wss://u:pw@h/s?a=1&a=2#frag":                 "wss://u:xxxxx@h/s?a=REDACTED&a=REDACTED",
		"http://h/s?;;":                               "http://h/s?REDACTED",
		"ws://u:pw@h/s?t=x\x7f":                       "ws://REDACTED@h/s?REDACTED",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	ue := &url.Error{Op: "Get", URL: "http://h/longpoll?token=abc", Err: errors.New("refused")}
	for _, err := range []error{redactErr(ue), redactErr(errors.Join(errors.New("poll"), ue))} {
		if strings.Contains(err.Error(), "abc") || !errors.As(err, new(*url.Error)) {
			t.Errorf("redactErr: %v", err)
		}
	}
}
