package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// redisServer is the redis-server this command starts for itself.
type redisServer struct {
	Port    int
	Version string
	cmd     *exec.Cmd
	dir     string
	done    chan struct{}
	log     *syncBuffer
}

func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the redis:// URL; a non-empty client name is added as go-redis's
// client_name option, so the server can tell the connections apart.
func (s *redisServer) URL(clientName string) string {
	u := "redis://" + s.Addr() + "/0"
	if clientName != "" {
		u += "?client_name=" + clientName
	}
	return u
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and waits (bounded) until it answers PING.
func startRedis(bin string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "distbench-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{Port: port, dir: dir, done: make(chan struct{}), log: &syncBuffer{}}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	setPdeathsig(s.cmd)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialRESP(s.Addr())
		if err == nil {
			v, err := c.do("PING")
			c.Close()
			if err == nil && v == "PONG" {
				break
			}
		}
		select {
		case <-s.done:
			s.Stop()
			return nil, fmt.Errorf("redis-server exited at start-up: %s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer PING within 10s: %s", port, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		s.Version = strings.TrimSpace(string(out))
	}
	return s, nil
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5s).
func (s *redisServer) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// respConn is a minimal RESP2 client for the benchmark's own admin
// commands. Unlike a pooled client it sends exactly the commands asked for
// (no handshake, no pings), so their number is known and can be subtracted
// from the server's counters.
type respConn struct {
	c net.Conn
	r *bufio.Reader
	// sent counts the commands sent on this connection, by commandstats
	// name ("info", "hlen", "client|list"), so that they can be subtracted
	// from the server's counters.
	sent map[string]int64
}

func dialRESP(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReaderSize(c, 1<<16), sent: map[string]int64{}}, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

func (rc *respConn) send(args ...string) error {
	name := strings.ToLower(args[0])
	if name == "client" && len(args) > 1 {
		name += "|" + strings.ToLower(args[1])
	}
	rc.sent[name]++
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := io.WriteString(rc.c, b.String())
	return err
}

// do sends one command and reads its reply, within 10s.
func (rc *respConn) do(args ...string) (any, error) {
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	defer rc.c.SetDeadline(time.Time{})
	if err := rc.send(args...); err != nil {
		return nil, err
	}
	return readReply(rc.r)
}

type respError string

func (e respError) Error() string { return string(e) }

// readReply reads one RESP2 reply: string, int64, nil, []any or respError
// (returned as the error).
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("resp: empty line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, respError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unexpected reply %q", line)
}

// snapshot is the server's counters at one moment.
type snapshot struct {
	At       time.Time
	Commands int64            // total_commands_processed
	CPU      float64          // used_cpu_user + used_cpu_sys, seconds
	Calls    map[string]int64 // per command (commandstats), nested script commands included
	// Usec is the server's time per command (commandstats), a script's
	// including the commands it ran.
	Usec map[string]int64
	// Own is what the admin connection had sent before this snapshot's INFO.
	Own map[string]int64
}

func (rc *respConn) snapshot() (snapshot, error) {
	own := maps.Clone(rc.sent)
	v, err := rc.do("INFO", "stats", "cpu", "commandstats")
	if err != nil {
		return snapshot{}, err
	}
	text, _ := v.(string)
	s := snapshot{At: time.Now(), Calls: map[string]int64{}, Usec: map[string]int64{}, Own: own}
	found := false
	for line := range strings.SplitSeq(text, "\r\n") {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "total_commands_processed":
			s.Commands, err = strconv.ParseInt(val, 10, 64)
			found = err == nil
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(val, 64)
			s.CPU += f
		case strings.HasPrefix(k, "cmdstat_"):
			calls, _, _ := strings.Cut(strings.TrimPrefix(val, "calls="), ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			s.Calls[strings.TrimPrefix(k, "cmdstat_")] = n
			if _, u, ok := strings.Cut(val, "usec="); ok {
				u, _, _ = strings.Cut(u, ",")
				us, _ := strconv.ParseInt(u, 10, 64)
				s.Usec[strings.TrimPrefix(k, "cmdstat_")] = us
			}
		}
	}
	if !found {
		return s, fmt.Errorf("INFO has no total_commands_processed: %.200q", text)
	}
	return s, nil
}

// counters is the difference between two snapshots, without the
// commands the benchmark itself sent in between (its INFO calls, and any
// polling).
type counters struct {
	Commands int64
	CPU      float64
	Calls    map[string]int64
	Usec     map[string]int64
	Elapsed  time.Duration
}

// diff returns b - a, minus the admin connection's own commands: those sent
// from a's INFO (included) to b's INFO (excluded) are the ones b's counters
// have and a's lack.
func diff(a, b snapshot) counters {
	c := counters{Commands: b.Commands - a.Commands, CPU: b.CPU - a.CPU, Calls: map[string]int64{}, Usec: map[string]int64{}, Elapsed: b.At.Sub(a.At)}
	for k, v := range b.Usec {
		if d := v - a.Usec[k]; d > 0 {
			c.Usec[k] = d
		}
	}
	for k, v := range b.Own {
		c.Commands -= v - a.Own[k]
	}
	for k, v := range b.Calls {
		if d := v - a.Calls[k] - (b.Own[k] - a.Own[k]); d != 0 {
			c.Calls[k] = d
		}
	}
	return c
}

// calibrate checks, on the idle server, that the subtraction of the
// benchmark's own commands is exact: consecutive snapshots, with and
// without other admin commands between them, must differ by nothing.
func (rc *respConn) calibrate() error {
	a, err := rc.snapshot()
	if err != nil {
		return err
	}
	b, err := rc.snapshot()
	if err != nil {
		return err
	}
	if _, err := rc.do("HLEN", "distbench:calibration"); err != nil {
		return err
	}
	c, err := rc.snapshot()
	if err != nil {
		return err
	}
	for _, d := range []counters{diff(a, b), diff(b, c)} {
		if d.Commands != 0 || len(d.Calls) != 0 {
			return fmt.Errorf("the server counts the benchmark's own commands unexpectedly (or is not idle): %d left after subtraction (%v)", d.Commands, d.Calls)
		}
	}
	return nil
}

// monitor follows MONITOR on its own connection and records, for every
// command the server executed, when, from which connection, and whether it
// ran inside a script (Redis shows those as "lua" and counts them in
// total_commands_processed like any other).
type monitor struct {
	rc   *respConn
	done chan struct{}

	mu     sync.Mutex
	events []monEvent
	srcs   []string       // connection address, by id
	srcID  map[string]int // address -> id
	names  map[string]string
	cmds   []string
	cmdID  map[string]int
	err    error
}

type monEvent struct {
	At  float64 // server time, unix seconds
	Src int32   // connection that sent the command (for script commands: the script's caller)
	Cmd int32
	Lua bool
}

func startMonitor(addr string) (*monitor, error) {
	rc, err := dialRESP(addr)
	if err != nil {
		return nil, err
	}
	v, err := rc.do("MONITOR")
	if err != nil || v != "OK" {
		rc.Close()
		return nil, fmt.Errorf("MONITOR: %v %v", v, err)
	}
	m := &monitor{rc: rc, done: make(chan struct{}), srcID: map[string]int{}, names: map[string]string{}, cmdID: map[string]int{}}
	go m.loop()
	return m, nil
}

func (m *monitor) loop() {
	defer close(m.done)
	caller := int32(-1)
	for {
		line, err := m.rc.r.ReadString('\n')
		if err != nil {
			m.mu.Lock()
			if !errors.Is(err, net.ErrClosed) {
				m.err = err
			}
			m.mu.Unlock()
			return
		}
		// +1700000000.123456 [0 127.0.0.1:5555] "cmd" "arg" ...
		line = strings.TrimSuffix(strings.TrimPrefix(line, "+"), "\r\n")
		ts, rest, ok := strings.Cut(line, " [")
		if !ok {
			continue
		}
		src, args, ok := strings.Cut(rest, "] ")
		if !ok {
			continue
		}
		_, src, _ = strings.Cut(src, " ") // drop the db number
		at, _ := strconv.ParseFloat(ts, 64)
		toks := monitorTokens(args, 8)
		if len(toks) == 0 {
			continue
		}
		cmd := strings.ToLower(toks[0])
		m.mu.Lock()
		ev := monEvent{At: at, Cmd: int32(m.intern(&m.cmds, m.cmdID, cmd))}
		if src == "lua" {
			// Scripts run atomically, so the commands of one follow the
			// line of the EVAL/EVALSHA that started it.
			ev.Src, ev.Lua = caller, true
		} else {
			ev.Src = int32(m.intern(&m.srcs, m.srcID, src))
			caller = ev.Src
			switch {
			case cmd == "client" && len(toks) >= 3 && strings.EqualFold(toks[1], "setname"):
				m.names[src] = toks[2]
			case cmd == "hello":
				for i := 1; i+1 < len(toks); i++ {
					if strings.EqualFold(toks[i], "setname") {
						m.names[src] = toks[i+1]
					}
				}
			}
		}
		m.events = append(m.events, ev)
		m.mu.Unlock()
	}
}

func (m *monitor) intern(list *[]string, ids map[string]int, s string) int {
	if id, ok := ids[s]; ok {
		return id
	}
	ids[s] = len(*list)
	*list = append(*list, s)
	return ids[s]
}

// monitorTokens returns up to limit leading quoted tokens of a MONITOR line
// ("cmd" "arg" ...; quotes and backslashes inside are escaped).
func monitorTokens(s string, limit int) []string {
	var out []string
	for len(out) < limit {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		s = s[i+1:]
		var b strings.Builder
		j := 0
		for ; j < len(s); j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				b.WriteByte(s[j])
				continue
			}
			if s[j] == '"' {
				break
			}
			b.WriteByte(s[j])
		}
		out = append(out, b.String())
		if j >= len(s) {
			break
		}
		s = s[j+1:]
	}
	return out
}

