// Package s3 is an artifact.Store on S3-compatible object storage: AWS S3,
// MinIO, Cloudflare R2, Google Cloud Storage (XML interoperability API),
// versitygw and the like.
//
//	store, err := s3.NewStore(s3.Options{Bucket: "ci-artifacts", Prefix: "modpipe"})
//
// Credentials come from Options or, when not given there, from the
// standard AWS environment variables (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and then the shared
// credentials file (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE,
// AWS_PROFILE). The region comes from AWS_REGION or AWS_DEFAULT_REGION and
// the endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL when not set.
//
// # Client
//
// The store uses minio-go v7 rather than aws-sdk-go-v2: it is one module
// with a handful of dependencies (aws-sdk-go-v2 needs a dozen modules for
// S3 with its configuration and credential chain), it streams a PutObject
// of any size from a plain io.Reader (one part buffer at a time, multipart
// above PartSize, the upload aborted on error), and it is written and
// tested against every S3-compatible server, including path-style
// endpoints and GCS interoperability, where aws-sdk-go-v2 needs
// per-service workarounds (GCS, for one, refuses its default checksums).
//
// # Atomicity
//
// S3 makes an object visible only when its PutObject or
// CompleteMultipartUpload succeeds, and replaces an object atomically, so a
// failed or interrupted Put leaves nothing visible. An upload interrupted
// by a killed process can leave invisible multipart parts behind: give the
// bucket a lifecycle rule that aborts incomplete multipart uploads after a
// day (AWS and MinIO support AbortIncompleteMultipartUpload).
package s3

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/internal/redact"
)

// Options configure a Store. Only Bucket is required.
type Options struct {
	// Endpoint is the service's URL, such as https://s3.amazonaws.com
	// (the default), http://127.0.0.1:9000 for a local MinIO,
	// https://<account>.r2.cloudflarestorage.com or
	// https://storage.googleapis.com. A bare host:port means https. Empty:
	// AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS S3.
	Endpoint string
	// Bucket holds the artifacts; it must exist.
	Bucket string
	// Prefix starts every object name ("<prefix>/<key>"); it follows the
	// rules of artifact.ValidKey. Empty: keys are object names.
	Prefix string
	// Region of the bucket. Empty: AWS_REGION, then AWS_DEFAULT_REGION,
	// then what the service reports.
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are the credentials.
	// Empty: the AWS environment variables and shared credentials file.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// MinIO, versitygw and most self-hosted servers need. Default: chosen
	// from the endpoint (virtual-host style for AWS and GCS).
	PathStyle bool
	// PartSize is the size of one multipart part and of the one buffer an
	// upload holds (default 16 MiB, minimum 5 MiB). Blobs up to PartSize go
	// up in one PutObject.
	PartSize uint64
	// Transport replaces the HTTP transport (for proxies or custom TLS).
	Transport http.RoundTripper
}

// Store is an artifact.Store in an S3 bucket. Create it with NewStore; it
// is safe for concurrent use.
type Store struct {
	client    *minio.Client
	transport http.RoundTripper
	bucket    string
	prefix    string
	partSize  uint64
	where     string   // endpoint and bucket, for messages (no credentials)
	secrets   []string // scrubbed from every error text
}

var _ artifact.Store = (*Store)(nil)

const defaultPartSize = 16 << 20

