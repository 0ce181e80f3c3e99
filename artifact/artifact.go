// Package artifact is the storage layer of modpipe's artifacts: files that
// one module produces and modules on other instances download.
//
// A Store is a flat blob store: keys are validated names (see ValidKey),
// values are byte streams of a known size. modpipe stores artifact files
// content-addressed (DigestKey), so the same bytes are uploaded once and
// every download can be verified against the digest in the artifact's
// manifest. Stores do not verify content; that is the caller's job.
//
// Three stores ship with modpipe: NewDirStore (a directory, the default
// for one process), distributed/redis.NewArtifactStore (chunked, in the
// coordinator's Redis) and artifact/s3.NewStore (S3-compatible services).
// The conformance suite artifact/storetest.Run checks the contract below;
// run it against any new store.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Store is a blob store keyed by validated keys. Implementations must be
// safe for concurrent use by many goroutines and must guarantee:
//
//   - Keys: every method first checks its key with ValidKey and refuses an
//     invalid one with an error wrapping ErrInvalidKey, touching nothing.
//     Keys are independent names ("a", "a.b" and "ab" are unrelated),
//     except that a store on a file system may refuse a key below an
//     existing one ("a/b" when "a" exists, or the reverse); modpipe uses
//     keys of one shape (DigestKey), which never collide that way.
//   - Atomic writes: Put writes the blob under a temporary name and makes it
//     visible with one atomic step only after every byte arrived. No reader
//     ever sees a partial blob; a Put that fails or is interrupted (reader
//     error, wrong size, cancelled context, process killed) leaves the key
//     as it was: absent, or holding its earlier complete value.
//   - Overwrite: a Put of an existing key replaces its value atomically.
//     When Puts of one key race, the key ends holding exactly one of the
//     complete values. A Get opened before an overwrite or Delete either
//     streams the complete old value or fails with an error; it never
//     yields a mix of two values or a silently shortened one.
//   - Streaming: no method holds a whole blob in memory; memory used per
//     call is bounded by a buffer (a chunk or a multipart part), whatever
//     the blob size.
//   - Context: a cancelled or expired context stops Put (leaving nothing
//     visible) and Get (including reads from the stream it returned, as
//     soon as the store can notice) with an error wrapping ctx.Err().
//   - Errors: absence is reported with an error wrapping ErrNotFound; no
//     error includes a credential or a URL password.
//
// A store that holds connections also implements io.Closer; its owner
// closes it when done.
type Store interface {
	// Put stores exactly size bytes read from r under key, replacing any
	// earlier value once all bytes arrived. If r yields fewer or more than
	// size bytes Put fails with an error wrapping ErrSizeMismatch and
	// nothing becomes visible; a store that runs out of room fails with an
	// error wrapping ErrStoreFull. Put reads r until io.EOF (one read past
	// the last byte, to see that nothing follows) and does not close it.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the blob stored under key for streaming. The stream yields
	// exactly the stored bytes, then io.EOF; if the blob vanishes or is
	// damaged while it is read, a Read returns an error instead of a short
	// stream. Absence is an error wrapping ErrNotFound. The caller closes
	// the stream; ctx also governs reads from it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat returns the size of the blob under key, or an error wrapping
	// ErrNotFound.
	Stat(ctx context.Context, key string) (int64, error)
	// Delete removes the blob under key. Deleting an absent key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

var (
	// ErrNotFound is wrapped by errors for a key that holds no blob.
	ErrNotFound = errors.New("artifact not found")
	// ErrInvalidKey is wrapped by errors for a key ValidKey refuses.
	ErrInvalidKey = errors.New("invalid artifact key")
	// ErrSizeMismatch is wrapped by Put errors when the reader yields a
	// different number of bytes than announced.
	ErrSizeMismatch = errors.New("artifact size mismatch")
	// ErrStoreFull is wrapped by Put errors when the store's budget or
	// space does not allow the blob.
	ErrStoreFull = errors.New("artifact store full")
)

// MaxKeyLen is the longest key ValidKey accepts, in bytes. It leaves room
// for a store's own prefix within the 1024-byte key limit of S3.
const MaxKeyLen = 512

// MaxSegmentLen is the longest segment (part between slashes) ValidKey
// accepts, in bytes; file systems limit a name to 255 bytes.
const MaxSegmentLen = 128

// ValidKey checks a key: 1 to MaxKeyLen bytes of slash-separated segments
// of at most MaxSegmentLen bytes, each made of a-z, 0-9, '.', '_' and '-',
// and none empty, "." or "..".
// Keys are therefore portable file paths (lowercase, so case-insensitive
// file systems cannot merge two keys) and safe S3 and Redis names. The
// error wraps ErrInvalidKey and says which rule the key breaks.
func ValidKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s (keys are slash-separated segments of a-z, 0-9, '.', '_' and '-', at most %d bytes, segments at most %d)", ErrInvalidKey, trimForMessage(key), why, MaxKeyLen, MaxSegmentLen)
	}
	if key == "" {
		return bad("empty")
	}
	if len(key) > MaxKeyLen {
		return bad(fmt.Sprintf("%d bytes long", len(key)))
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("empty segment")
		case ".", "..":
			return bad("segment " + seg)
		}
		if len(seg) > MaxSegmentLen {
			return bad(fmt.Sprintf("a segment of %d bytes (at most %d)", len(seg), MaxSegmentLen))
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return bad(fmt.Sprintf("character %q not allowed", c))
			}
		}
	}
	return nil
}

