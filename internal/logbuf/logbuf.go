// Package logbuf holds the buffered log of one module: a byte buffer that is
// safe for concurrent writers, a slog.Handler that formats records for people,
// and a line writer for command output.
package logbuf

import (
	"bytes"
	"sync"
	"time"
)

// Buffer collects the log of one module until it is printed as a group.
// The zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf []byte
}

// Write appends p. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	return len(p), nil
}

// Bytes returns a copy of everything written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf)
}

// Len reports how many bytes were written.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

// Tail returns at most the last n lines written.
func (b *Buffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return TailLines(b.buf, n)
}

// TailLines returns at most the last n lines of p, without a trailing newline.
func TailLines(p []byte, n int) string {
	if n <= 0 {
		return ""
	}
	p = bytes.TrimRight(p, "\n")
	i := len(p)
	for range n {
		j := bytes.LastIndexByte(p[:i], '\n')
		if j < 0 {
			return string(p)
		}
		i = j
	}
	return string(p[i+1:])
}

// appendTime writes the wall-clock time as HH:MM:SS.mmm, the prefix of every line.
func appendTime(dst []byte, t time.Time) []byte {
	return t.AppendFormat(dst, "15:04:05.000")
}