// NewStore returns a store for the bucket in o. It contacts nothing; the
// first operation reports unreachable endpoints, missing buckets and
// refused credentials.
func NewStore(o Options) (*Store, error) {
	if o.Bucket == "" {
		return nil, errors.New("s3 artifact store: no bucket; set s3.Options.Bucket (or the bucket of s3://bucket/prefix)")
	}
	if err := s3utils.CheckValidBucketName(o.Bucket); err != nil {
		return nil, fmt.Errorf("s3 artifact store: bucket %q: %v", o.Bucket, err)
	}
	if o.Prefix = strings.Trim(o.Prefix, "/"); o.Prefix != "" {
		if err := artifact.ValidKey(o.Prefix); err != nil {
			return nil, fmt.Errorf("s3 artifact store: prefix: %w", err)
		}
	}
	raw := cmp.Or(o.Endpoint, os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"), "https://s3.amazonaws.com")
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("s3 artifact store: endpoint %s is not valid; use https://host[:port] or http://host:port", redact.URL(raw))
	}
	var secrets []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		secrets = append(secrets, pw)
	}
	shown := u.Scheme + "://" + u.Host
	var creds *credentials.Credentials
	if o.AccessKeyID != "" || o.SecretAccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)
		secrets = append(secrets, o.SecretAccessKey, o.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
		})
		secrets = append(secrets, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SECRET_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	}
	transport := o.Transport
	if transport == nil {
		tr, err := minio.DefaultTransport(u.Scheme == "https")
		if err != nil {
			return nil, fmt.Errorf("s3 artifact store: %w", err)
		}
		transport = tr
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       cmp.Or(o.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION")),
		BucketLookup: lookup,
		Transport:    transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 artifact store: endpoint %s: %v", shown, scrubText(err.Error(), secrets))
	}
	if o.PartSize == 0 {
		o.PartSize = defaultPartSize
	}
	if o.PartSize < 5<<20 {
		return nil, fmt.Errorf("s3 artifact store: PartSize %d is below S3's minimum part size of 5 MiB", o.PartSize)
	}
	var kept []string
	for _, s := range secrets {
		if len(s) >= 4 {
			kept = append(kept, s)
		}
	}
	return &Store{client: client, transport: transport, bucket: o.Bucket, prefix: o.Prefix, partSize: o.PartSize, where: shown + "/" + o.Bucket, secrets: kept}, nil
}

// Close releases the store's idle connections. The store stays usable
// (a later call connects again).
func (s *Store) Close() error {
	if c, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

func (s *Store) object(key string) (string, error) {
	if err := artifact.ValidKey(key); err != nil {
		return "", fmt.Errorf("s3 artifact store %s: %w", s.where, err)
	}
	if s.prefix == "" {
		return key, nil
	}
	return s.prefix + "/" + key, nil
}

// Put implements artifact.Store: one PutObject (multipart above PartSize),
// which S3 makes visible only once complete. Other readers are streamed
// through one part buffer; a seekable io.ReaderAt (an *os.File) larger
// than PartSize is uploaded in parallel parts read straight from it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("s3 artifact store %s: put %s: %w: negative size %d", s.where, key, artifact.ErrSizeMismatch, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 artifact store %s: put %s: %w", s.where, key, err)
	}
	sr := artifact.SizedReader(ctx, r, size)
	if size == 0 {
		// The client reads nothing for an empty object; check r is empty.
		if _, err := sr.Read(nil); err != io.EOF {
			return fmt.Errorf("s3 artifact store %s: put %s: %w", s.where, key, err)
		}
	}
	var body io.Reader = sr
	if size > int64(s.partSize) {
		if sec, err := sectionOf(ctx, r, size); err != nil {
			return fmt.Errorf("s3 artifact store %s: put %s: %w", s.where, key, err)
		} else if sec != nil {
			body = sec
		}
	}
	_, err = s.client.PutObject(ctx, s.bucket, name, body, size, minio.PutObjectOptions{
		PartSize:    s.partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		// The reader's own verdict (size, context, the caller's reader)
		// is the cause; the client's wrapping of it may hide it.
		if rerr := readerErr(sr); rerr != nil {
			return fmt.Errorf("s3 artifact store %s: put %s: %w", s.where, key, rerr)
		}
		return s.describe("put", key, err)
	}
	return nil
}

