package modpipe

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestArtifactsOutReportAndCleanup(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the run's directory store goes here, and must go away
	t.Setenv("TMP", tmp)
	work := t.TempDir()
	t.Chdir(work)
	if err := os.MkdirAll(filepath.Join("dist", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("dist", "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	type result struct{ Out []Artifact }
	build := New("build", func(c *Context) (result, error) {
		a, err := c.Upload("app", "dist")
		return result{Out: []Artifact{a}}, err
	})
	use := Task("use", func(c *Context) error {
		r, err := Result(c, build)
		if err != nil {
			return err
		}
		return c.Download(r.Out[0], "got")
	}, DependsOn(build))
	out := filepath.Join(t.TempDir(), "published")
	report := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := runMain(t, NewPipeline().Add(build, use), nil, "--artifacts-out", out, "--report", report)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	for _, dir := range []string{"got", filepath.Join(out, "app")} {
		fi, err := os.Stat(filepath.Join(dir, "app")) // the common root, dist, is left out
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", dir, fi.Mode().Perm())
		}
		if fi, err := os.Stat(filepath.Join(dir, "empty")); err != nil || !fi.IsDir() {
			t.Errorf("%s: empty directory missing: %v", dir, err)
		}
	}
	if !strings.Contains(stdout, "Artifacts:") || !strings.Contains(stdout, "uploaded artifact app: 1 files, 10 B") {
		t.Errorf("summary or log lacks the artifact:\n%s", stdout)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Modules []struct {
			Name      string
			Artifacts []struct {
				Name  string
				Files int
				Bytes int64
			}
		}
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if a := rep.Modules[0].Artifacts; len(a) != 1 || a[0].Name != "app" || a[0].Files != 1 || a[0].Bytes != 10 {
		t.Errorf("report lists %+v for %s, want app: 1 file, 10 bytes", a, rep.Modules[0].Name)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "modpipe-artifacts-*"))
	if len(left) != 0 {
		t.Errorf("the run's artifact directory was not removed: %v", left)
	}
}

func TestArtifactStoreURL(t *testing.T) {
	for _, bad := range []string{"nonsense", "ftp://x", "s3://", "redis://:hunter2@localhost:6379", "s3://key:hunter2@bucket/p", "s3://bucket/p?endpoint=http://key:hunter2@127.0.0.1:9000"} {
		_, err := openStoreURL(bad, nil)
		if err == nil {
			t.Errorf("%s accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	dir := t.TempDir()
	s, err := openStoreURL("file://"+filepath.ToSlash(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if describeStore(s) != "directory store "+dir {
		t.Errorf("file:// opened %s", describeStore(s))
	}
}

func TestWorkflowArtifactsOutFlag(t *testing.T) {
	code, out, errOut := runMain(t, mainPipeline(), nil, "workflow", "github", "--artifacts-out", "dist")
	if code != 0 || !strings.Contains(out, "--artifacts-out dist") || !strings.Contains(out, "name: modpipe-artifacts") {
		t.Errorf("exit %d: %s\n%s", code, errOut, out)
	}
	if code, _, _ := runMain(t, mainPipeline(), nil, "workflow", "gitlab", "--artifacts-out", "../up"); code != 2 {
		t.Errorf("--artifacts-out ../up: exit %d, want 2", code)
	}
}

// TestS3StoreURLOutOfTheBox: --artifact-store s3://... needs no line in
// the program; endpoint and region come from the URL or the AWS
// variables.
func TestS3StoreURLOutOfTheBox(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	s, err := openStoreURL("s3://bucket/some/prefix", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeStore(s), "S3 artifact store http://127.0.0.1:1/bucket/some/prefix"; got != want {
		t.Errorf("opened %q, want %q", got, want)
	}
	s, err = openStoreURL("s3://bucket/p?endpoint=http://127.0.0.1:2&region=eu-west-1&path-style=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeStore(s), "S3 artifact store http://127.0.0.1:2/bucket/p"; got != want {
		t.Errorf("opened %q, want %q", got, want)
	}
	if _, err := openStoreURL("s3://bucket/p?color=red", nil); err == nil || !strings.Contains(err.Error(), `unknown URL parameter "color"`) {
		t.Errorf("an unknown parameter: %v", err)
	}
}
