package phx

import (
	"errors"
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
