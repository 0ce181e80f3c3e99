package cluster

import (
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/modpipe/modpipe/distributed"
)

// The MACs of every message kind, as the first signer wrote them: a
// change to the encoding or to how the HMAC is computed must not change
// a byte (instances of different builds verify each other's messages).
func TestSignerMACsAreStable(t *testing.T) {
	s := NewSigner(testSecret, "run-1")
	r := sampleResult()
	s.SignResult(&r)
	a := distributed.Assignment{Module: "build", Attempt: 2, Requires: []string{"Linux", "docker"}, Priority: 7}
	s.SignAssignment(&a)
	// Fields from bigField on go to the HMAC past the buffer.
	big := sampleResult()
	big.Log = []byte(strings.Repeat("log line\n", 300))
	big.Reason = strings.Repeat("r", 700)
	big.Value = []byte(`"` + strings.Repeat("v", 511) + `"`)
	s.SignResult(&big)
	reg := distributed.Registration{Instance: 1, Total: 3, Capabilities: []string{"linux"}, Fingerprint: "fp", Session: "s1"}
	s.SignRegistration(&reg)
	for _, c := range []struct {
		kind string
		mac  []byte
		want string
	}{
		{"result", r.MAC, "ac4c0c40ea2121ee9b08d9dc5a93ec367a7bb6b71b7f86778d79680a3ecc9be6"},
		{"result with big fields", big.MAC, "6550815186d1760df3068685a25d6f28ca2ec6b7e9ed3d8d49bb3702dff42839"},
		{"assignment", a.MAC, "1c6ceb0b855f0f9bd7a8e2893ba925fdc6bc3b872dad8456b9d30c6aca4fcf4b"},
		{"registration", reg.MAC, "57c072071475a5942e89301de645b25e2c62a9ea8df61210e5b13d6378cc9cf8"},
	} {
		if got := hex.EncodeToString(c.mac); got != c.want {
			t.Errorf("%s MAC is %s, want %s", c.kind, got, c.want)
		}
	}
}

// One signer serves every goroutine of an instance at once.
func TestSignerConcurrentUse(t *testing.T) {
	s := NewSigner(testSecret, "run-1")
	want := sampleResult()
	s.SignResult(&want)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				r := sampleResult()
				s.SignResult(&r)
				if string(r.MAC) != string(want.MAC) {
					t.Errorf("goroutine %d: MAC %d differs", g, i)
					return
				}
				if err := s.VerifyResult(r, "build"); err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				a := distributed.Assignment{Module: "m", Attempt: i + 1}
				s.SignAssignment(&a)
				if err := s.VerifyAssignment(a, 1); err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The signer reuses its HMAC state: verifying allocates nothing, signing
// only the MAC it returns.
func TestSignerAllocations(t *testing.T) {
	// The race detector makes sync.Pool drop a quarter of what is put back
	// at random, so under it a pooled state is sometimes built anew: the
	// bounds then allow that on average, still far below the 17 and 35
	// allocations of a signer without a pool.
	verifyMax, signMax := 0.0, 1.0
	if raceEnabled {
		verifyMax, signMax = 6, 8
	}
	s := NewSigner(testSecret, "run-1")
	a := distributed.Assignment{Module: "build", Attempt: 1, Requires: []string{"linux"}, Priority: 3}
	s.SignAssignment(&a)
	r := sampleResult()
	// Pools drop their content at GCs; AllocsPerRun averages over runs.
	if n := testing.AllocsPerRun(200, func() { _ = s.VerifyAssignment(a, 1) }); n > verifyMax {
		t.Errorf("VerifyAssignment allocates %v times, want at most %v", n, verifyMax)
	}
	if n := testing.AllocsPerRun(200, func() { s.SignResult(&r) }); n > signMax {
		t.Errorf("SignResult allocates %v times, want at most %v (the MAC)", n, signMax)
	}
}