func trimForMessage(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Digest returns the lowercase hex SHA-256 of everything r yields,
// streaming, and the number of bytes read.
func Digest(r io.Reader) (hexDigest string, n int64, err error) {
	h := sha256.New()
	n, err = io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// DigestKey is the key under which modpipe stores content with the given
// hex SHA-256 digest: "blobs/sha256/<hex>". It refuses anything that is
// not 64 lowercase hex digits (the digest may come from an untrusted
// manifest).
func DigestKey(hexDigest string) (string, error) {
	if len(hexDigest) != sha256.Size*2 {
		return "", fmt.Errorf("%w: digest %q is not 64 hex digits", ErrInvalidKey, trimForMessage(hexDigest))
	}
	for i := 0; i < len(hexDigest); i++ {
		c := hexDigest[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("%w: digest %q is not lowercase hex", ErrInvalidKey, trimForMessage(hexDigest))
		}
	}
	return "blobs/sha256/" + hexDigest, nil
}

// SizedReader returns a reader for store authors that yields r's bytes
// while checking the Put contract: it fails with an error wrapping
// ErrSizeMismatch if r ends before size bytes or has more than size
// (checked by reading one byte ahead when the last byte is delivered, so
// the error arrives before a client would commit), and with ctx.Err()
// once ctx is done. Pass it to the code that uploads and commit only after
// it returned io.EOF.
func SizedReader(ctx context.Context, r io.Reader, size int64) io.Reader {
	return &sizedReader{ctx: ctx, r: r, left: size, size: size}
}

type sizedReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
	size int64
	err  error
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if s.left == 0 {
		return 0, s.checkEnd()
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	switch {
	case err == io.EOF && s.left > 0:
		s.err = fmt.Errorf("%w: the reader ended after %d of %d bytes", ErrSizeMismatch, s.size-s.left, s.size)
		return n, s.err
	case err != nil && err != io.EOF:
		s.err = err
		return n, err
	case s.left == 0:
		// Make sure nothing follows before the last byte is handed over.
		if err := s.checkEnd(); err != io.EOF {
			return n, err
		}
	}
	return n, nil
}

// checkEnd reads ahead once all size bytes arrived: io.EOF if r is done,
// an ErrSizeMismatch error if it has more.
func (s *sizedReader) checkEnd() error {
	var one [1]byte
	for {
		m, err := s.r.Read(one[:])
		if m > 0 {
			s.err = fmt.Errorf("%w: the reader has more than the announced %d bytes", ErrSizeMismatch, s.size)
			return s.err
		}
		if err != nil {
			s.err = err
			return err
		}
	}
}

// ContextReader returns a reader that fails with ctx.Err() once ctx is
// done; stores use it so that ctx governs the stream Get returns.
func ContextReader(ctx context.Context, r io.ReadCloser) io.ReadCloser {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.ReadCloser
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c *ctxReader) Close() error { return c.r.Close() }
