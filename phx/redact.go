package phx

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// redacted replaces a secret wherever the library shows one.
const redacted = "REDACTED"

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

// redactURL returns u with the values of secret-named query parameters
// and any user password replaced. A string that does not parse is
// redacted as text.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return redactText(u)
	}
	changed := false
	if p.User != nil {
		if _, ok := p.User.Password(); ok {
			p.User = url.UserPassword(p.User.Username(), redacted)
			changed = true
		}
	}
	if p.RawQuery != "" {
		q, err := url.ParseQuery(p.RawQuery)
		if err != nil {
			return redactText(u)
		}
		for k, vs := range q {
			if isSecretName(k) {
				for i := range vs {
					vs[i] = redacted
				}
				changed = true
			}
		}
		if changed {
			p.RawQuery = q.Encode()
		}
	}
	if !changed {
		return u
	}
	return p.String()
}

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
