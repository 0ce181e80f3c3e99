package redis_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed/redis"
	"github.com/modpipe/modpipe/internal/redistest"
)

// unreachableRegister registers against a stopped server, with a password
// in the URL, logging the client's diagnostics into log.
func unreachableRegister(t *testing.T, log *slog.Logger) error {
	srv := redistest.Start(t)
	addr := srv.Addr()
	srv.Stop()
	c := redis.NewCoordinator(redis.Options{URL: "redis://u:log-s3cret-pw@" + addr + "/0", RunID: newRunID(),
		OutageTolerance: 2 * time.Second, ConnectTimeout: time.Second, Logger: log})
	defer c.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Register(cctx, reg(0))
}

// TestClientLogsRouted: go-redis's own lines ("pool.go: failed to dial")
// reach the coordinator's logger (or slog.Default), redacted, and never
// stderr raw. The raw
// stderr is checked in a child process, since go-redis's default logger
// holds the process's stderr from its start.
func TestClientLogsRouted(t *testing.T) {
	if os.Getenv("MODPIPE_LOGTEST_CHILD") == "1" {
		// Lines from go-redis's background dials carry no coordinator's
		// context: they go to slog.Default, at debug level.
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug})))
		err := unreachableRegister(t, slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err == nil {
			t.Fatal("registered with a stopped server")
		}
		t.Log(err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestClientLogsRouted$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MODPIPE_LOGTEST_CHILD=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "pool.go") || strings.Contains(stderr.String(), "connection pool") {
		t.Errorf("raw go-redis lines on stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "redis client: connection pool: failed to dial") {
		t.Errorf("go-redis's line did not reach the coordinator's logger:\n%s", stdout.String())
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "log-s3cret-pw") {
		t.Errorf("the password was printed:\n%s", out)
	}
}
