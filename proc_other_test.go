//go:build unix && !linux

package modpipe_test

func isZombie(int) bool { return false }
