package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// procTree returns pid and all its descendants.
func procTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentPID(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/<pid>/stat after the command name.
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(string(b[i+1:])), true
}

func parentPID(pid int) (int, bool) {
	f, ok := statFields(pid)
	if !ok || len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// statusKB reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM).
func statusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				n, _ := strconv.ParseInt(fs[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// treeRSS is the resident set of pid and its descendants, in bytes.
func treeRSS(pid int) int64 {
	var sum int64
	for _, p := range procTree(pid) {
		sum += statusKB(p, "VmRSS")
	}
	return sum << 10
}

// treeHWM is the sum of the peak resident sets of pid and its descendants
// since they started or since resetHWM, in bytes.
func treeHWM(pid int) int64 {
	var sum int64
	for _, p := range procTree(pid) {
		sum += statusKB(p, "VmHWM")
	}
	return sum << 10
}

// resetHWM resets the peak resident set of pid and its descendants to
// their current one (Linux >= 4.0, root or the owner). It reports whether
// the kernel allowed it.
func resetHWM(pid int) bool {
	ok := true
	for _, p := range procTree(pid) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

// treeCPU is the CPU time (user and system) pid and its descendants have
// used.
func treeCPU(pid int) time.Duration {
	var ticks int64
	for _, p := range procTree(pid) {
		f, ok := statFields(p)
		if !ok || len(f) < 13 {
			continue
		}
		// utime and stime are fields 14 and 15 of stat; f starts at 3.
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// selfCPU is the CPU time the harness process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dirSizes maps every regular file under dir to its size.
func dirSizes(dir string) map[string]int64 {
	out := map[string]int64{}
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			out[path] = info.Size()
		}
		return nil
	})
	return out
}
