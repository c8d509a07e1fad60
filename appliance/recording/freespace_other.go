//go:build !unix

package recording

import (
	"errors"
	"math"
	"syscall"
)

// statfsFree is the default Options.FreeSpace; without statfs the space is
// unknown and only real write errors count.
func statfsFree(string) (uint64, error) { return math.MaxUint64, nil }

// isDiskFull reports whether err says the disk is full.
func isDiskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }
