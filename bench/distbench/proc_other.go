//go:build !linux

package main

import "os/exec"

// setPdeathsig is a no-op outside Linux; children are killed on exit and
// exit on their own deadline.
func setPdeathsig(*exec.Cmd) {}
