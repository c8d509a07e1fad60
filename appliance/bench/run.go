package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/devidp"
)

// Config is how the harness runs.
type Config struct {
	// BinDir holds caddy, sallyportd and terraform-provider-sallyport.
	BinDir string
	// Repo is the repository root (for the Go benchmarks and terraform).
	Repo string
	// Out is the Markdown file the results go into.
	Out string
	// Rounds is how often every peer is run; rounds alternate the peers'
	// order.
	Rounds int
	// Window is each load row's warm-up and measured time; TransferTime
	// the measured time of a transfer row (at least two transfers).
	Window       Window
	TransferTime time.Duration
	// H1Conns, H2Conns × H2Streams and HSParallel are the concurrency of
	// the keep-alive and handshake rows; IdleConns the connections of the
	// idle row.
	H1Conns, H2Conns, H2Streams, HSParallel, IdleConns int
	// ServerCPUs and LoadCPUs pin the servers and the harness ("" for
	// none).
	ServerCPUs, LoadCPUs string
	// Peers to run (AllPeers by default).
	Peers []string
	// Terraform and GoBench enable those rows.
	Terraform, GoBench bool
	// TerraformObjects is how many connections (and as many bindings) the
	// apply row creates.
	TerraformObjects int
	// Keep keeps the work directory.
	Keep bool
	// Log receives progress.
	Log io.Writer
}

// DefaultConfig returns the settings of `make bench`.
func DefaultConfig() Config {
	return Config{
		BinDir: "bin/bench", Repo: ".", Out: "docs/benchmarks.md", Rounds: 2,
		Window: Window{Warmup: time.Second, Measure: 4 * time.Second}, TransferTime: 3 * time.Second,
		H1Conns: 32, H2Conns: 4, H2Streams: 8, HSParallel: 16, IdleConns: 10000,
		ServerCPUs: "1", LoadCPUs: "0", Peers: AllPeers,
		Terraform: true, GoBench: true, TerraformObjects: 500, Log: os.Stderr,
	}
}

// Env is the harness's shared state: TLS material, the executor, the
// OpenID provider and the results.
type Env struct {
	Cfg  Config
	Work string
	M    *Material
	// ExecAddr is the executor's address.
	ExecAddr string
	// IDP and Token are the OpenID provider and the load generator's
	// token.
	IDP   *devidp.IDP
	Token string
	R     *Results

	exec *process
	self string
}

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.Cfg.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// target is a peer's address as the load generator sees it.
func (e *Env) target(addr, prefix string) *Target {
	return &Target{Addr: addr, Roots: e.M.Pool, Token: e.Token, Prefix: prefix}
}

// ErrPeerFailed is returned by Run when a peer could not be run; the
// report is written all the same.
var ErrPeerFailed = errors.New("a peer could not be run")

// Run runs every round, writes the report and returns ErrPeerFailed
// (wrapped) when some peer could not be run.
func Run(ctx context.Context, cfg Config) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	work, err := os.MkdirTemp("", "sallyport-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e := &Env{Cfg: cfg, Work: work, self: self, R: newResults(cfg)}
	defer func() {
		if cfg.Keep {
			e.logf("work directory kept: %s", work)
			return
		}
		_ = os.RemoveAll(work)
	}()
	e.R.Machine = describeMachine()
	e.R.Versions = e.versions(ctx)
	e.logf("machine: %s", e.R.Machine.Summary())

	if e.M, err = NewMaterial(filepath.Join(work, "pki")); err != nil {
		return err
	}
	var tok string
	if e.IDP, tok, err = StartIDP(ctx, 4*time.Hour); err != nil {
		return err
	}
	defer e.IDP.Close()
	e.Token = tok
	if err := e.startExecutor(ctx); err != nil {
		return err
	}
	defer func() { _ = e.exec.stop(syscall.SIGTERM) }()

	started := time.Now()
	for round := 1; round <= cfg.Rounds; round++ {
		order := slices.Clone(cfg.Peers)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, key := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e.logf("round %d/%d: %s", round, cfg.Rounds, key)
			if err := e.session(ctx, key, round-1); err != nil {
				e.logf("round %d: %s could not be run: %v", round, key, err)
				e.R.PeerErrors = append(e.R.PeerErrors, fmt.Sprintf("round %d, %s: %v", round, key, err))
			}
		}
	}
	if cfg.Terraform {
		e.logf("terraform apply of %d connections and %d bindings", cfg.TerraformObjects, cfg.TerraformObjects)
		e.R.Terraform = e.terraformApply(ctx)
		if e.R.Terraform.Err != "" {
			e.logf("terraform apply: %s", e.R.Terraform.Err)
		}
	}
	if cfg.GoBench {
		e.logf("go test -bench Verify ./appliance/identity/")
		e.R.GoBench, e.R.GoBenchErr = e.goBench(ctx)
	}
	e.R.Duration = time.Since(started)
	e.R.Machine.LoadAfter = loadAvg()
	if err := WriteReport(cfg.Out, e.R); err != nil {
		return err
	}
	e.logf("wrote %s", cfg.Out)
	if len(e.R.PeerErrors) > 0 {
		return fmt.Errorf("%w: %v", ErrPeerFailed, e.R.PeerErrors)
	}
	return nil
}

