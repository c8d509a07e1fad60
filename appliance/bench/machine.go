package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs       int
	CPUModel   string
	Kernel     string
	MemTotal   string
	OS         string
	LoadBefore string
	LoadAfter  string
}

// Summary is a one-line description.
func (m Machine) Summary() string {
	return fmt.Sprintf("%d CPUs (%s), %s RAM, %s, Linux %s, load average %s", m.CPUs, m.CPUModel, m.MemTotal, m.OS, m.Kernel, m.LoadBefore)
}

func describeMachine() Machine {
	m := Machine{CPUs: onlineCPUs(), Kernel: readTrim("/proc/sys/kernel/osrelease"), LoadBefore: loadAvg(), OS: osName()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.Fields(rest + " 0")[0], 10, 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
				}
			}
		}
		f.Close()
	}
	return m
}

// onlineCPUs counts the machine's CPUs (runtime.NumCPU counts only those
// the pinned harness may use).
func onlineCPUs() int {
	s := readTrim("/sys/devices/system/cpu/online")
	n := 0
	for _, part := range strings.Split(s, ",") {
		var a, b int
		if k, _ := fmt.Sscanf(part, "%d-%d", &a, &b); k == 2 {
			n += b - a + 1
		} else if k, _ := fmt.Sscanf(part, "%d", &a); k == 1 {
			n++
		}
	}
	if n == 0 {
		n = runtime.NumCPU()
	}
	return n
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// Version is a peer's or tool's version.
type Version struct{ Name, Version string }

// versions asks every tool for its version.
func (e *Env) versions(ctx context.Context) []Version {
	run := func(name string, args ...string) string {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "unavailable (" + err.Error() + ")"
		}
		if len(strings.TrimSpace(string(out))) == 0 { // nginx -V writes to stderr
			return strings.TrimSpace(stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	firstLine := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
	nginx := run(NginxPath(), "-V")
	nginxVersion := strings.TrimPrefix(firstLine(nginx), "nginx version: ")
	if m := regexp.MustCompile(`built with (OpenSSL [^ \n]+)`).FindStringSubmatch(nginx); m != nil {
		nginxVersion += ", built with " + m[1]
	}
	caddy := "unavailable"
	if m := regexp.MustCompile(`(?m)^\s*mod\s+github.com/caddyserver/caddy/v2\s+(\S+)`).FindStringSubmatch(run("go", "version", "-m", e.caddyPath())); m != nil {
		caddy = m[1] + " (go install from the Go module proxy)"
	}
	vs := []Version{
		{"nginx", nginxVersion},
		{"Caddy", caddy},
		{"Go (harness, bare Go proxy, executor, sallyportd)", runtime.Version()},
		{"sallyportd", firstLine(run(filepath.Join(e.Cfg.BinDir, "sallyportd"), "version"))},
		{"OpenSSL (system)", firstLine(run("openssl", "version"))},
		{"terraform", firstLine(run("terraform", "version"))},
	}
	return vs
}