// sectionOf returns, for a seekable io.ReaderAt such as an *os.File, a
// reader of the size bytes from its current position that the client
// uploads in parallel parts straight from it (no part buffers); nil for
// other readers. It checks first that exactly size bytes follow.
func sectionOf(ctx context.Context, r io.Reader, size int64) (*section, error) {
	ra, ok := r.(io.ReaderAt)
	seeker, ok2 := r.(io.Seeker)
	if !ok || !ok2 {
		return nil, nil
	}
	off, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, nil // not seekable (a pipe): stream it
	}
	var b [1]byte
	if n, _ := ra.ReadAt(b[:], off+size-1); n != 1 {
		return nil, fmt.Errorf("%w: the reader has fewer than the announced %d bytes", artifact.ErrSizeMismatch, size)
	}
	if n, err := ra.ReadAt(b[:], off+size); n != 0 || err != io.EOF {
		return nil, fmt.Errorf("%w: the reader has more than the announced %d bytes", artifact.ErrSizeMismatch, size)
	}
	return &section{ctx: ctx, sr: io.NewSectionReader(ra, off, size)}, nil
}

// section is an io.SectionReader that fails once ctx is done.
type section struct {
	ctx context.Context
	sr  *io.SectionReader
}

func (s *section) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	return s.sr.Read(p)
}

func (s *section) ReadAt(p []byte, off int64) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	return s.sr.ReadAt(p, off)
}

// readerErr returns the error a SizedReader ended with, if any (other
// than io.EOF).
func readerErr(r io.Reader) error {
	_, err := r.Read(nil)
	if err == nil || err == io.EOF {
		return nil
	}
	return err
}

// Get implements artifact.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 artifact store %s: get %s: %w", s.where, key, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.describe("get", key, err)
	}
	// The first request happens here: absence is reported now, not at
	// the first Read.
	info, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("s3 artifact store %s: get %s: %w", s.where, key, ctx.Err())
		}
		return nil, s.describe("get", key, err)
	}
	return &objectReader{obj: obj, s: s, key: key, left: info.Size, ctx: ctx}, nil
}

// objectReader streams an object; it reports the context's error when it
// is done, and a short body as an error.
type objectReader struct {
	obj  *minio.Object
	s    *Store
	key  string
	left int64
	ctx  context.Context
}

func (o *objectReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, fmt.Errorf("s3 artifact store %s: get %s: %w", o.s.where, o.key, err)
	}
	n, err := o.obj.Read(p)
	o.left -= int64(n)
	switch {
	case err == io.EOF && o.left != 0:
		return n, fmt.Errorf("s3 artifact store %s: get %s: the object ended %d bytes early (it was replaced or deleted while read): %w", o.s.where, o.key, o.left, io.ErrUnexpectedEOF)
	case err != nil && err != io.EOF:
		if cerr := o.ctx.Err(); cerr != nil {
			return n, fmt.Errorf("s3 artifact store %s: get %s: %w", o.s.where, o.key, cerr)
		}
		return n, o.s.describe("get", o.key, err)
	}
	return n, err
}

func (o *objectReader) Close() error { return o.obj.Close() }

// Stat implements artifact.Store.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	name, err := s.object(key)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("s3 artifact store %s: stat %s: %w", s.where, key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return 0, s.describe("stat", key, err)
	}
	return info.Size, nil
}

// Delete implements artifact.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 artifact store %s: delete %s: %w", s.where, key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(s.describe("delete", key, err), artifact.ErrNotFound) {
			return nil
		}
		return s.describe("delete", key, err)
	}
	return nil
}

// describe turns a client error into one that says what to do, with every
// credential scrubbed from its text.
func (s *Store) describe(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	var sentinel error
	hint := ""
	switch resp.Code {
	case minio.NoSuchKey, "NotFound":
		sentinel = artifact.ErrNotFound
	case minio.NoSuchBucket:
		hint = "the bucket does not exist: create it, or fix the bucket name"
	case minio.AccessDenied, "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
		hint = "the service refused the credentials: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or s3.Options) and the bucket policy"
	case "AuthorizationHeaderMalformed", "PermanentRedirect":
		hint = "wrong region for the bucket: set AWS_REGION (or s3.Options.Region)"
	}
	if sentinel == nil && resp.StatusCode == http.StatusNotFound && resp.Code == "" {
		sentinel = artifact.ErrNotFound
	}
	if hint == "" && sentinel == nil {
		msg := err.Error()
		if strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout") {
			hint = "cannot reach " + s.where + ": check the endpoint and that the service is reachable from this runner"
		}
	}
	text := scrubText(err.Error(), s.secrets)
	switch {
	case sentinel != nil:
		return &scrubbed{msg: fmt.Sprintf("s3 artifact store %s: %s %s: %v: %s", s.where, op, key, sentinel, text), wrapped: []error{sentinel, err}}
	case hint != "":
		return &scrubbed{msg: fmt.Sprintf("s3 artifact store %s: %s %s: %s: %s", s.where, op, key, hint, text), wrapped: []error{err}}
	}
	return &scrubbed{msg: fmt.Sprintf("s3 artifact store %s: %s %s: %s", s.where, op, key, text), wrapped: []error{err}}
}

