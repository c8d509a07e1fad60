package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	oldVersion, oldCommit := Version, Commit
	t.Cleanup(func() { Version, Commit = oldVersion, oldCommit })

	Version, Commit = "v1.2.3", "abc1234"
	if got := String(); got != "v1.2.3 (abc1234)" {
		t.Errorf("String() = %q", got)
	}
	if got := ResolvedCommit(); got != "abc1234" {
		t.Errorf("ResolvedCommit() = %q, want the stamped commit", got)
	}
}

// TestLdflags builds a program with the GNUmakefile's -X flags and checks
// that they reach the variables: a renamed package or variable would
// otherwise silently leave every release reporting "dev".
func TestLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	main := `package main

import (
	"fmt"

	"github.com/sallyport/terraform-provider-sallyport/appliance/version"
)

func main() { fmt.Print(version.String()) }
`
	// A file named on the command line is built as part of the current
	// module, so it can import the package from outside the source tree.
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	const pkg = "github.com/sallyport/terraform-provider-sallyport/appliance/version"
	bin := filepath.Join(dir, "prog")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".Version=v9.8.7 -X "+pkg+".Commit=feedface",
		src)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "v9.8.7 (feedface)" {
		t.Errorf("stamped binary reports %q, want %q", got, "v9.8.7 (feedface)")
	}
}
