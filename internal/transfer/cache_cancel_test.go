package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

// blockingGetStore blocks its first Get until its context ends; later Gets
// go through.
type blockingGetStore struct {
	artifact.Store
	gets    atomic.Int64
	blocked chan struct{} // closed when the first Get blocks
}

func (b *blockingGetStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if b.gets.Add(1) == 1 {
		close(b.blocked)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return b.Store.Get(ctx, key)
}

// TestCacheFetchOfACancelledModuleIsNotShared: two downloads of one blob on
// an instance share a fetch; when the module that leads it is cancelled
// (timed out, or the run is stopping and the other module is AlwaysRun),
// the other download fetches the blob itself instead of failing with that
// module's cancellation.
func TestCacheFetchOfACancelledModuleIsNotShared(t *testing.T) {
	content := bytes.Repeat([]byte("z"), 1000)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	key, err := artifact.DigestKey(digest)
	if err != nil {
		t.Fatal(err)
	}
	dir := artifact.NewDirStore(t.TempDir())
	if err := dir.Put(context.Background(), key, bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	store := &blockingGetStore{Store: dir, blocked: make(chan struct{})}
	c := NewCache(t.TempDir(), store, "test store")
	joined := make(chan struct{}, 2)
	c.joined = func() { joined <- struct{}{} }

	leadCtx, cancelLead := context.WithCancel(context.Background())
	defer cancelLead()
	leadDone := make(chan error, 1)
	go func() {
		rc, _, err := c.Open(leadCtx, digest, int64(len(content)), nil, nil)
		if rc != nil {
			rc.Close()
		}
		leadDone <- err
	}()
	await := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s never happened", what)
		}
	}
	await(store.blocked, "the leading fetch")
	await(joined, "the leading Open's join")
	otherDone := make(chan error, 1)
	var got []byte
	go func() {
		rc, _, err := c.Open(context.Background(), digest, int64(len(content)), nil, nil)
		if err == nil {
			got, err = io.ReadAll(rc)
			rc.Close()
		}
		otherDone <- err
	}()
	await(joined, "the second Open's join")
	cancelLead()
	if err := <-leadDone; err == nil {
		t.Error("the cancelled Open succeeded")
	}
	select {
	case err := <-otherDone:
		if err != nil {
			t.Fatalf("the second Open failed with the first one's cancellation: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the second Open never ended")
	}
	if !bytes.Equal(got, content) {
		t.Errorf("the second Open read %d bytes, want the %d of the blob", len(got), len(content))
	}
}
