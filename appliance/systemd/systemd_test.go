package systemd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/systemd"
)

// listen opens a unixgram socket like the one systemd passes in NOTIFY_SOCKET
// and points NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

// receive reads one datagram or fails after timeout.
func receive(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %s: %v", timeout, err)
	}
	return string(buf[:n])
}

// expectSilence fails if a datagram arrives within d.
func expectSilence(t *testing.T, conn *net.UnixConn, d time.Duration) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for name, f := range map[string]func() (bool, error){
		"Notify":   func() (bool, error) { return systemd.Notify("STATUS=x") },
		"Ready":    systemd.Ready,
		"Stopping": systemd.Stopping,
	} {
		sent, err := f()
		if sent || err != nil {
			t.Errorf("%s without NOTIFY_SOCKET = %v, %v; want false, nil", name, sent, err)
		}
	}
}

func TestReadyAndStoppingOnPathSocket(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify.sock"))

	sent, err := systemd.Ready()
	if !sent || err != nil {
		t.Fatalf("Ready = %v, %v; want true, nil", sent, err)
	}
	if got := receive(t, conn, 5*time.Second); got != "READY=1" {
		t.Errorf("Ready sent %q, want READY=1", got)
	}

	sent, err = systemd.Stopping()
	if !sent || err != nil {
		t.Fatalf("Stopping = %v, %v; want true, nil", sent, err)
	}
	if got := receive(t, conn, 5*time.Second); got != "STOPPING=1" {
		t.Errorf("Stopping sent %q, want STOPPING=1", got)
	}

	state := "STATUS=serving\nMAINPID=" + strconv.Itoa(os.Getpid())
	if sent, err := systemd.Notify(state); !sent || err != nil {
		t.Fatalf("Notify = %v, %v; want true, nil", sent, err)
	}
	if got := receive(t, conn, 5*time.Second); got != state {
		t.Errorf("Notify sent %q, want %q", got, state)
	}
}

func TestNotifyOnAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@sallyport-systemd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn := listen(t, name)
	if sent, err := systemd.Ready(); !sent || err != nil {
		t.Fatalf("Ready = %v, %v; want true, nil", sent, err)
	}
	if got := receive(t, conn, 5*time.Second); got != "READY=1" {
		t.Errorf("sent %q, want READY=1", got)
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing.sock"))
	if sent, err := systemd.Ready(); sent || err == nil {
		t.Errorf("Ready to a missing socket = %v, %v; want false and an error", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if sent, err := systemd.Ready(); sent || err == nil {
		t.Errorf("Ready to a vsock address = %v, %v; want false and an error", sent, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{usec: "", want: 0},
		{usec: "30000000", want: 30 * time.Second},
		{usec: "30000000", pid: self, want: 30 * time.Second},
		{usec: "30000000", pid: strconv.Itoa(os.Getpid() + 1), want: 0},
		{usec: "abc", wantErr: true},
		{usec: "0", wantErr: true},
		{usec: "-5", wantErr: true},
		{usec: "1000", pid: "x", wantErr: true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := systemd.WatchdogInterval()
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v, %v; want %v, error %v",
				tc.usec, tc.pid, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestWatchdogPingsWhileHealthy(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify.sock"))
	t.Setenv("WATCHDOG_USEC", "40000") // 40ms: pings every 20ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	var unhealthy atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- systemd.Watchdog(ctx, func() error {
			if unhealthy.Load() {
				return errors.New("store unavailable")
			}
			return nil
		})
	}()

	start := time.Now()
	for i := 0; i < 3; i++ {
		if got := receive(t, conn, 5*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q, want WATCHDOG=1", i, got)
		}
	}
	// The first ping is immediate, the next two come 20ms apart.
	if elapsed := time.Since(start); elapsed < 30*time.Millisecond {
		t.Errorf("3 pings took %v, want about 40ms (half the interval apart)", elapsed)
	}

	unhealthy.Store(true)
	// Drain a ping that may have been sent before the switch.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, _ = conn.Read(make([]byte, 64))
	expectSilence(t, conn, 150*time.Millisecond)

	unhealthy.Store(false)
	if got := receive(t, conn, 5*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("ping after recovery = %q, want WATCHDOG=1", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watchdog returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watchdog did not return after its context was cancelled")
	}
}

func TestWatchdogDisabledReturnsAtOnce(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify.sock"))
	for name, env := range map[string][2]string{
		"no WATCHDOG_USEC":    {"", ""},
		"another process PID": {"40000", strconv.Itoa(os.Getpid() + 1)},
	} {
		t.Setenv("WATCHDOG_USEC", env[0])
		t.Setenv("WATCHDOG_PID", env[1])
		done := make(chan error, 1)
		go func() { done <- systemd.Watchdog(context.Background(), nil) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Watchdog = %v, want nil", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Watchdog did not return", name)
		}
	}
	expectSilence(t, conn, 50*time.Millisecond)
}

func TestWatchdogMalformedEnvironment(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "soon")
	t.Setenv("WATCHDOG_PID", "")
	if err := systemd.Watchdog(context.Background(), nil); err == nil {
		t.Error("Watchdog with WATCHDOG_USEC=soon returned nil, want an error")
	}
}
