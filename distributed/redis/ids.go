package redis

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/modpipe/modpipe/internal/ident"
)

// idSource makes the ids a coordinator sends with its calls (claim request
// ids, which also name leases' tokens, and results' nonces): a random
// prefix drawn once, then a counter. crypto/rand per call cost a system
// call per module; the ids only need to be unique within a run, which 64
// random bits per coordinator make them (the prefix has a fixed length, so
// two counters never spell the same id). They are made of hex digits
// only: tokens must be letters, digits and dots (see leaseHead).
type idSource struct {
	once   sync.Once
	prefix string
	n      atomic.Uint64
}

// next returns a new id.
func (s *idSource) next() string {
	s.once.Do(func() { s.prefix = ident.Random(8) })
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], s.prefix...), s.n.Add(1), 16))
}