// startExecutor starts the executor (this binary's "executor" command) on
// the servers' CPU.
func (e *Env) startExecutor(ctx context.Context) error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	p, err := startProcess("executor", filepath.Join(e.Work, "executor.log"), e.Cfg.ServerCPUs, nil,
		e.self, "executor", "--addr", addr, "--cert", e.M.ExecutorCertFile, "--key", e.M.ExecutorKeyFile)
	if err != nil {
		return err
	}
	// The executor's certificate is for ExecutorName, not Hostname.
	t := &Target{Addr: addr, Roots: e.M.Pool}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cfg := t.tlsConfig(nil, nil)
		cfg.ServerName = ExecutorName
		tc, raw, err := t.dial(ctx, cfg)
		if err == nil {
			_ = tc.Close()
			_ = raw.Close()
			break
		}
		if done, perr := p.exited(); done || time.Now().After(deadline) {
			_ = p.stop(syscall.SIGKILL)
			return fmt.Errorf("the executor did not start: %w (exit: %w)", err, perr)
		}
		sleep(ctx, 50*time.Millisecond)
	}
	e.exec, e.ExecAddr = p, addr
	return nil
}

// rssSampler tracks the largest resident set of a process tree, sampled
// every 50ms, for kernels that do not let VmHWM be reset.
type rssSampler struct {
	max  atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	s.max.Store(treeRSS(pid))
	s.wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if v := treeRSS(pid); v > s.max.Load() {
					s.max.Store(v)
				}
			}
		}
	})
	return s
}

// peak ends the sampling and returns the peak: VmHWM when it could be
// reset at the start, else the largest sample.
func (s *rssSampler) peak(pid int, hwmReset bool) int64 {
	close(s.stop)
	s.wg.Wait()
	if hwmReset {
		return max(treeHWM(pid), s.max.Load())
	}
	return s.max.Load()
}

// keepAliveRows are the small-response rows: name, protocol, path.
var keepAliveRows = []struct{ name, proto, path string }{
	{"h1-64", "h1", PathJSON64},
	{"h1-4k", "h1", PathJSON4K},
	{"h2-64", "h2", PathJSON64},
	{"h2-4k", "h2", PathJSON4K},
}

// keepAlive runs one keep-alive row and records it under row.
func (e *Env) keepAlive(ctx context.Context, row string, round int, t *Target, name, proto, path string, pid int, during func(context.Context)) Sample {
	var s Sample
	if proto == "h1" {
		s = KeepAliveH1(ctx, t, path, e.Cfg.H1Conns, e.Cfg.Window, pid, during)
	} else {
		s = KeepAliveH2(ctx, t, path, e.Cfg.H2Conns, e.Cfg.H2Streams, e.Cfg.Window, pid, during)
	}
	e.record(row, name, round, s)
	return s
}

