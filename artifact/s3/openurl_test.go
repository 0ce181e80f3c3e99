package s3_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/s3"
	"github.com/modpipe/modpipe/internal/s3test"
)

// TestOpenURLAgainstARealServer: endpoint and region from the URL,
// credentials from the AWS variables; a blob put through the store is read
// back.
func TestOpenURLAgainstARealServer(t *testing.T) {
	srv := s3test.Start(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // the URL's endpoint wins
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	st, err := s3.OpenURL("s3://" + srv.Bucket + "/a/b?endpoint=" + srv.Endpoint + "&region=us-east-1&path-style=true")
	if err != nil {
		t.Fatal(err)
	}
	defer st.(io.Closer).Close()
	ctx := context.Background()
	if err := st.Put(ctx, "k1", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	r, err := st.Get(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	if _, err := io.Copy(&got, r); err != nil || got.String() != "hello" {
		t.Errorf("read back %q, %v", got.String(), err)
	}
	if s := st.(interface{ String() string }).String(); s != "S3 artifact store "+srv.Endpoint+"/"+srv.Bucket+"/a/b" {
		t.Errorf("described as %q", s)
	}
}

func TestOpenURLRefusesCredentialsAndUnknownParameters(t *testing.T) {
	for raw, want := range map[string]string{
		"s3://AKIA:hunter2@bucket/p":                        "holds credentials",
		"s3://bucket/p?endpoint=http://k:hunter2@host:9000": "endpoint holds credentials",
		"s3://bucket/p?colour=red":                          `unknown URL parameter "colour"`,
		"s3://bucket/p?region=a&region=b":                   "given 2 times",
		"s3://bucket/p?path-style=maybe":                    "use true or false",
		"s3:///p":                                           "no valid bucket",
		"http://bucket/p":                                   "not an s3:// URL",
		"s3://bucket/bad%20prefix":                          "prefix",
		"s3://bucket/p?endpoint=ftp://host":                 "not valid",
	} {
		_, err := s3.OpenURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenURL(%s) = %v, want an error with %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("OpenURL(%s): the error shows the password: %v", raw, err)
		}
	}
	var _ func(string) (artifact.Store, error) = s3.OpenURL
}
