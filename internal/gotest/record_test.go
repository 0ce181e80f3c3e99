package gotest

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "record testdata/streams/*.jsonl anew by running go test -json on testdata/sample")

// recordings are the streams the parser tests read: `go test -json` run on
// packages of the testdata/sample module.
var recordings = map[string][]string{
	"pass":     {"./pass", "./skip"},
	"fail":     {"./fail"},
	"panic":    {"./panics"},
	"subtests": {"./subtests"},
	"build":    {"-p=1", "./buildfail", "./setupfail", "./pass"},
	"timeout":  {"-p=1", "-timeout=1s", "./timeout", "./testmain"},
}

// TestRecordStreams records the streams when run with -update; without it,
// it checks that every recording exists.
func TestRecordStreams(t *testing.T) {
	for name, args := range recordings {
		file := filepath.Join("testdata", "streams", name+".jsonl")
		if !*update {
			if _, err := os.Stat(file); err != nil {
				t.Errorf("recording %s is missing (run go test ./internal/gotest -run TestRecordStreams -update): %v", file, err)
			}
			continue
		}
		cmd := exec.Command("go", append([]string{"test", "-json", "-count=1"}, args...)...)
		cmd.Dir = filepath.Join("testdata", "sample")
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=")
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		_ = cmd.Run() // most recordings are of failing runs
		if stdout.Len() == 0 {
			t.Fatalf("%s: go test printed nothing", name)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