// record stores a load row's figures.
func (e *Env) record(row, name string, round int, s Sample) {
	r := e.R
	r.set(row, name+".rps", round, s.RPS())
	r.set(row, name+".p50", round, float64(s.Percentile(0.50)))
	r.set(row, name+".p99", round, float64(s.Percentile(0.99)))
	r.set(row, name+".cpu", round, float64(s.CPUPerRequest()))
	r.set(row, name+".loadcpu", round, s.LoadCPU.Seconds()/s.Elapsed.Seconds())
	r.set(row, name+".errors", round, float64(s.Errors))
	r.set(row, name+".requests", round, float64(s.Requests))
	if s.Errors > 0 {
		r.note(row, fmt.Sprintf("%s, round %d: %d failed requests (first: %s)", name, round+1, s.Errors, s.FirstError))
	}
	e.logf("  %-22s %-10s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  cpu %6.1f us/req  load cpu %3.0f%%  errors %d",
		row, name, s.RPS(), ms(s.Percentile(0.5)), ms(s.Percentile(0.99)), us(s.CPUPerRequest()), 100*s.LoadCPU.Seconds()/s.Elapsed.Seconds(), s.Errors)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// rowOf is the report row of a peer.
func rowOf(key string) string {
	switch key {
	case PeerDirect:
		return RowDirect
	case PeerNginx:
		return RowNginx
	case PeerCaddy:
		return RowCaddy
	case PeerGo:
		return RowGo
	case PeerSallyport:
		return RowPlain
	}
	return key
}

// session starts a peer, measures every row, and stops it.
func (e *Env) session(ctx context.Context, key string, round int) (err error) {
	rn, err := e.startPeer(ctx, key, round)
	if err != nil {
		return err
	}
	defer func() {
		if serr := rn.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	row, pid, r := rowOf(key), rn.pid, e.R
	t := e.target(rn.addr, "")

	sleep(ctx, time.Second)
	r.set(row, "idle.rss", round, float64(treeRSS(pid)))

	// Keep-alive rows, with the peak resident set across them.
	hwm := resetHWM(pid)
	smp := sampleRSS(pid)
	for _, kr := range keepAliveRows {
		e.keepAlive(ctx, row, round, t, kr.name, kr.proto, kr.path, pid, nil)
	}
	r.set(row, "load.peak", round, float64(smp.peak(pid, hwm)))

	if rn.sp != nil {
		e.sallyportRows(ctx, rn, round)
	}

	for _, resume := range []bool{false, true} {
		name := map[bool]string{false: "hs-full", true: "hs-resumed"}[resume]
		s, resumed := Handshakes(ctx, t, PathJSON64, e.Cfg.HSParallel, resume, e.Cfg.Window, pid)
		e.record(row, name, round, s)
		if resume {
			r.set(row, name+".resumedfrac", round, resumed)
		}
	}

	for _, upload := range []bool{false, true} {
		name := map[bool]string{false: "down", true: "up"}[upload]
		hwm := resetHWM(pid)
		before := treeRSS(pid)
		smp := sampleRSS(pid)
		tr := Transfers(ctx, t, upload, e.Cfg.TransferTime)
		peak := smp.peak(pid, hwm)
		if tr.Err != nil {
			r.note(row, fmt.Sprintf("%s, round %d: %v", name, round+1, tr.Err))
			e.logf("  %-22s %-10s failed: %v", row, name, tr.Err)
			continue
		}
		r.set(row, name+".mbps", round, tr.MBps)
		r.set(row, name+".growth", round, float64(max(peak-before, 0)))
		r.set(row, name+".peak", round, float64(peak))
		e.logf("  %-22s %-10s %9.0f MB/s  RSS %s -> peak %s (%d transfers)", row, name, tr.MBps, mib(before), mib(peak), tr.Count)
	}

	before := treeRSS(pid)
	conns, cerr := IdleConns(ctx, t, e.Cfg.IdleConns, 64)
	sleep(ctx, time.Second)
	after := treeRSS(pid)
	CloseAll(conns)
	r.set(row, "idleconns.n", round, float64(len(conns)))
	r.set(row, "idleconns.rss", round, float64(after))
	if len(conns) > 0 {
		r.set(row, "idleconns.per", round, float64(after-before)/float64(len(conns)))
	}
	if cerr != nil {
		r.note(row, fmt.Sprintf("idle connections, round %d: stopped at %d: %v", round+1, len(conns), cerr))
	}
	e.logf("  %-22s %-10s %d connections, RSS %s -> %s", row, "idle-conns", len(conns), mib(before), mib(after))
	sleep(ctx, time.Second) // let the peer reap the connections before it stops
	return nil
}

// sallyportRows are Sallyport's own rows: the masking and recording
// variants of the keep-alive rows, and keep-alive load while the
// configuration changes.
func (e *Env) sallyportRows(ctx context.Context, rn *running, round int) {
	sp, r := rn.sp, e.R
	variants := []struct {
		row, prefix string
		err         error
	}{{RowMasking, PrefixMasking, sp.masking}, {RowRecording, PrefixRecording, sp.recording}}
	for _, v := range variants {
		if v.err != nil {
			r.note(v.row, fmt.Sprintf("round %d: %v", round+1, v.err))
			r.NA[v.row] = "n/a (see the notes)"
			if errors.Is(v.err, errNotImplemented) {
				r.NA[v.row] = "n/a (not implemented)"
			}
			e.logf("  %-22s n/a: %v", v.row, v.err)
			continue
		}
		for _, kr := range keepAliveRows {
			e.keepAlive(ctx, v.row, round, e.target(rn.addr, v.prefix), kr.name, kr.proto, kr.path, rn.pid, nil)
		}
	}
	for _, proto := range []string{"h1", "h2"} {
		var applied atomic.Int64
		var mu sync.Mutex
		var churnErr string
		during := func(ctx context.Context) {
			sp.Churn(ctx, 100*time.Millisecond, &applied, func(err error) {
				mu.Lock()
				defer mu.Unlock()
				if churnErr == "" {
					churnErr = err.Error()
				}
			})
		}
		name := "churn-" + proto
		s := e.keepAlive(ctx, RowPlain, round, e.target(rn.addr, ""), name, proto, PathJSON64, rn.pid, during)
		r.set(RowPlain, name+".applied", round, float64(applied.Load()))
		r.set(RowPlain, name+".rate", round, float64(applied.Load())/s.Elapsed.Seconds())
		if churnErr != "" {
			r.note(RowPlain, fmt.Sprintf("%s, round %d: a configuration change failed: %s", name, round+1, churnErr))
		}
		e.logf("  %-22s %-10s %d changes applied (%.1f/s)", RowPlain, name, applied.Load(), float64(applied.Load())/s.Elapsed.Seconds())
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Results are the figures of every round.
type Results struct {
	Cfg Config
	// values[row][metric][round]; NaN where a round has no figure.
	values map[string]map[string][]float64
	// Notes explain failures and n/a rows.
	Notes map[string][]string
	// NA says why a row has no figures (a feature not implemented).
	NA map[string]string
	// PeerErrors are the peers that could not be run.
	PeerErrors []string
	Machine    Machine
	Versions   []Version
	Terraform  TerraformResult
	GoBench    []GoBenchResult
	GoBenchErr error
	Started    time.Time
	Duration   time.Duration
}

func newResults(cfg Config) *Results {
	return &Results{
		Cfg: cfg, values: map[string]map[string][]float64{}, Notes: map[string][]string{},
		NA: map[string]string{}, Started: time.Now(),
	}
}

func (r *Results) set(row, metric string, round int, v float64) {
	m := r.values[row]
	if m == nil {
		m = map[string][]float64{}
		r.values[row] = m
	}
	vs := m[metric]
	for len(vs) < r.Cfg.Rounds {
		vs = append(vs, math.NaN())
	}
	vs[round] = v
	m[metric] = vs
}

func (r *Results) note(row, s string) { r.Notes[row] = append(r.Notes[row], s) }

// Median is a row's median figure over the rounds.
func (r *Results) Median(row, metric string) (float64, bool) {
	var vs []float64
	for _, v := range r.values[row][metric] {
		if !math.IsNaN(v) {
			vs = append(vs, v)
		}
	}
	return median(vs)
}

// Ratio is the median over rounds of row's figure divided by base's figure
// of the same round.
func (r *Results) Ratio(row, base, metric string) (float64, bool) {
	a, b := r.values[row][metric], r.values[base][metric]
	var vs []float64
	for i := range min(len(a), len(b)) {
		if !math.IsNaN(a[i]) && !math.IsNaN(b[i]) && b[i] != 0 {
			vs = append(vs, a[i]/b[i])
		}
	}
	return median(vs)
}

// Sum is a row's figure summed over the rounds.
func (r *Results) Sum(row, metric string) (float64, bool) {
	var sum float64
	ok := false
	for _, v := range r.values[row][metric] {
		if !math.IsNaN(v) {
			sum += v
			ok = true
		}
	}
	return sum, ok
}

func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}
