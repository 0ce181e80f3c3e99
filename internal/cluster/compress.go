package cluster

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/modpipe/modpipe/distributed"
)

// Limits on results that cross instances. A value's JSON above
// CompressAbove travels compressed with zstd; it must stay within
// MaxValueSize (distributed.MaxValueSize) on the wire and within
// MaxDecodedValueSize once decoded, which also bounds what a receiver
// decompresses (a small payload crafted to expand without end is refused).
const (
	CompressAbove       = 64 << 10                 // bytes of JSON above which a value is compressed
	MaxValueSize        = distributed.MaxValueSize // bytes on the wire
	MaxDecodedValueSize = 64 << 20                 // bytes once decompressed
)

// zstdMagic starts every zstd frame; no JSON text starts with it.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// errTooLarge is wrapped by encodeValue's error for a value over a limit.
var errTooLarge = errors.New("result too large")

// encodeValue returns the wire form of module's JSON value: itself, or
// compressed when large. A value over a limit fails with a message that
// names the module, its size and the limit.
func encodeValue(module string, raw []byte) ([]byte, error) {
	advice := "write it to files, upload them with c.Upload and return the modpipe.Artifact instead (its bytes travel through the artifact store, not the coordinator)"
	if len(raw) > MaxDecodedValueSize {
		return nil, fmt.Errorf("%w: the result of %s is %d bytes as JSON; results crossing instances are limited to %d bytes: %s",
			errTooLarge, module, len(raw), MaxDecodedValueSize, advice)
	}
	if len(raw) <= CompressAbove {
		return raw, nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("compressing the result of %s: %w", module, err)
	}
	wire := enc.EncodeAll(raw, make([]byte, 0, len(raw)/4))
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("compressing the result of %s: %w", module, err)
	}
	if len(wire) > MaxValueSize {
		return nil, fmt.Errorf("%w: the result of %s is %d bytes as JSON and still %d bytes compressed; results crossing instances are limited to %d bytes compressed: %s",
			errTooLarge, module, len(raw), len(wire), MaxValueSize, advice)
	}
	return wire, nil
}

// decodeValue returns the JSON value of a result's wire form, refusing to
// decompress beyond MaxDecodedValueSize.
func decodeValue(module string, wire []byte) ([]byte, error) {
	if !bytes.HasPrefix(wire, zstdMagic) {
		return wire, nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxDecodedValueSize), zstd.WithDecoderMaxWindow(MaxDecodedValueSize))
	if err != nil {
		return nil, fmt.Errorf("decompressing the result of %s: %w", module, err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(wire, nil)
	if err == nil && len(raw) > MaxDecodedValueSize {
		err = zstd.ErrDecoderSizeExceeded
	}
	if err != nil {
		return nil, fmt.Errorf("the result of %s read from the coordinator does not decompress within %d bytes (corrupt or forged data): %w",
			module, MaxDecodedValueSize, err)
	}
	return raw, nil
}