// scrubbed is an error whose text has been cleaned of credentials but
// which still unwraps to the original errors (for errors.Is and As).
type scrubbed struct {
	msg     string
	wrapped []error
}

func (e *scrubbed) Error() string   { return e.msg }
func (e *scrubbed) Unwrap() []error { return e.wrapped }

func scrubText(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// String describes the store in messages: endpoint, bucket and prefix,
// never credentials.
func (s *Store) String() string {
	if s.prefix != "" {
		return "S3 artifact store " + s.where + "/" + s.prefix
	}
	return "S3 artifact store " + s.where
}

// OpenURL opens the store an s3://bucket/prefix URL names; modpipe's
// --artifact-store (MODPIPE_ARTIFACT_STORE) calls it for s3:// URLs.
// Credentials come from the standard AWS environment variables
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, then the
// shared credentials file), never from the URL: a URL with user
// information is refused, so that no secret ends up in command lines and
// logs. Query parameters override the environment:
//
//   - endpoint: the service's URL (default AWS_ENDPOINT_URL_S3, then
//     AWS_ENDPOINT_URL, then AWS S3), such as
//     s3://ci/artifacts?endpoint=http://127.0.0.1:9000 for a local MinIO;
//   - region: the bucket's region (default AWS_REGION, then
//     AWS_DEFAULT_REGION);
//   - path-style=true: path-style requests (Options.PathStyle).
func OpenURL(raw string) (artifact.Store, error) {
	const usage = "use s3://bucket/prefix, optionally with ?endpoint=URL&region=NAME&path-style=true (credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
	rest, ok := strings.CutPrefix(raw, "s3://")
	if !ok {
		return nil, fmt.Errorf("s3 artifact store: %s is not an s3:// URL; %s", redact.URL(raw), usage)
	}
	rest, query, _ := strings.Cut(rest, "?")
	bucket, prefix, _ := strings.Cut(rest, "/")
	if strings.Contains(bucket, "@") {
		return nil, errors.New("s3 artifact store: the URL holds credentials, which would show in command lines and logs; remove them and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) instead")
	}
	if bucket == "" || strings.ContainsAny(bucket, ":#") {
		return nil, fmt.Errorf("s3 artifact store: the URL names no valid bucket; %s", usage)
	}
	o := Options{Bucket: bucket, Prefix: strings.Trim(prefix, "/")}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("s3 artifact store: the URL's query cannot be parsed (%v); %s", err, usage)
	}
	for k, v := range params {
		if len(v) != 1 {
			return nil, fmt.Errorf("s3 artifact store: URL parameter %s is given %d times; give it once", k, len(v))
		}
		switch k {
		case "endpoint":
			if u, err := url.Parse(v[0]); err == nil && u.User != nil {
				return nil, errors.New("s3 artifact store: the URL's endpoint holds credentials, which would show in command lines and logs; remove them and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
			}
			o.Endpoint = v[0]
		case "region":
			o.Region = v[0]
		case "path-style":
			switch v[0] {
			case "true", "1":
				o.PathStyle = true
			case "false", "0":
			default:
				return nil, fmt.Errorf("s3 artifact store: path-style=%s: use true or false", v[0])
			}
		default:
			return nil, fmt.Errorf("s3 artifact store: unknown URL parameter %q; %s", k, usage)
		}
	}
	return NewStore(o)
}
