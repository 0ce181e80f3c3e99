package cluster

import (
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

// BenchmarkSigner measures what a worker does per module: verify the
// assignment it claimed, sign its result.
func BenchmarkSigner(b *testing.B) {
	s := NewSigner(testSecret, "run-1")
	a := distributed.Assignment{Module: "build", Attempt: 1, Requires: []string{"linux"}, Priority: 3}
	s.SignAssignment(&a)
	b.Run("verify-assignment", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.VerifyAssignment(a, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign-result", func(b *testing.B) {
		r := sampleResult()
		b.ReportAllocs()
		for b.Loop() {
			s.SignResult(&r)
		}
	})
}
