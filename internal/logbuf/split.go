package logbuf

import "bytes"

// Splitter cuts a byte stream, written in pieces, into lines. It is not
// safe for concurrent use: its owner serialises the calls.
type Splitter struct {
	partial []byte // what follows the last newline so far
}

// Write appends p to the stream and calls emit with each line it
// completes, without its newline. emit must not keep the slice.
func (s *Splitter) Write(p []byte, emit func(line []byte)) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		emit(s.partial[:i])
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) == 0 {
		s.partial = nil
	}
}

// Flush calls emit with a final line that did not end with a newline, if
// there is one.
func (s *Splitter) Flush(emit func(line []byte)) {
	if len(s.partial) > 0 {
		emit(s.partial)
		s.partial = nil
	}
}
