// Command sallyport-bench is the harness of `make bench`: it runs
// Sallyport, nginx, Caddy and a bare Go reverse proxy side by side in front
// of the same TLS executor, loads them, and writes docs/benchmarks.md. See
// package bench and docs/benchmarks.md.
//
// Usage:
//
//	sallyport-bench run [flags]          run every peer and write the report
//	sallyport-bench executor --addr ...  the executor (started by run)
//	sallyport-bench goproxy --addr ...   the bare Go peer (started by run)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/sallyport/terraform-provider-sallyport/appliance/bench"
)

// pinnedEnv marks a harness that has already re-executed itself under
// taskset.
const pinnedEnv = "SALLYPORT_BENCH_PINNED"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sallyport-bench run|executor|goproxy [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctx, os.Args[2:])
	case "executor", "goproxy":
		err = serve(ctx, os.Args[1], os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (run, executor or goproxy)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sallyport-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&cfg.BinDir, "bin", cfg.BinDir, "directory holding caddy, sallyportd and provider/terraform-provider-sallyport")
	fs.StringVar(&cfg.Repo, "repo", cfg.Repo, "repository root (for the Go benchmarks)")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "Markdown report to write (the generated section is replaced)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds (every peer runs once per round)")
	fs.DurationVar(&cfg.Window.Warmup, "warmup", cfg.Window.Warmup, "warm-up of each load row")
	fs.DurationVar(&cfg.Window.Measure, "measure", cfg.Window.Measure, "measured time of each load row")
	fs.DurationVar(&cfg.TransferTime, "transfer-time", cfg.TransferTime, "measured time of each transfer row (at least two transfers)")
	fs.IntVar(&cfg.H1Conns, "h1-conns", cfg.H1Conns, "HTTP/1.1 keep-alive connections")
	fs.IntVar(&cfg.H2Conns, "h2-conns", cfg.H2Conns, "HTTP/2 connections")
	fs.IntVar(&cfg.H2Streams, "h2-streams", cfg.H2Streams, "HTTP/2 streams in flight per connection")
	fs.IntVar(&cfg.HSParallel, "hs-parallel", cfg.HSParallel, "connections in flight in the handshake rows")
	fs.IntVar(&cfg.IdleConns, "idle-conns", cfg.IdleConns, "idle keep-alive connections to hold")
	fs.IntVar(&cfg.TerraformObjects, "tf-objects", cfg.TerraformObjects, "connections (and bindings) of the terraform apply row")
	fs.BoolVar(&cfg.Terraform, "terraform", cfg.Terraform, "run the terraform apply row")
	fs.BoolVar(&cfg.GoBench, "gobench", cfg.GoBench, "run the token verification Go benchmarks")
	fs.BoolVar(&cfg.Keep, "keep", cfg.Keep, "keep the work directory (configs, logs)")
	peers := fs.String("peers", strings.Join(cfg.Peers, ","), "peers to run: "+strings.Join(bench.AllPeers, ","))
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Peers = nil
	for _, p := range strings.Split(*peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Peers = append(cfg.Peers, p)
		}
	}

	// Pin: the harness (and so the load generator) on one CPU, the servers
	// on another. GOMAXPROCS follows the affinity mask at start-up, hence
	// the re-exec rather than pinning the running process.
	if ncpu := runtime.NumCPU(); os.Getenv(pinnedEnv) == "" {
		taskset, err := exec.LookPath("taskset")
		if err == nil && ncpu >= 2 {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			argv := append([]string{taskset, "-c", cfg.LoadCPUs, self, "run"}, args...)
			return syscall.Exec(taskset, argv, append(os.Environ(), pinnedEnv+"=1"))
		}
		fmt.Fprintf(os.Stderr, "sallyport-bench: %d CPU(s), taskset %v: running unpinned\n", ncpu, err)
		cfg.ServerCPUs, cfg.LoadCPUs = "", ""
	}
	return bench.Run(ctx, cfg)
}

func serve(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	cert := fs.String("cert", "", "certificate chain (PEM)")
	key := fs.String("key", "", "private key (PEM)")
	upstream := fs.String("upstream", "", "executor URL (goproxy)")
	ca := fs.String("ca", "", "CA that verifies the executor (goproxy)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cmd == "executor" {
		return bench.ServeExecutor(ctx, *addr, *cert, *key)
	}
	return bench.ServeGoProxy(ctx, *addr, *cert, *key, *upstream, *ca)
}
