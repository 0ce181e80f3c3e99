package workflow

import (
	"fmt"
	"slices"
	"strings"
)

// linuxHostedCaps are the non-OS capabilities hosted Linux runners offer
// (GitHub's Ubuntu runners have Docker).
var linuxHostedCaps = []string{"docker"}

// Plan chooses the instances for a pipeline: a master on Linux, one worker per
// OS that modules need, plus extra Linux workers.
//
// need lists the operating systems modules require (their OnOS and
// MatrixTarget targets, e.g. ["linux", "windows", "macos"]); Linux is covered
// by the master, every other OS gets one worker, in the order windows, macos,
// freebsd. caps are the non-OS capabilities modules require
// (RequiresCapability): Linux instances offer the ones hosted Linux runners
// have (docker); notes name each one no generated instance offers and how to
// add a runner that does. extra is the number of additional Linux workers,
// which come right after the master. runners maps an OS to a runner label
// that replaces the hosted default (e.g. "freebsd" -> "self-hosted-freebsd");
// an OS with no hosted runner (freebsd) and no override is an error naming
// the fix.
//
// The result is deterministic: need and caps are case-insensitive and their
// order and duplicates do not matter. Notes are sorted, one finding each.
func Plan(need []string, caps []string, extra int, runners map[string]string) (instances []Instance, notes []string, err error) {
	return PlanWorkers(need, caps, extra, nil, runners)
}

// PlanWorkers is Plan with workers asked for by capability (--worker CAPS):
// each entry of workers is one more Linux worker, right after the extra
// ones, offering those capabilities besides what hosted Linux runners
// offer. It runs on the Linux runner (the hosted one, or the override for
// linux). A capability that modules require and some worker offers gets no
// note; a worker capability no module requires gets one.
func PlanWorkers(need []string, caps []string, extra int, workers [][]string, runners map[string]string) (instances []Instance, notes []string, err error) {
	if extra < 0 {
		return nil, nil, fmt.Errorf("--extra-workers %d: the number of extra workers is negative; give 0 or more", extra)
	}
	if extra+1 > maxInstances {
		return nil, nil, fmt.Errorf("--extra-workers %d: a GitHub matrix runs at most %d jobs; ask for fewer workers", extra, maxInstances)
	}
	for os, label := range runners {
		if !slices.Contains(knownOS, os) {
			return nil, nil, fmt.Errorf("--runner %q: unknown OS %q (want one of %s)", os+"="+label, os, strings.Join(knownOS, ", "))
		}
		if !runnerRE.MatchString(label) {
			return nil, nil, fmt.Errorf("--runner %q: label %q: use letters, digits and . _ / - only", os+"="+label, label)
		}
	}

	oses := map[string]bool{osLinux: true} // the master
	for _, n := range need {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if !slices.Contains(knownOS, n) {
			return nil, nil, fmt.Errorf("modules need OS %q, which modpipe does not know (want one of %s)", n, strings.Join(knownOS, ", "))
		}
		oses[n] = true
	}
	var wanted []string
	for _, c := range caps {
		c = strings.ToLower(strings.TrimSpace(c))
		switch {
		case c == "":
			continue
		case slices.Contains(knownOS, c):
			oses[c] = true // RequiresCapability("windows") routes like OnOS("windows")
			continue
		case !capRE.MatchString(c):
			return nil, nil, fmt.Errorf("capability %q: use letters, digits and . _ - only", c)
		}
		if !slices.Contains(wanted, c) {
			wanted = append(wanted, c)
		}
	}
	slices.Sort(wanted)

	for _, os := range knownOS {
		if oses[os] && runners[os] == "" {
			if _, hosted := githubRunners[os]; !hosted {
				return nil, nil, fmt.Errorf("modules need %s, which has no hosted runner: register a self-hosted %s runner and pass its label with --runner %s=LABEL (e.g. --runner %s=self-hosted-%s)", os, os, os, os, os)
			}
		}
	}

	workerCaps, err := normalizeWorkers(workers)
	if err != nil {
		return nil, nil, err
	}
	offered := slices.Compact(slices.Sorted(slices.Values(slices.Concat(workerCaps...))))
	for _, c := range offered {
		if !slices.Contains(wanted, c) && !slices.Contains(linuxHostedCaps, c) {
			notes = append(notes, fmt.Sprintf("--worker %s: no module requires capability %q", c, c))
		}
	}

	var linuxCaps []string
	for _, c := range wanted {
		if slices.Contains(linuxHostedCaps, c) {
			linuxCaps = append(linuxCaps, c)
			if label := runners[osLinux]; label != "" {
				notes = append(notes, fmt.Sprintf("capability %q is assumed on the Linux runner %q (an override, not a hosted runner): make sure it is installed there", c, label))
			}
			continue
		}
		if slices.Contains(offered, c) {
			continue
		}
		notes = append(notes, fmt.Sprintf("no generated instance offers capability %q, so modules that require it cannot run: add a worker job that offers it with --worker %s (repeatable; comma-separate several capabilities of one worker). Worker jobs run on the Linux runner: if the hosted one lacks %s, point Linux at a self-hosted runner that has it with --runner linux=LABEL", c, c, c))
	}
	for os := range runners {
		if !oses[os] {
			notes = append(notes, fmt.Sprintf("the runner override for %s is unused: no module needs %s", os, os))
		}
	}
	slices.Sort(notes)

	linux := func() Instance {
		return Instance{Index: len(instances), OS: osLinux, Runner: runners[osLinux], Capabilities: slices.Clone(linuxCaps)}
	}
	instances = append(instances, linux())
	for range extra {
		instances = append(instances, linux())
	}
	for _, wc := range workerCaps {
		in := linux()
		for _, c := range wc {
			if !slices.Contains(in.Capabilities, c) {
				in.Capabilities = append(in.Capabilities, c)
			}
		}
		slices.Sort(in.Capabilities)
		instances = append(instances, in)
	}
	for _, os := range knownOS[1:] {
		if oses[os] {
			instances = append(instances, Instance{Index: len(instances), OS: os, Runner: runners[os]})
		}
	}
	if len(instances) > maxInstances {
		return nil, nil, fmt.Errorf("%d instances: a GitHub matrix runs at most %d jobs", len(instances), maxInstances)
	}
	return instances, notes, nil
}

// normalizeWorkers checks the capabilities of each requested worker and
// returns them lower-cased, sorted and without duplicates.
func normalizeWorkers(workers [][]string) ([][]string, error) {
	out := make([][]string, 0, len(workers))
	for i, w := range workers {
		var caps []string
		for _, c := range w {
			c = strings.ToLower(strings.TrimSpace(c))
			switch {
			case c == "":
				continue
			case slices.Contains(knownOS, c):
				return nil, fmt.Errorf("--worker %s (worker %d): %q is an OS, not a capability: workers for an OS are added when modules need it (OnOS, MatrixTarget), and their runner is set with --runner %s=LABEL", strings.Join(w, ","), i+1, c, c)
			case !capRE.MatchString(c):
				return nil, fmt.Errorf("--worker %s (worker %d): capability %q: use letters, digits and . _ - only", strings.Join(w, ","), i+1, c)
			}
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
		if len(caps) == 0 {
			return nil, fmt.Errorf("--worker %q (worker %d) offers no capability: name at least one (e.g. --worker cgo), or use --extra-workers for plain Linux workers", strings.Join(w, ","), i+1)
		}
		slices.Sort(caps)
		out = append(out, caps)
	}
	return out, nil
}
