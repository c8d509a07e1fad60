// Package systemd is a small, dependency-free client of systemd's service
// notification protocol (sd_notify(3)) and of its service watchdog.
//
// sallyportd runs as a Type=notify unit: it reports readiness with Ready once
// its admin API listens, reports shutdown with Stopping, and keeps
// WatchdogSec= satisfied with Watchdog for as long as a health check passes.
// Outside systemd (no $NOTIFY_SOCKET) every call is a no-op.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Well-known notification states.
const (
	// StateReady tells the service manager that start-up is finished.
	StateReady = "READY=1"
	// StateStopping tells the service manager that the service is shutting
	// down.
	StateStopping = "STOPPING=1"
	// StateWatchdog is the watchdog keep-alive ping.
	StateWatchdog = "WATCHDOG=1"
)

// Notify sends state (newline-separated VAR=VALUE assignments, see
// sd_notify(3)) to the socket named by $NOTIFY_SOCKET. A name starting with
// "@" is a Linux abstract socket. It reports false and no error when
// $NOTIFY_SOCKET is unset, that is when the process does not run under a
// service manager expecting notifications, and true once the datagram has
// been sent.
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		// systemd 254 and later may also pass "vsock:CID:PORT", which
		// only matters inside VMs managed by a host's systemd.
		return false, fmt.Errorf("systemd: unsupported NOTIFY_SOCKET %q", name)
	}
	// The Go runtime turns a leading "@" into the NUL byte that marks an
	// abstract socket address.
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return false, fmt.Errorf("systemd: notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("systemd: notify: %w", err)
	}
	return true, nil
}

// Ready notifies the service manager that start-up has finished (READY=1).
// With Type=notify, units ordered after sallyportd.service start only then.
func Ready() (bool, error) { return Notify(StateReady) }

// Stopping notifies the service manager that the service is beginning its
// shutdown (STOPPING=1).
func Stopping() (bool, error) { return Notify(StateStopping) }

// WatchdogInterval returns the watchdog timeout the service manager expects
// keep-alive pings within ($WATCHDOG_USEC), or 0 when the watchdog is not
// enabled for this process: $WATCHDOG_USEC is unset, or $WATCHDOG_PID names
// another process.
func WatchdogInterval() (time.Duration, error) {
	usecStr := os.Getenv("WATCHDOG_USEC")
	if usecStr == "" {
		return 0, nil
	}
	if pidStr := os.Getenv("WATCHDOG_PID"); pidStr != "" {
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			return 0, fmt.Errorf("systemd: WATCHDOG_PID %q: %w", pidStr, err)
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	usec, err := strconv.ParseUint(usecStr, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("systemd: WATCHDOG_USEC %q: %w", usecStr, err)
	}
	if usec == 0 {
		return 0, errors.New("systemd: WATCHDOG_USEC is 0")
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// Watchdog pings the service manager's watchdog (WATCHDOG=1) every half
// watchdog interval for as long as ctx is not done, but only while healthy
// returns nil: when the process stops being healthy the pings stop, and
// systemd restarts the service once WatchdogSec= passes without one. A nil
// healthy counts as always healthy. The first check and ping happen at once.
//
// Watchdog returns nil at once when the watchdog is not enabled for this
// process (see WatchdogInterval), an error when the environment is malformed
// or a ping cannot be sent, and nil when ctx is done. Run it in its own
// goroutine.
func Watchdog(ctx context.Context, healthy func() error) error {
	interval, err := WatchdogInterval()
	if err != nil || interval == 0 {
		return err
	}
	ticker := time.NewTicker(interval / 2)
	defer ticker.Stop()
	for {
		if healthy == nil || healthy() == nil {
			if _, err := Notify(StateWatchdog); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
