package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a server the harness started.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// startProcess starts argv with its output in logPath, pinned to the CPUs
// in cpus ("1", or "" for no pinning) with taskset. taskset execs the
// command, so the process id is the server's.
func startProcess(name, logPath, cpus string, env []string, argv ...string) (*process, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group: a Ctrl-C to make reaches the harness, which
	// stops the servers in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: f}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the server's process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends sig, waits up to 10 seconds, then kills the process group.
func (p *process) stop(sig syscall.Signal) error {
	defer p.log.Close()
	if done, _ := p.exited(); done {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within 10s after %v; killed", p.name, sig)
	}
}

// waitTLS waits until addr completes a TLS handshake for Hostname that t
// trusts, or the process exits, or 30 seconds pass.
func waitTLS(ctx context.Context, p *process, t *Target) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited: %w (see %s)", p.name, err, p.log.Name())
		}
		tc, raw, err := t.dial(ctx, t.tlsConfig([]string{"http/1.1"}, nil))
		if err == nil {
			_ = tc.Close()
			_ = raw.Close()
			return nil
		}
		last = err
		sleep(ctx, 50*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s did not serve TLS on %s within 30s: %w (see %s)", p.name, t.Addr, last, p.log.Name())
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}
