package render

import (
	"bytes"
	"strings"
	"testing"
)

func TestTableAlignsColumns(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, []string{"A", "LONG HEADER", "LAST"}, [][]string{{"xyz", "✓ ok", ""}, {"q", "r", "tail text"}}); err != nil {
		t.Fatal(err)
	}
	want := "A    LONG HEADER  LAST\n" +
		strings.Repeat("─", len("A    LONG HEADER  LAST")) + "\n" +
		"xyz  ✓ ok\n" +
		"q    r            tail text\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestPrinterGroups(t *testing.T) {
	var b bytes.Buffer
	p := &Printer{W: &b, Mask: func(s string) string { return strings.ReplaceAll(s, "pw", "***") }}
	p.Group(Group{Name: "m", Status: "failed", Symbol: "✗", Detail: "1s", Log: []byte("line pw\n"), Err: "bad pw"})
	want := "✗ m · failed · 1s\n    line ***\n    error: bad ***\n"
	if b.String() != want {
		t.Errorf("got %q want %q", b.String(), want)
	}
	b.Reset()
	p.GitHub = true
	p.Group(Group{Name: "m,1", Status: "ignored-failure", Symbol: "!", Log: []byte("x\n"), Err: "a\nb", Warn: true})
	want = "::group::! m,1 · ignored-failure\nx\nerror: a\nb\n::endgroup::\n::warning title=m%2C1 ignored-failure::a%0Ab\n"
	if b.String() != want {
		t.Errorf("got %q want %q", b.String(), want)
	}
}
