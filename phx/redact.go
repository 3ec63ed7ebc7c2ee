package phx

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Secrets travel in connect URLs (a token parameter, the long-poll session
// token, a password in userinfo), and errors and status events end up in
// logs. So every URL the library puts into an error string or a status
// event is redacted: each query value but vsn's becomes "REDACTED", and a
// password "xxxxx". Code that needs the URL as dialled asks for it:
// DialError.FullURL, Socket.Endpoint.

const redacted = "REDACTED"

// redactURL returns s with its query values and password hidden.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Keep what is certainly no secret: the scheme and host part.
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i] + "?" + redacted
		}
		if i := strings.LastIndex(s, "@"); i >= 0 {
			start := strings.Index(s, "://") + 3
			if start < 3 || start > i {
				start = 0
			}
			s = s[:start] + redacted + s[i:]
		}
		return s
	}
	if u.RawQuery != "" {
		q, _ := url.ParseQuery(u.RawQuery)
		for k, vs := range q {
			if k == "vsn" {
				continue
			}
			for i := range vs {
				vs[i] = redacted
			}
		}
		// Pairs ParseQuery rejects are left out, so they cannot leak.
		u.RawQuery = q.Encode()
		if u.RawQuery == "" {
			u.RawQuery = redacted
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

// redactErr hides the URL of a *url.Error (what net/http returns, with the
// request's URL in its text) in err's chain, copying what it changes.
func redactErr(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	if ue == err {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	// Deeper in a chain the text around it is not ours to rebuild: keep
	// the chain for errors.Is and errors.As, redact the text.
	return &redactedErr{msg: strings.ReplaceAll(err.Error(), ue.URL, redactURL(ue.URL)), err: err}
}

type redactedErr struct {
	msg string
	err error
}

func (e *redactedErr) Error() string { return e.msg }
func (e *redactedErr) Unwrap() error { return e.err }

// sanitizeDialErr redacts a *DialError made by any transport, the caller's
// own included, keeping its full URL for FullURL.
func sanitizeDialErr(err error) error {
	var de *DialError
	if !errors.As(err, &de) {
		return redactErr(err)
	}
	if de.full != "" && de.URL == redactURL(de.full) {
		return err // made by newDialError
	}
	cp := *de
	if cp.full == "" {
		cp.full = de.URL
	}
	cp.URL = redactURL(cp.full)
	cp.Err = redactErr(de.Err)
	if de == err {
		return &cp
	}
	return &redactedErr{msg: strings.ReplaceAll(err.Error(), de.Error(), cp.Error()), err: &cp}
}

// Logs, frame taps and the CLI show more than URLs: header values, error
// text from any layer, and payloads (join parameters carry tokens). There
// a value is a secret by the name it goes under.

// secretWords are the parts of a parameter, header or JSON key name
// ("access_token", "apiKey", "X-Auth-Token") that mark its value as a
// secret; a part ending in token, secret or password does too.
var secretWords = map[string]bool{
	"token": true, "secret": true, "password": true, "passwd": true, "pwd": true, "pass": true,
	"auth": true, "authorization": true, "key": true, "apikey": true, "signature": true, "sig": true,
	"credential": true, "credentials": true, "session": true, "sessionid": true, "jwt": true,
	"cookie": true, "bearer": true, "otp": true, "pin": true,
}

// isSecretName says whether a parameter, header or JSON key named name
// holds a secret, by the words it is made of.
func isSecretName(name string) bool {
	if strings.EqualFold(name, "Sec-WebSocket-Protocol") {
		return true
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		// Words end at punctuation and where a lower-case letter meets an
		// upper-case one (apiKey).
		end := i == len(name) || !isAlnum(name[i]) ||
			(i > 0 && isLower(name[i-1]) && isUpper(name[i]))
		if !end {
			continue
		}
		if w := strings.ToLower(name[start:i]); w != "" {
			if secretWords[w] || strings.HasSuffix(w, "token") || strings.HasSuffix(w, "secret") || strings.HasSuffix(w, "password") {
				return true
			}
		}
		start = i
		if i < len(name) && !isAlnum(name[i]) {
			start = i + 1
		}
	}
	return false
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isLower(c) || isUpper(c) || c >= '0' && c <= '9' }

// redactHeader returns a copy of h with secret-named headers (Authorization,
// Cookie, Sec-WebSocket-Protocol, which carries the auth token...) redacted.
func redactHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if isSecretName(k) {
			out[k] = []string{redacted}
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// redactText redacts secrets inside free text such as an error message:
// the value of every name=value pair whose name is secret-like (query
// strings quoted in errors), and bearer tokens as phoenix.js sends them.
func redactText(s string) string {
	if !strings.ContainsAny(s, "=.") {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			break
		}
		eq += i
		// The name runs back from '=' to a separator.
		start := eq
		for start > i && !isSep(s[start-1]) {
			start--
		}
		end := eq + 1
		for end < len(s) && !isSep(s[end]) && s[end] != '&' && s[end] != ':' {
			end++
		}
		b.WriteString(s[i : eq+1])
		if isSecretName(s[start:eq]) && end > eq+1 {
			b.WriteString(redacted)
		} else {
			b.WriteString(s[eq+1 : end])
		}
		i = end
	}
	b.WriteString(s[i:])
	out := b.String()
	const bearer = "bearer.phx."
	for {
		j := strings.Index(out, bearer)
		if j < 0 {
			break
		}
		k := j + len(bearer)
		e := k
		for e < len(out) && !isSep(out[e]) && out[e] != ',' {
			e++
		}
		if out[k:e] == redacted {
			break
		}
		out = out[:k] + redacted + out[e:]
	}
	return out
}

func isSep(c byte) bool {
	switch c {
	case ' ', '?', '&', ';', '"', '\'', ',', '\t', '\n', '(', ')', '[', ']', '{', '}', '<', '>':
		return true
	}
	return false
}

// redactPayload returns a JSON payload with the values of secret-named
// keys, at any depth, replaced; a payload without such a key, or that is
// not JSON, comes back as it is (its first bytes only are shown anyway).
func redactPayload(p []byte) []byte {
	if !mayHoldSecret(p) {
		return p
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return p
	}
	if !redactValue(v) {
		return p
	}
	out, err := json.Marshal(v)
	if err != nil {
		return p
	}
	return out
}

// mayHoldSecret is a quick test that lets most payloads skip the decode.
func mayHoldSecret(p []byte) bool {
	l := bytes.ToLower(p)
	for w := range secretWords {
		if bytes.Contains(l, []byte(w)) {
			return true
		}
	}
	return false
}

func redactValue(v any) bool {
	changed := false
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch x.(type) {
			case map[string]any, []any:
				changed = redactValue(x) || changed
			default:
				if isSecretName(k) && x != nil {
					v[k] = redacted
					changed = true
				}
			}
		}
	case []any:
		for _, x := range v {
			changed = redactValue(x) || changed
		}
	}
	return changed
}
