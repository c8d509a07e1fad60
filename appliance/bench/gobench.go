package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// GoBenchResult is one Go benchmark's figures (medians of its runs).
type GoBenchResult struct {
	Name        string
	NsPerOp     float64
	BytesPerOp  float64
	AllocsPerOp float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

// goBench runs the identity package's token verification benchmarks on
// the servers' CPU.
func (e *Env) goBench(ctx context.Context) ([]GoBenchResult, error) {
	argv := []string{"go", "test", "-run", "^$", "-bench", "Verify", "-benchmem", "-count", "3", "./appliance/identity/"}
	if e.Cfg.ServerCPUs != "" {
		argv = append([]string{"taskset", "-c", e.Cfg.ServerCPUs}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = e.Cfg.Repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	runs := map[string][][3]float64{}
	var order []string
	for _, line := range strings.Split(string(out), "\n") {
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var v [3]float64
		for i := range 3 {
			v[i], _ = strconv.ParseFloat(m[i+2], 64)
		}
		if _, seen := runs[m[1]]; !seen {
			order = append(order, m[1])
		}
		runs[m[1]] = append(runs[m[1]], v)
	}
	var res []GoBenchResult
	for _, name := range order {
		r := GoBenchResult{Name: name}
		for i, dst := range []*float64{&r.NsPerOp, &r.BytesPerOp, &r.AllocsPerOp} {
			var vs []float64
			for _, v := range runs[name] {
				vs = append(vs, v[i])
			}
			slices.Sort(vs)
			*dst, _ = median(vs)
		}
		res = append(res, r)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("no benchmark results in: %s", out)
	}
	return res, nil
}
