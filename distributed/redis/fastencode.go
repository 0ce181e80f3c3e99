package redis

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// The encoding side of fastwire.go: every module costs the master an
// assignment to encode and a worker a result, and json.Marshal spends
// most of that time on reflection. These encoders write exactly what
// json.Marshal writes for the common forms (strings of printable ASCII
// that need no escape, integers, a compact JSON value, no error) and hand
// anything else to json.Marshal, so the bytes stored in Redis do not
// depend on which path made them (FuzzFastEncodeMatchesJSON checks it).

// plainString reports whether json.Marshal writes s as '"' + s + '"':
// printable ASCII without the characters it escapes (quote, backslash,
// and <, >, & which it escapes for HTML).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// plainValue reports whether json.Marshal writes raw JSON v as it is:
// valid, and already compact with nothing to escape (json.Marshal
// compacts a json.RawMessage and escapes <, > and & in it). Values with
// any white space or non-ASCII byte, even inside a string, are left to
// json.Marshal.
func plainValue(v []byte) bool {
	for _, c := range v {
		if c <= 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return json.Valid(v)
}

// resultSize is about the size of w's JSON, to size a buffer.
func resultSize(w *wireResult) int {
	return 256 + 2*len(w.Module) + len(w.Lease.Session) + len(w.Lease.Token) + len(w.Value) + len(w.Reason) + len(w.Nonce) +
		base64.StdEncoding.EncodedLen(len(w.Log)) + base64.StdEncoding.EncodedLen(len(w.MAC))
}

// assignmentSize is about the size of a's JSON, to size a buffer.
func assignmentSize(a *wireAssignment) int {
	return 128 + 2*len(a.Module) + 16*len(a.Requires) + base64.StdEncoding.EncodedLen(len(a.MAC))
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendBytes(b []byte, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// appendAssignment appends json.Marshal(a) to b; the fast path allocates
// only when b is too small.
func appendAssignment(b []byte, a *wireAssignment) []byte {
	ok := plainString(a.Module)
	for _, r := range a.Requires {
		ok = ok && plainString(r)
	}
	if !ok {
		// A copy, so that a does not escape (and cost its callers an
		// allocation) on the fast path.
		v := *a
		j, _ := json.Marshal(v) // cannot fail: strings, integers and bytes
		return append(b, j...)
	}
	b = appendString(append(b, `{"module":`...), a.Module)
	b = strconv.AppendInt(append(b, `,"attempt":`...), int64(a.Attempt), 10)
	b = append(b, `,"requires":`...)
	if a.Requires == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range a.Requires {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	b = strconv.AppendInt(append(b, `,"priority":`...), a.Priority, 10)
	if len(a.MAC) > 0 {
		b = appendBytes(append(b, `,"mac":`...), a.MAC)
	}
	b = strconv.AppendInt(append(b, `,"enq_ms":`...), a.EnqMS, 10)
	return append(b, '}')
}

// appendResult appends json.Marshal(w) to b, or returns b and
// json.Marshal's error; the fast path allocates only when b is too small.
func appendResult(b []byte, w *wireResult) ([]byte, error) {
	l := &w.Lease
	if w.Error != nil || !plainString(w.Module) || !plainString(string(w.Status)) || !plainString(w.Reason) ||
		!plainString(w.Nonce) || !plainString(l.Module) || !plainString(l.Session) || !plainString(l.Token) ||
		(len(w.Value) > 0 && !plainValue(w.Value)) {
		v := *w // see appendAssignment
		j, err := json.Marshal(v)
		return append(b, j...), err
	}
	b = appendString(append(b, `{"module":`...), w.Module)
	b = appendString(append(b, `,"lease":{"module":`...), l.Module)
	b = strconv.AppendInt(append(b, `,"attempt":`...), int64(l.Attempt), 10)
	b = strconv.AppendInt(append(b, `,"holder":`...), int64(l.Holder), 10)
	b = appendString(append(b, `,"session":`...), l.Session)
	b = appendString(append(b, `,"token":`...), l.Token)
	b = strconv.AppendInt(append(b, `,"claimed_ms":`...), l.ClaimedMS, 10)
	b = appendString(append(b, `},"status":`...), string(w.Status))
	if len(w.Value) > 0 {
		b = append(append(b, `,"value":`...), w.Value...)
	}
	if w.Reason != "" {
		b = appendString(append(b, `,"reason":`...), w.Reason)
	}
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(w.Attempts), 10)
	b = strconv.AppendInt(append(b, `,"duration_ns":`...), w.DurationNS, 10)
	b = strconv.AppendInt(append(b, `,"wait_ns":`...), w.WaitNS, 10)
	if len(w.Log) > 0 {
		b = appendBytes(append(b, `,"log":`...), w.Log)
	}
	b = appendString(append(b, `,"nonce":`...), w.Nonce)
	if len(w.MAC) > 0 {
		b = appendBytes(append(b, `,"mac":`...), w.MAC)
	}
	return append(b, '}'), nil
}
