package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
)

const asynqTaskType = "distbench:noop"

// asynqPayload encodes a task's sequence number.
func asynqPayload(seq int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }

// asynqMain is the hidden "asynq" subcommand: an asynq server in its own
// process running no-op tasks. For each task it prints
// "T <seq> <start unix ns> <end unix ns>", timed inside the handler. It
// prints "READY" once started and stops when its stdin closes.
func asynqMain(args []string) int {
	fs := flag.NewFlagSet("asynq", flag.ContinueOnError)
	addr := fs.String("addr", "", "Redis host:port")
	queue := fs.String("queue", "default", "queue to serve")
	concurrency := fs.Int("concurrency", 8, "asynq Config.Concurrency")
	check := fs.Duration("task-check", 0, "asynq Config.TaskCheckInterval (0: asynq's default, 1s)")
	name := fs.String("client-name", "", "Redis client name of the server's connections")
	deadline := fs.Duration("deadline", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	time.AfterFunc(*deadline, func() {
		fmt.Fprintf(os.Stderr, "asynq server: deadline %s passed; exiting\n", *deadline)
		os.Exit(3)
	})
	rdb := goredis.NewClient(&goredis.Options{Addr: *addr, ClientName: *name})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       *concurrency,
		Queues:            map[string]int{*queue: 1},
		TaskCheckInterval: *check,
		LogLevel:          asynq.WarnLevel,
		ShutdownTimeout:   2 * time.Second,
	})
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	handler := asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
		start := time.Now()
		p := t.Payload()
		end := time.Now()
		if len(p) != 8 {
			return fmt.Errorf("payload of %d bytes", len(p))
		}
		mu.Lock()
		fmt.Fprintf(out, "T %d %d %d\n", binary.BigEndian.Uint64(p), start.UnixNano(), end.UnixNano())
		err := out.Flush()
		mu.Unlock()
		return err
	})
	if err := srv.Start(handler); err != nil {
		fmt.Fprintln(os.Stderr, "asynq server:", err)
		return 1
	}
	mu.Lock()
	fmt.Fprintln(out, "READY")
	_ = out.Flush()
	mu.Unlock()
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
	_ = rdb.Close()
	return 0
}
