//go:build unix

package recording

import (
	"errors"
	"fmt"
	"syscall"
)

// statfsFree is the default Options.FreeSpace: the bytes available to an
// unprivileged writer on dir's filesystem.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:unconvert // field types differ across systems
}

// isDiskFull reports whether err says the disk (or the quota) is full.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
