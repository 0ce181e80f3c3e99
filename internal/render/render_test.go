package render

import (
	"bytes"
	"strings"
	"testing"
	"time"
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

func TestMarkdownJobSummary(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	var b bytes.Buffer
	err := WriteMarkdown(&b, JobSummary{
		Title: "Run FAILED in 2s", Failed: true,
		Rows: []SummaryRow{
			{Name: "a|b", Status: "succeeded", Symbol: "✓", Details: "line1\nline2", Start: t0, End: t0.Add(time.Second), Lane: "instance 10"},
			{Name: "lint: go", Status: "failed", Symbol: "✗", Start: t0.Add(time.Second), End: t0.Add(time.Second), Lane: "instance 2", Bad: true},
			{Name: "skipped", Status: "skipped", Symbol: "○"},
		},
		Failure: &FailureDetail{Module: "lint", Where: " on instance 2", Error: "bad ``` fence", LogTail: "x\ny"},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## ❌ modpipe: Run FAILED in 2s",
		"| a\\|b | ✓ succeeded |",
		"| line1 line2 |",
		"### First failure: `lint` on instance 2",
		"bad ''' fence",
		"<details><summary>Last lines of its log</summary>",
		"```mermaid\ngantt\n    dateFormat x\n    axisFormat %M:%S.%L\n",
		"    section instance 2\n    lint  go :crit, 1700000001000, 1700000001001\n    section instance 10\n    a|b :done, 1700000000000, 1700000001000\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "skipped :") {
		t.Errorf("a module that did not run is on the timeline:\n%s", md)
	}
}

func TestAnnotationEscapes(t *testing.T) {
	got := Annotation("a,b:c.go", 12, "TestX/a,b (pkg)", "50% done\nnext")
	want := "::error file=a%2Cb%3Ac.go,line=12,title=TestX/a%2Cb (pkg)::50%25 done%0Anext\n"
	if got != want {
		t.Errorf("Annotation = %q, want %q", got, want)
	}
	if got := Annotation("", 0, "pkg", "m"); got != "::error title=pkg::m\n" {
		t.Errorf("Annotation without a file = %q", got)
	}
}
