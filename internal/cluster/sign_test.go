package cluster

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

const testSecret = "0123456789abcdef-shared"

func sampleResult() distributed.Result {
	return distributed.Result{
		Module: "build", Status: distributed.StatusFailed, Value: []byte(`{"a":1}`),
		Lease:  distributed.Lease{Module: "build", Attempt: 2, Holder: 1, Session: "s1", Token: "t1", Age: time.Second},
		Error:  &distributed.ErrorInfo{Message: "boom", Kind: "error", Instance: 1},
		Reason: "why", Attempts: 3, Duration: time.Second, QueueWait: time.Millisecond, Log: []byte("line\n"),
	}
}

func TestSignedResultVerifiesAndEveryFieldIsCovered(t *testing.T) {
	s := NewSigner(testSecret, "run-1")
	base := sampleResult()
	s.SignResult(&base)
	if len(base.MAC) != 32 {
		t.Fatalf("MAC is %d bytes, want 32 (HMAC-SHA256)", len(base.MAC))
	}
	if err := s.VerifyResult(base, "build"); err != nil {
		t.Fatalf("a genuine result is refused: %v", err)
	}
	// The age is the coordinator's measurement, not the holder's statement.
	aged := base
	aged.Lease.Age = time.Hour
	if err := s.VerifyResult(aged, "build"); err != nil {
		t.Fatalf("a result whose lease age changed is refused: %v", err)
	}
	tamper := map[string]func(r *distributed.Result){
		"status":          func(r *distributed.Result) { r.Status = distributed.StatusSucceeded },
		"value":           func(r *distributed.Result) { r.Value = []byte(`{"a":2}`) },
		"value removed":   func(r *distributed.Result) { r.Value = nil },
		"lease attempt":   func(r *distributed.Result) { r.Lease.Attempt = 1 },
		"lease holder":    func(r *distributed.Result) { r.Lease.Holder = 2 },
		"lease session":   func(r *distributed.Result) { r.Lease.Session = "s2" },
		"lease token":     func(r *distributed.Result) { r.Lease.Token = "t2" },
		"error message":   func(r *distributed.Result) { e := *r.Error; e.Message = "fine"; r.Error = &e },
		"error kind":      func(r *distributed.Result) { e := *r.Error; e.Kind = "panic"; r.Error = &e },
		"error instance":  func(r *distributed.Result) { e := *r.Error; e.Instance = 0; r.Error = &e },
		"error removed":   func(r *distributed.Result) { r.Error = nil },
		"reason":          func(r *distributed.Result) { r.Reason = "other" },
		"attempts":        func(r *distributed.Result) { r.Attempts = 1 },
		"duration":        func(r *distributed.Result) { r.Duration = time.Minute },
		"queue wait":      func(r *distributed.Result) { r.QueueWait = 0 },
		"log":             func(r *distributed.Result) { r.Log = []byte("other\n") },
		"mac flipped":     func(r *distributed.Result) { r.MAC = slices.Clone(r.MAC); r.MAC[0] ^= 1 },
		"mac removed":     func(r *distributed.Result) { r.MAC = nil },
		"field boundary":  func(r *distributed.Result) { r.Reason, r.Log = "whyline\n", nil },
		"empty error msg": func(r *distributed.Result) { r.Error = &distributed.ErrorInfo{} },
	}
	for name, change := range tamper {
		r := base
		change(&r)
		err := s.VerifyResult(r, "build")
		if !errors.Is(err, ErrNotSigned) {
			t.Errorf("%s changed: verification gives %v, want ErrNotSigned", name, err)
			continue
		}
		for _, want := range []string{"result for module build from instance", "MODPIPE_SHARED_SECRET", "refused"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s changed: error %q does not say %q", name, err, want)
			}
		}
	}
}

func TestSignatureBoundToSecretAndRun(t *testing.T) {
	r := sampleResult()
	NewSigner(testSecret, "run-1").SignResult(&r)
	if err := NewSigner(testSecret, "run-2").VerifyResult(r, "build"); !errors.Is(err, ErrNotSigned) {
		t.Errorf("a result of run-1 verifies in run-2: %v", err)
	}
	if err := NewSigner(testSecret+"x", "run-1").VerifyResult(r, "build"); !errors.Is(err, ErrNotSigned) {
		t.Errorf("a result verifies under another secret: %v", err)
	}
	// A result for another module is refused even with a valid MAC.
	if err := NewSigner(testSecret, "run-1").VerifyResult(r, "test"); !errors.Is(err, distributed.ErrInvalid) {
		t.Errorf("a result of build is accepted for test: %v", err)
	}
	// Without a shared secret nothing is checked but the module.
	if err := (*Signer)(nil).VerifyResult(sampleResult(), "build"); err != nil {
		t.Errorf("a nil signer refuses a result: %v", err)
	}
	if NewSigner("", "run-1") != nil {
		t.Error("an empty secret makes a signer")
	}
}

