//go:build !linux

package recording

import "os"

// startWriteback is a no-op where sync_file_range does not exist: the
// fsync does it all.
func startWriteback(*os.File) {}
