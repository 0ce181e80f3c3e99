package modpipe

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
)

// storerCoordinator is a coordinator whose backend keeps artifacts: it
// records the URL it is asked for and answers with err.
type storerCoordinator struct {
	distributed.Coordinator
	asked []string
	err   error
}

func (s *storerCoordinator) ArtifactStore(url string) (artifact.Store, error) {
	s.asked = append(s.asked, url)
	if s.err != nil {
		return nil, s.err
	}
	return artifact.NewDirStore("unused"), nil
}

// TestArtifactStoreURLRedisCluster: --artifact-store takes the Redis
// Cluster URLs the Redis coordinator and store take, and hands them to the
// coordinator as it does redis:// and rediss://.
func TestArtifactStoreURLRedisCluster(t *testing.T) {
	for _, u := range []string{"redis://h:1", "rediss://h:1", "redis+cluster://h1:1,h2:2", "rediss+cluster://h1:1,h2:2"} {
		c := &storerCoordinator{}
		if _, err := openStoreURL(u, c); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if len(c.asked) != 1 || c.asked[0] != u {
			t.Errorf("%s: the coordinator was asked for %q", u, c.asked)
		}
	}
}

// TestArtifactStoreURLRedisWithoutARun: a redis:// store on a run that has
// no Redis coordinator behind it (one instance, no --redis-url) is an
// error that says what to do, and keeps the password out.
func TestArtifactStoreURLRedisWithoutARun(t *testing.T) {
	c := &storerCoordinator{err: fmt.Errorf("redis coordinator: %w: no artifact store before the coordinator is bound to a run", distributed.ErrNotConfigured)}
	_, err := openStoreURL("redis://:hunter2@localhost:6379", c)
	if err == nil {
		t.Fatal("accepted")
	}
	if !errors.Is(err, distributed.ErrNotConfigured) {
		t.Errorf("the cause is lost: %v", err)
	}
	for _, want := range []string{"--artifact-store redis://:xxxxx@localhost:6379", "--redis-url", "file:///", "s3://"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestFileStoreDir: a file:// URL names a directory on every OS: on
// Windows, file:///C:/dir is C:\dir, not \C:\dir.
func TestFileStoreDir(t *testing.T) {
	for _, c := range []struct{ rest, goos, want string }{
		{"/var/cache/a", "linux", "/var/cache/a"},
		{"rel/dir", "linux", "rel/dir"},
		{"/C:/ci/art", "windows", "C:/ci/art"},
		{"C:/ci/art", "windows", "C:/ci/art"},
		{"/c:/x", "windows", "c:/x"},
		{"/ci/art", "windows", "/ci/art"},
		{"/C:/x", "linux", "/C:/x"},
	} {
		if got := fileStoreDir(c.rest, c.goos); got != c.want {
			t.Errorf("%s on %s: %q, want %q", c.rest, c.goos, got, c.want)
		}
	}
}

// TestArtifactStoreURLEncodedEndpointPassword: an s3:// URL whose endpoint
// parameter is percent-encoded and holds a password is refused without
// printing the password.
func TestArtifactStoreURLEncodedEndpointPassword(t *testing.T) {
	_, err := openStoreURL("s3://bucket/p?endpoint=http%3A%2F%2Fkey%3Ahunter2%40127.0.0.1%3A9000", nil)
	if err == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
}
