package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/internal/s3test"
)

// TestArtifactStoreS3URLOutOfTheBox runs a program that does nothing for
// S3 with --artifact-store s3://bucket/prefix?endpoint=... against a real
// S3-compatible server: the artifact goes through the bucket (its blobs are
// there afterwards), credentials come from the AWS variables, and the
// secret key shows nowhere in the output.
func TestArtifactStoreS3URLOutOfTheBox(t *testing.T) {
	srv := s3test.Start(t)
	bin := build(t, "testdata/artifacts")
	cmd := exec.Command(bin, "--no-live", "--artifact-store", "s3://"+srv.Bucket+"/ci/run-1?endpoint="+srv.Endpoint+"&region=us-east-1")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanAWSEnv(), "ARTIFACT_SIZE=3000000", "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"artifact verified", "to S3 artifact store " + srv.Endpoint + "/" + srv.Bucket + "/ci/run-1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), srv.SecretKey) {
		t.Errorf("the output shows the secret key:\n%s", out)
	}
	blobs, err := os.ReadDir(filepath.Join(srv.Dir, srv.Bucket, "ci", "run-1", "blobs", "sha256"))
	if err != nil || len(blobs) < 3 { // two files and the manifest
		t.Errorf("the bucket holds %d blobs under ci/run-1 (%v), want 3", len(blobs), err)
	}
}

// TestArtifactStoreS3URLWrongCredentials: with a wrong secret key the
// run fails with an error that names the store, not with a hang.
func TestArtifactStoreS3URLWrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	bin := build(t, "testdata/artifacts")
	cmd := exec.Command(bin, "--no-live", "--artifact-store", "s3://"+srv.Bucket+"/p?endpoint="+srv.Endpoint+"&region=us-east-1")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanAWSEnv(), "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY=wrong-secret-key-123")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the run succeeded with a wrong secret key:\n%s", out)
	}
	if !strings.Contains(string(out), "S3 artifact store") || strings.Contains(string(out), "wrong-secret-key-123") {
		t.Errorf("the error does not name the store, or shows the secret:\n%s", out)
	}
}

// cleanAWSEnv is the environment without AWS settings (and without CI, so
// that no GitHub Actions output is written).
func cleanAWSEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "MODPIPE_") && !strings.HasPrefix(kv, "GITHUB_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
}

// TestArtifactStoreS3URLWithoutTheS3Client: a program built with
// -tags modpipe_nos3 has no S3 client and says so for s3:// URLs.
func TestArtifactStoreS3URLWithoutTheS3Client(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "artifacts-nos3")
	if out, err := exec.Command("go", "build", "-tags", "modpipe_nos3", "-o", bin, "./testdata/artifacts").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command("go", "list", "-tags", "modpipe_nos3", "-deps", "./testdata/artifacts").Output(); err != nil || strings.Contains(string(out), "minio") {
		t.Errorf("with modpipe_nos3 the program still links minio-go (%v)", err)
	}
	cmd := exec.Command(bin, "--no-live", "--artifact-store", "s3://bucket/p")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanAWSEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "built with the tag modpipe_nos3") {
		t.Errorf("exit %v; want the modpipe_nos3 error:\n%s", err, out)
	}
}
