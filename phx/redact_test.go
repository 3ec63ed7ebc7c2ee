package phx

import (
	"errors"
	"net/http"
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

func TestIsSecretName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"token": true, "access_token": true, "userToken": true, "apiKey": true, "api_key": true,
		"X-Auth-Token": true, "Authorization": true, "Sec-WebSocket-Protocol": true, "Cookie": true,
		"password": true, "client_secret": true, "sig": true, "csrftoken": true,
		"author": false, "user": false, "monkey": false, "vsn": false, "device": false, "body": false,
		"passenger": false, "topic": false, "": false,
	} {
		if got := isSecretName(name); got != want {
			t.Errorf("isSecretName(%q) = %v", name, got)
		}
	}
}

func TestRedactHeaderTextPayload(t *testing.T) {
	t.Parallel()
	h := redactHeader(http.Header{"Authorization": {"Bearer x"}, "Sec-Websocket-Protocol": {authProtocol("tok")}, "X-Trace": {"1"}})
	if h.Get("Authorization") != redacted || h.Get("Sec-WebSocket-Protocol") != redacted || h.Get("X-Trace") != "1" {
		t.Errorf("redactHeader = %v", h)
	}
	for in, want := range map[string]string{
		`dial ws://h/s?vsn=2.0.0&token=abc: refused`:        `dial ws://h/s?vsn=2.0.0&token=REDACTED: refused`,
		`get "http://h/lp?user_token=a.b.c&vsn=2.0.0": EOF`: `get "http://h/lp?user_token=REDACTED&vsn=2.0.0": EOF`,
		`protocol phoenix, base64url.bearer.phx.dG9r`:       `protocol phoenix, base64url.bearer.phx.REDACTED`,
		`a=b c==d`: `a=b c==d`,
	} {
		if got := redactText(in); got != want {
			t.Errorf("redactText(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		`{"token":"abc","n":1}`:                     `{"n":1,"token":"REDACTED"}`,
		`{"user":{"password":"x","name":"a"}}`:      `{"user":{"name":"a","password":"REDACTED"}}`,
		`[{"apiKey":12}]`:                           `[{"apiKey":"REDACTED"}]`,
		`{"body":"my token is here"}`:               `{"body":"my token is here"}`,
		`{"token":`:                                 `{"token":`,
		`{"author":"ann","n":12345678901234567890}`: `{"author":"ann","n":12345678901234567890}`,
	} {
		if got := string(redactPayload([]byte(in))); got != want {
			t.Errorf("redactPayload(%s) = %s, want %s", in, got, want)
		}
	}
	if s := showPayload([]byte(strings.Repeat("x", 300)), false, 10); s != "xxxxxxxxxx…" {
		t.Errorf("showPayload = %q", s)
	}
	if s := showPayload([]byte{1, 2}, true, 10); s != "<binary 2 bytes>" {
		t.Errorf("showPayload = %q", s)
	}
}