func TestSignedAssignmentAndRegistration(t *testing.T) {
	s := NewSigner(testSecret, "run-1")
	a := distributed.Assignment{Module: "build", Attempt: 1, Requires: []string{"linux", "docker|podman"}, Priority: 5}
	s.SignAssignment(&a)
	if err := s.VerifyAssignment(a, 1); err != nil {
		t.Fatalf("a genuine assignment is refused: %v", err)
	}
	// Capabilities travel lower-case through some coordinators.
	upper := a
	upper.Requires = []string{"LINUX", "docker|podman"}
	if err := s.VerifyAssignment(upper, 1); err != nil {
		t.Errorf("case of requirements breaks the MAC: %v", err)
	}
	for name, change := range map[string]func(a *distributed.Assignment){
		"module":       func(a *distributed.Assignment) { a.Module = "deploy" },
		"attempt":      func(a *distributed.Assignment) { a.Attempt = 2 },
		"requires":     func(a *distributed.Assignment) { a.Requires = []string{"linux"} },
		"requires cut": func(a *distributed.Assignment) { a.Requires = []string{"linuxdocker|podman"} },
		"priority":     func(a *distributed.Assignment) { a.Priority = 6 },
		"mac removed":  func(a *distributed.Assignment) { a.MAC = nil },
	} {
		b := a
		change(&b)
		err := s.VerifyAssignment(b, 1)
		if !errors.Is(err, ErrNotSigned) || !strings.Contains(err.Error(), "claimed by instance 1") {
			t.Errorf("%s changed: verification gives %v", name, err)
		}
	}

	// An instance without the secret does not run the signed work of a
	// master that has one.
	if err := (*Signer)(nil).VerifyAssignment(a, 2); err == nil || !strings.Contains(err.Error(), "instance 2 has none") {
		t.Errorf("an instance without a secret accepts a signed assignment: %v", err)
	}
	if err := (*Signer)(nil).VerifyAssignment(distributed.Assignment{Module: "build", Attempt: 1}, 2); err != nil {
		t.Errorf("an instance without a secret refuses an unsigned assignment: %v", err)
	}

	reg := distributed.Registration{Instance: 1, Total: 3, Capabilities: []string{"linux"}, Fingerprint: "fp", Session: "s1"}
	s.SignRegistration(&reg)
	info := distributed.InstanceInfo{Instance: 1, Total: 3, Capabilities: []string{"linux"}, Fingerprint: "fp", Session: "s1", MAC: reg.MAC, Age: time.Second}
	if err := s.VerifyInstance(info); err != nil {
		t.Fatalf("a genuine registration is refused: %v", err)
	}
	for name, change := range map[string]func(in *distributed.InstanceInfo){
		"instance":     func(in *distributed.InstanceInfo) { in.Instance = 2 },
		"total":        func(in *distributed.InstanceInfo) { in.Total = 2 },
		"capabilities": func(in *distributed.InstanceInfo) { in.Capabilities = []string{"linux", "gpu"} },
		"fingerprint":  func(in *distributed.InstanceInfo) { in.Fingerprint = "other" },
		"session":      func(in *distributed.InstanceInfo) { in.Session = "s2" },
		"mac removed":  func(in *distributed.InstanceInfo) { in.MAC = nil },
	} {
		in := info
		change(&in)
		if err := s.VerifyInstance(in); !errors.Is(err, ErrNotSigned) {
			t.Errorf("%s changed: verification gives %v", name, err)
		}
	}

	// Domain separation: a MAC of one kind never passes as another's, even
	// over the same bytes.
	as := distributed.Assignment{Module: "build", Attempt: 1}
	as.MAC = s.registrationMAC(0, 0, nil, "", "").mac()
	if err := s.VerifyAssignment(as, 1); !errors.Is(err, ErrNotSigned) {
		t.Errorf("a registration MAC passes as an assignment's: %v", err)
	}
}
