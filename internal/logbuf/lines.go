package logbuf

import (
	"bytes"
	"sync"
	"time"
)

// LineWriter splits a byte stream (a command's output) into lines and writes
// each one into a Buffer with a time stamp and a prefix. It also keeps the
// whole stream, for the caller to return as captured output.
type LineWriter struct {
	buf    *Buffer
	prefix string
	quiet  bool
	mu     sync.Mutex
	lines  Splitter
	all    bytes.Buffer
}

// NewLineWriter returns a writer that logs into buf. With quiet set the lines
// are only captured, not logged.
func NewLineWriter(buf *Buffer, prefix string, quiet bool) *LineWriter {
	return &LineWriter{buf: buf, prefix: prefix, quiet: quiet}
}

// Write implements io.Writer.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	if w.quiet {
		return len(p), nil
	}
	w.lines.Write(p, w.emit)
	return len(p), nil
}

// Flush writes a final line that did not end with a newline.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines.Flush(w.emit)
}

// String returns everything written.
func (w *LineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

func (w *LineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	out := make([]byte, 0, len(line)+len(w.prefix)+16)
	out = appendTime(out, time.Now())
	out = append(out, ' ')
	out = append(out, w.prefix...)
	out = append(out, line...)
	out = append(out, '\n')
	_, _ = w.buf.Write(out)
}