// Stop ends MONITOR and waits for the reader.
func (m *monitor) Stop() error {
	m.rc.Close()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// learnNames adds connection names from CLIENT LIST output (connections
// whose handshake MONITOR did not see).
func (m *monitor) learnNames(clientList string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for line := range strings.SplitSeq(clientList, "\n") {
		var addr, name string
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "addr="); ok {
				addr = v
			} else if v, ok := strings.CutPrefix(f, "name="); ok {
				name = v
			}
		}
		if addr != "" && name != "" {
			if _, known := m.names[addr]; !known {
				m.names[addr] = name
			}
		}
	}
}

// monCount is what MONITOR saw in a time window, by connection name (the
// group function maps a name to a group such as "master" or "worker";
// connections without a name are "unnamed").
type monCount struct {
	TopLevel int64 // commands the clients sent (a script is one)
	Lua      int64 // commands run inside scripts
	ByGroup  map[string]*groupCount
	// Connections counts the distinct connections seen per group.
	Connections map[string]int
}

type groupCount struct {
	TopLevel int64            `json:"client_sent"`
	Lua      int64            `json:"in_scripts"`
	Commands map[string]int64 `json:"client_sent_by_command"`
}

// count tallies the events in [from, to] (server clock, unix seconds),
// skipping the connections in exclude (the benchmark's own).
func (m *monitor) count(from, to float64, exclude map[string]bool, group func(name string) string) monCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := monCount{ByGroup: map[string]*groupCount{}, Connections: map[string]int{}}
	seen := map[int32]bool{}
	for _, ev := range m.events {
		if ev.At < from || ev.At > to {
			continue
		}
		addr := "?"
		if ev.Src >= 0 {
			addr = m.srcs[ev.Src]
		}
		if exclude[addr] {
			continue
		}
		name, ok := m.names[addr]
		g := "unnamed"
		if ok {
			g = group(name)
		}
		gc := c.ByGroup[g]
		if gc == nil {
			gc = &groupCount{Commands: map[string]int64{}}
			c.ByGroup[g] = gc
		}
		if !seen[ev.Src] {
			seen[ev.Src] = true
			c.Connections[g]++
		}
		if ev.Lua {
			c.Lua++
			gc.Lua++
			continue
		}
		c.TopLevel++
		gc.TopLevel++
		gc.Commands[m.cmds[ev.Cmd]]++
	}
	return c
}

// syncBuffer is a bytes buffer safe for concurrent writes, keeping at most
// its last 64 KiB.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	if len(s.b) > 64<<10 {
		s.b = append([]byte(nil), s.b[len(s.b)-32<<10:]...)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
