package logbuf

import (
	"slices"
	"testing"
)

func TestSplitterCutsLinesAcrossWrites(t *testing.T) {
	var s Splitter
	var got []string
	emit := func(l []byte) { got = append(got, string(l)) }
	for _, piece := range []string{"a", "b\nc", "\n\n", "d\ne", ""} {
		s.Write([]byte(piece), emit)
	}
	if want := []string{"ab", "c", "", "d"}; !slices.Equal(got, want) {
		t.Fatalf("lines before Flush = %q, want %q", got, want)
	}
	s.Flush(emit)
	s.Flush(emit) // nothing left: no second "e"
	if want := []string{"ab", "c", "", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("lines after Flush = %q, want %q", got, want)
	}
}
