package redis

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/modpipe/modpipe/distributed"
)

// A fast path for the two records every module costs a decode of: the
// assignment a worker claims and the result the master receives.
// encoding/json spends 10-20 µs on each (reflection, and scanning every
// byte twice), which was the largest single cost of a no-op module in the
// master and the workers. These functions read exactly the form this
// package writes (json.Marshal of wireAssignment and wireResult: known
// keys, strings without escapes, integers, a result without an error) and
// give up (ok false) on anything else, which then goes through decodeJSON,
// the strict decoder. So they never accept what decodeJSON refuses, and
// decode what they accept exactly as it does (FuzzFastWireMatchesJSON
// checks both).

// wireScanner reads a JSON text from the start; any surprise sets bad.
type wireScanner struct {
	s   string
	i   int
	bad bool
}

func (p *wireScanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space (0 at the end).
func (p *wireScanner) peek() byte {
	p.ws()
	if p.i >= len(p.s) {
		return 0
	}
	return p.s[p.i]
}

// byte consumes c (after white space).
func (p *wireScanner) byte(c byte) {
	if p.peek() != c {
		p.bad = true
		return
	}
	p.i++
}

// str reads a string without escapes or control characters, in valid
// UTF-8 (encoding/json would replace invalid bytes).
func (p *wireScanner) str() string {
	if p.peek() != '"' {
		p.bad = true
		return ""
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.s); j++ {
		c := p.s[j]
		switch {
		case c == '"':
			p.i = j + 1
			s := p.s[start:j]
			if !ascii && !utf8.ValidString(s) {
				p.bad = true
			}
			return s
		case c == '\\' || c < 0x20:
			p.bad = true
			return ""
		case c >= 0x80:
			ascii = false
		}
	}
	p.bad = true
	return ""
}

// int reads an integer (no fraction or exponent) that fits in bits.
func (p *wireScanner) int(bits int) int64 {
	p.ws()
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	digits := j
	for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	if j == digits || (p.s[digits] == '0' && j > digits+1) {
		p.bad = true // no digits, or a leading zero
		return 0
	}
	if j < len(p.s) && (p.s[j] == '.' || p.s[j] == 'e' || p.s[j] == 'E') {
		p.bad = true
		return 0
	}
	n, err := strconv.ParseInt(p.s[p.i:j], 10, bits)
	if err != nil {
		p.bad = true
		return 0
	}
	p.i = j
	return n
}

func (p *wireScanner) goInt() int { return int(p.int(strconv.IntSize)) }

// bytes reads a base64 string as encoding/json does for a []byte.
func (p *wireScanner) bytes() []byte {
	s := p.str()
	if p.bad {
		return nil
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, []byte(s))
	if err != nil {
		p.bad = true
		return nil
	}
	return b[:n]
}

// strings reads an array of strings (not null).
func (p *wireScanner) strings() []string {
	p.byte('[')
	out := []string{}
	if p.peek() == ']' {
		p.i++
		return out
	}
	for !p.bad {
		out = append(out, p.str())
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return out
		default:
			p.bad = true
		}
	}
	return nil
}

// skipStr moves past a string, escapes included (raw checks the value
// with json.Valid).
func (p *wireScanner) skipStr() {
	for j := p.i + 1; j < len(p.s); j++ {
		switch p.s[j] {
		case '\\':
			j++
		case '"':
			p.i = j + 1
			return
		}
	}
	p.bad = true
}

// raw reads any JSON value and returns its text, checked by json.Valid.
func (p *wireScanner) raw() json.RawMessage {
	p.ws()
	start, depth := p.i, 0
	for p.i < len(p.s) && !p.bad {
		switch c := p.s[p.i]; c {
		case '"':
			p.skipStr()
			if depth == 0 {
				return p.checked(start)
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of the enclosing object
				return p.checked(start)
			}
			depth--
			if depth == 0 {
				p.i++
				return p.checked(start)
			}
		case ',', ':':
			if depth == 0 {
				return p.checked(start)
			}
		}
		p.i++
	}
	if depth == 0 && !p.bad {
		return p.checked(start)
	}
	p.bad = true
	return nil
}

func (p *wireScanner) checked(start int) json.RawMessage {
	end := p.i
	for end > start && (p.s[end-1] == ' ' || p.s[end-1] == '\t' || p.s[end-1] == '\n' || p.s[end-1] == '\r') {
		end--
	}
	if p.bad || end == start || !json.Valid([]byte(p.s[start:end])) {
		p.bad = true
		return nil
	}
	return json.RawMessage(p.s[start:end])
}

// object calls field for every key of an object, refusing a key seen
// twice (encoding/json would merge them) and keys field does not know
// (field returns false).
func (p *wireScanner) object(field func(key string) bool) {
	p.byte('{')
	if p.peek() == '}' {
		p.i++
		return
	}
	var seen [16]string
	n := 0
	for !p.bad {
		k := p.str()
		p.byte(':')
		if p.bad || n == len(seen) || slices.Contains(seen[:n], k) || !field(k) {
			p.bad = true
			return
		}
		seen[n] = k
		n++
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return
		default:
			p.bad = true
		}
	}
}

// end reports whether the text was read to its end without surprise.
func (p *wireScanner) end() bool {
	p.ws()
	return !p.bad && p.i == len(p.s)
}

// fastAssignment decodes a wireAssignment; ok false: use decodeJSON.
func fastAssignment(raw string) (a wireAssignment, ok bool) {
	p := &wireScanner{s: raw}
	p.object(func(k string) bool {
		switch k {
		case "module":
			a.Module = p.str()
		case "attempt":
			a.Attempt = p.goInt()
		case "requires":
			a.Requires = p.strings()
		case "priority":
			a.Priority = p.int(64)
		case "enq_ms":
			a.EnqMS = p.int(64)
		case "mac":
			a.MAC = p.bytes()
		default:
			return false
		}
		return true
	})
	return a, p.end()
}

// fastResult decodes a wireResult without an error; ok false: use
// decodeJSON.
func fastResult(raw string) (w wireResult, ok bool) {
	p := &wireScanner{s: raw}
	p.object(func(k string) bool {
		switch k {
		case "module":
			w.Module = p.str()
		case "lease":
			p.lease(&w.Lease)
		case "status":
			w.Status = distributed.Status(p.str())
		case "value":
			if p.peek() == 'n' {
				return false // null: leave it to encoding/json
			}
			w.Value = p.raw()
		case "reason":
			w.Reason = p.str()
		case "attempts":
			w.Attempts = p.goInt()
		case "duration_ns":
			w.DurationNS = p.int(64)
		case "wait_ns":
			w.WaitNS = p.int(64)
		case "log":
			w.Log = p.bytes()
		case "nonce":
			w.Nonce = p.str()
		case "mac":
			w.MAC = p.bytes()
		default: // "error" included: failures are rare
			return false
		}
		return true
	})
	return w, p.end()
}

func (p *wireScanner) lease(l *wireLease) {
	p.object(func(k string) bool {
		switch k {
		case "module":
			l.Module = p.str()
		case "attempt":
			l.Attempt = p.goInt()
		case "holder":
			l.Holder = p.goInt()
		case "session":
			l.Session = p.str()
		case "token":
			l.Token = p.str()
		case "claimed_ms":
			l.ClaimedMS = p.int(64)
		default:
			return false
		}
		return true
	})
}
