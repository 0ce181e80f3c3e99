package distributed

import (
	"fmt"
	"strings"
)

var validStatuses = map[Status]bool{StatusSucceeded: true, StatusFailed: true, StatusSkipped: true, StatusTimedOut: true, StatusCancelled: true}

// ValidateAssignment reports what is wrong with a, wrapping ErrInvalid.
func ValidateAssignment(a Assignment) error {
	if err := validateName(a.Module); err != nil {
		return err
	}
	if a.Attempt < 1 {
		return fmt.Errorf("%w: assignment of %s has attempt %d; attempts start at 1", ErrInvalid, a.Module, a.Attempt)
	}
	for _, c := range a.Requires {
		if c == "" || c != strings.ToLower(c) || len(c) > MaxNameSize {
			return fmt.Errorf("%w: assignment of %s requires capability %q; capabilities are non-empty and lower-case", ErrInvalid, a.Module, c)
		}
	}
	return nil
}

// ValidateResult reports what is wrong with r, wrapping ErrInvalid.
func ValidateResult(r Result) error {
	if err := validateName(r.Module); err != nil {
		return err
	}
	if r.Lease.Module != r.Module || r.Lease.Token == "" {
		return fmt.Errorf("%w: result of %s carries no lease for it", ErrInvalid, r.Module)
	}
	if !validStatuses[r.Status] {
		return fmt.Errorf("%w: result of %s has unknown status %q", ErrInvalid, r.Module, r.Status)
	}
	if len(r.Value) > MaxValueSize {
		return fmt.Errorf("%w: result of %s is %d bytes; the limit is %d (pass large data as an artifact, not a result)", ErrInvalid, r.Module, len(r.Value), MaxValueSize)
	}
	if len(r.Log) > MaxLogSize {
		return fmt.Errorf("%w: log of %s is %d bytes; the limit is %d", ErrInvalid, r.Module, len(r.Log), MaxLogSize)
	}
	if r.Status == StatusSucceeded && len(r.Value) == 0 {
		return fmt.Errorf("%w: successful result of %s has no value", ErrInvalid, r.Module)
	}
	return nil
}

func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty module name", ErrInvalid)
	}
	if len(name) > MaxNameSize {
		return fmt.Errorf("%w: module name of %d bytes; the limit is %d", ErrInvalid, len(name), MaxNameSize)
	}
	return nil
}

// Satisfies reports whether an instance with caps can take an assignment
// requiring requires: every requirement must be among caps (compared
// case-insensitively), and a requirement "a|b" needs either a or b.
func Satisfies(caps, requires []string) bool {
	for _, r := range requires {
		found := false
		for alt := range strings.SplitSeq(r, "|") {
			for _, c := range caps {
				if strings.EqualFold(c, alt) {
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
