package main

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the child if this process dies, so an
// interrupted benchmark leaves no redis-server or instance behind.
func setPdeathsig(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
