package phx

import (
	"net/http"
	"strings"
	"testing"
)

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

func TestRedact(t *testing.T) {
	t.Parallel()
	if got := redactURL("wss://u:pw@h/socket/websocket?token=abc&user=ann&vsn=2.0.0"); got != "wss://u:REDACTED@h/socket/websocket?token=REDACTED&user=ann&vsn=2.0.0" {
		t.Errorf("redactURL = %s", got)
	}
	if u := "ws://h/socket/websocket?user=ann"; redactURL(u) != u {
		t.Errorf("a URL without secrets changed: %s", redactURL(u))
	}
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
