// Package version holds the build's version information, stamped at link
// time:
//
//	go build -ldflags "-X github.com/sallyport/terraform-provider-sallyport/appliance/version.Version=v1.2.3 \
//	  -X github.com/sallyport/terraform-provider-sallyport/appliance/version.Commit=abc1234"
//
// The GNUmakefile's build target sets both from git.
package version

import "runtime/debug"

// Version is the release version (a git tag such as "v1.2.3", or the output
// of `git describe --tags --always --dirty`). It is "dev" in unstamped builds.
var Version = "dev"

// Commit is the git commit the binary was built from. When not stamped by
// ldflags it falls back to the VCS revision the Go toolchain embeds, and is
// empty when neither is available (e.g. `go run`).
var Commit = ""

// ResolvedCommit returns Commit, or the VCS revision embedded by the Go
// toolchain when Commit was not stamped.
func ResolvedCommit() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}

// String returns the version for humans and logs, e.g. "v1.2.3 (abc1234)",
// or just the version when the commit is unknown.
func String() string {
	if c := ResolvedCommit(); c != "" {
		return Version + " (" + c + ")"
	}
	return Version
}
