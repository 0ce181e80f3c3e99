package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/engine"
)

func TestLargeValueTravelsCompressed(t *testing.T) {
	raw, _ := json.Marshal(strings.Repeat("modpipe ", 20<<20/8)) // 20 MiB
	wire, err := encodeValue("big", raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) >= len(raw)/10 || !bytes.HasPrefix(wire, zstdMagic) {
		t.Errorf("a %d-byte compressible value travels as %d bytes", len(raw), len(wire))
	}
	back, err := decodeValue("big", wire)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("round trip: %v (equal: %v)", err, bytes.Equal(back, raw))
	}
	small := []byte(`{"a":1}`)
	if w, err := encodeValue("small", small); err != nil || !bytes.Equal(w, small) {
		t.Errorf("a small value is sent as is: %q, %v", w, err)
	}
}

func TestIncompressibleValueOverLimitFailsClearly(t *testing.T) {
	noise := make([]byte, MaxValueSize+1<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(noise) // base64: compresses to about the noise's size
	_, err := encodeValue("noisy", raw)
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"result of noisy", fmt.Sprintf("%d bytes as JSON", len(raw)), fmt.Sprintf("limited to %d bytes compressed", MaxValueSize),
		"upload them with c.Upload"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// Through the executor's conversion, the module fails with that error.
	cl := distributed.Claim{Assignment: distributed.Assignment{Module: "noisy", Attempt: 1}, Lease: distributed.Lease{Module: "noisy", Attempt: 1, Token: "t"}}
	o := engine.Outcome{Status: engine.Succeeded, Value: noise}
	res, got := resultOf(cl, &o, nil, 2)
	if res.Status != distributed.StatusFailed || res.Error == nil || !strings.Contains(res.Error.Message, "c.Upload") || got != nil || res.Value != nil {
		t.Errorf("result %s, error %+v", res.Status, res.Error)
	}
}

// A small compressed payload crafted to expand beyond the decoded limit
// (a zip bomb written to the run's data) is refused, not decompressed.
func TestCompressedBombIsRefused(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	bomb := enc.EncodeAll(make([]byte, MaxDecodedValueSize+1), nil)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if len(bomb) > MaxValueSize {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	coord := distributed.NewInMemory()
	register(t, coord, 1)
	ctx := context.Background()
	if err := coord.Enqueue(ctx, distributed.Assignment{Module: "bomb", Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	cl, err := coord.Claim(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Publish(ctx, distributed.Result{Module: "bomb", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: bomb}); err != nil {
		t.Fatal(err)
	}
	_, err = NewValues(coord).Get(ctx, "bomb")
	if err == nil || !strings.Contains(err.Error(), "does not decompress within") || !strings.Contains(err.Error(), "result of bomb") {
		t.Errorf("Get = %v", err)
	}
	o := outcomeOf(distributed.Result{Module: "bomb", Lease: cl.Lease, Status: distributed.StatusSucceeded, Value: bomb}, time.Now())
	if o.Status != engine.Failed || o.Err == nil {
		t.Errorf("the master accepted the bomb: %s %v", o.Status, o.Err)
	}
}
