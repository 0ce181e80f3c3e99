package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestVerifyingReaderReadAfterStop: a store may read the body after its Put
// returned (net/http can read a request body after the round trip ended
// with an error, on a goroutine of its own). Once the upload ended (stop),
// such a read is an error, not a panic on the closed hashing channel.
func TestVerifyingReaderReadAfterStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	content := strings.Repeat("x", 3*bufSize+7)
	sum := sha256.Sum256([]byte(content))
	v := newVerifyingReader(strings.NewReader(content), hex.EncodeToString(sum[:]))
	if _, err := v.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	_ = v.stop() // Put failed midway; the upload ends
	n, err := v.Read(make([]byte, bufSize))
	if err == nil || errors.Is(err, io.EOF) || n != 0 {
		t.Errorf("a read after stop gave %d bytes, %v; want 0 and an error", n, err)
	}
}

// TestVerifyingReaderWholeContent: read to the end, the content hashed on
// the side matches, and a different content is errChanged.
func TestVerifyingReaderWholeContent(t *testing.T) {
	defer goleak.VerifyNone(t)
	content := strings.Repeat("y", 2*bufSize+3)
	sum := sha256.Sum256([]byte(content))
	v := newVerifyingReader(strings.NewReader(content), hex.EncodeToString(sum[:]))
	got, err := io.ReadAll(v)
	if err != nil || string(got) != content {
		t.Errorf("read %d bytes, %v; want the %d bytes of the content", len(got), err, len(content))
	}
	_ = v.stop()
	v = newVerifyingReader(strings.NewReader(content+"!"), hex.EncodeToString(sum[:]))
	if _, err := io.ReadAll(v); !errors.Is(err, errChanged) {
		t.Errorf("changed content: %v, want errChanged", err)
	}
	_ = v.stop()
}

// TestVerifyingReaderReadAfterEOF: reading again after the end gives the
// end again (io.EOF, or errChanged), as a reader should.
func TestVerifyingReaderReadAfterEOF(t *testing.T) {
	defer goleak.VerifyNone(t)
	sum := sha256.Sum256([]byte("abc"))
	for _, c := range []struct {
		content string
		want    error
	}{{"abc", io.EOF}, {"abd", errChanged}} {
		v := newVerifyingReader(strings.NewReader(c.content), hex.EncodeToString(sum[:]))
		_, _ = io.ReadAll(v)
		for range 2 {
			if n, err := v.Read(make([]byte, 8)); n != 0 || !errors.Is(err, c.want) {
				t.Errorf("%q: a read after the end gave %d, %v; want 0, %v", c.content, n, err, c.want)
			}
		}
		_ = v.stop()
	}
}
