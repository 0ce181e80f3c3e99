package logbuf

import (
	"log/slog"
	"strings"
	"testing"
)

func TestHandlerFormatsRecords(t *testing.T) {
	var b Buffer
	l := slog.New(NewHandler(&b, slog.LevelInfo)).With("mod", "build").WithGroup("req")
	l.Debug("hidden")
	l.Info("compiled packages", "count", 12, "path", "a b", slog.Group("g", "k", "v"))
	l.Warn("")
	got := string(b.Bytes())
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", got)
	}
	// "15:04:05.000 INFO  msg ..." — time stamp first, then the padded level.
	if lines[0][2] != ':' || lines[0][8] != '.' {
		t.Errorf("no time stamp: %q", lines[0])
	}
	if want := ` INFO  compiled packages mod=build req.count=12 req.path="a b" req.g.k=v`; !strings.HasSuffix(lines[0], want) {
		t.Errorf("line %q, want suffix %q", lines[0], want)
	}
	if !strings.HasSuffix(lines[1], " WARN   mod=build") {
		t.Errorf("line %q", lines[1])
	}
}

func TestLineWriterSplitsAndCaptures(t *testing.T) {
	var b Buffer
	w := NewLineWriter(&b, "│ ", false)
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\r\nthree"))
	w.Flush()
	if w.String() != "one\ntwo\r\nthree" {
		t.Errorf("captured %q", w.String())
	}
	var got []string
	for l := range strings.Lines(string(b.Bytes())) {
		_, text, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
		got = append(got, text)
	}
	if strings.Join(got, "|") != "│ one|│ two|│ three" {
		t.Errorf("lines %q", got)
	}
	q := NewLineWriter(&b, "", true)
	before := b.Len()
	_, _ = q.Write([]byte("quiet\n"))
	if b.Len() != before || q.String() != "quiet\n" {
		t.Error("quiet writer logged or lost output")
	}
}

func TestTailLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\nc", 1, "c"},
		{"", 3, ""},
		{"a", 0, ""},
	} {
		if got := TailLines([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("TailLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
