package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeNotifiesSystemd: under a Type=notify unit, sallyportd says
// READY=1 only once its admin API listens, feeds the watchdog while it is
// healthy, and says STOPPING=1 on SIGTERM.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %q", want)
				}
				if strings.Contains(m, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q on the notify socket", want)
			}
		}
	}

	p := startProc(t, childEnv("NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000"), "serve", "--data-dir", t.TempDir(), "--admin-addr", "127.0.0.1:0")
	next("READY=1")
	// Once READY, the admin API answers.
	addr := p.waitListening()
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
		t.Errorf("READY=1 sent but the admin API does not accept: %v", err)
	} else {
		c.Close()
	}
	next("WATCHDOG=1")
	next("WATCHDOG=1")
	p.stop()
	next("STOPPING=1")
}
