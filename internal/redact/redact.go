// Package redact removes secrets from URLs before modpipe prints them: the
// password of the userinfo and the values of query parameters that carry
// credentials (password, pass, secret, token, access_key...).
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces every secret.
const Mask = "xxxxx"

// secretParams are query parameter names (compared in lower case, with "-"
// read as "_") whose values are credentials.
var secretParams = []string{"password", "passwd", "pass", "pwd", "secret", "token", "access_key", "secret_key", "auth", "key", "credential", "sig", "signature", "apikey", "api_key"}

func isSecretParam(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "_")
	for _, s := range secretParams {
		if n == s || strings.HasSuffix(n, "_"+s) || strings.HasSuffix(n, s) && len(s) >= 5 {
			return true
		}
	}
	return false
}

// URL returns raw with its userinfo password and secret query values
// replaced by Mask. A string that does not parse as a URL is returned as
// "(unparsable URL)" when it might hold a secret, since there is then no
// telling which part is one.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.ContainsAny(raw, "@?") {
			return "(unparsable URL)"
		}
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	if frag := u.EscapedFragment(); strings.Contains(frag, "=") {
		if r := redactQuery(frag); r != frag {
			u.Fragment, u.RawFragment = r, r
		}
	}
	if u.Opaque != "" && strings.Contains(u.Opaque, "@") {
		// "redis:user:pw@host" parses as opaque: no telling what is secret.
		return u.Scheme + ":(redacted)"
	}
	if len(secretsOf(raw)) == 0 && !strings.Contains(u.RawQuery+u.Fragment, Mask) {
		return raw // nothing to hide: print it exactly as given
	}
	return u.String()
}

// redactQuery masks secret values, keeping the order and the other pairs
// exactly as written.
func redactQuery(q string) string {
	var b strings.Builder
	for _, part := range splitQuery(q) {
		p, sep := part, ""
		if n := len(p); n > 0 && (p[n-1] == '&' || p[n-1] == '?' || p[n-1] == '#') {
			p, sep = p[:n-1], p[n-1:]
		}
		name, _, hasValue := strings.Cut(p, "=")
		if dn, err := url.QueryUnescape(name); err == nil {
			name = dn
		}
		if hasValue && isSecretParam(name) {
			p = p[:strings.Index(p, "=")+1] + Mask
		} else if v, ok := nestedURL(p, false); ok {
			// A URL inside a parameter (an s3:// URL's endpoint=), maybe
			// percent-encoded, may carry a password of its own.
			if r := URL(v); r != v {
				p = p[:strings.Index(p, "=")+1] + r
			}
		}
		b.WriteString(p + sep)
	}
	return b.String()
}

// nestedURL returns the value of the query pair p ("name=value"),
// percent-decoded, when it may hold user information (an "@"; with
// scheme, when it must be a URL with "://").
func nestedURL(p string, scheme bool) (string, bool) {
	_, v, ok := strings.Cut(p, "=")
	if !ok {
		return "", false
	}
	if dv, err := url.QueryUnescape(v); err == nil {
		v = dv
	}
	return v, strings.Contains(v, "@") && (!scheme || strings.Contains(v, "://"))
}

// splitQuery splits q before each separator ("&", ";" or a stray "?"),
// keeping the separators, so that joining the parts gives q back.
func splitQuery(q string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '&' || q[i] == '?' || q[i] == '#' {
			parts = append(parts, q[start:i+1])
			start = i + 1
		}
	}
	return append(parts, q[start:])
}

// String returns s with every secret of urls masked wherever it appears,
// raw or in the escaped forms Go's url and net packages print, and with
// any other URL-looking word that carries a password redacted by URL. Use
// it on error texts that may quote a URL (URL parsers and dialers do).
func String(s string, urls ...string) string {
	for _, raw := range urls {
		if raw == "" {
			continue
		}
		s = strings.ReplaceAll(s, raw, URL(raw))
		for _, secret := range secretsOf(raw) {
			if len(secret) < 3 {
				continue // too short to mask without mangling the text
			}
			s = strings.ReplaceAll(s, secret, Mask)
			if e := url.QueryEscape(secret); e != secret {
				s = strings.ReplaceAll(s, e, Mask)
			}
			if e := url.PathEscape(secret); e != secret {
				s = strings.ReplaceAll(s, e, Mask)
			}
		}
	}
	// URLs the caller did not know about (say, quoted by a library).
	words := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '"' || r == '\'' || r == '\n' || r == '\t' })
	for _, w := range words {
		if strings.Contains(w, "://") && (strings.Contains(w, "@") || strings.Contains(w, "?")) {
			if r := URL(w); r != w {
				s = strings.ReplaceAll(s, w, r)
			}
		}
	}
	return s
}

// secretsOf returns the secrets raw holds, found even when raw does not
// parse: the userinfo password and the values of secret query parameters.
func secretsOf(raw string) []string {
	var out []string
	rest := raw
	if _, after, ok := strings.Cut(rest, "://"); ok {
		rest = after
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		userinfo := rest[:at]
		if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
			out = append(out, pw)
			if u, err := url.PathUnescape(pw); err == nil && u != pw {
				out = append(out, u)
			}
		}
	} else if at := strings.LastIndex(rest, "@"); at >= 0 {
		// No path separator before the @: the whole prefix is userinfo.
		if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
			out = append(out, pw)
		}
	}
	if _, q, ok := strings.Cut(raw, "?"); ok {
		for _, p := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == '?' || r == '#' }) {
			name, val, ok := strings.Cut(p, "=")
			if dn, err := url.QueryUnescape(name); err == nil {
				name = dn
			}
			if ok && val != "" && isSecretParam(name) {
				out = append(out, val)
				if u, err := url.QueryUnescape(val); err == nil && u != val {
					out = append(out, u)
				}
			} else if v, isURL := nestedURL(p, true); isURL {
				out = append(out, secretsOf(v)...) // a URL inside a parameter
			}
		}
	}
	return out
}
