package recording

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts writing f's dirty pages without waiting, so that
// the fsyncs of a batch that follow find their data on its way and the
// filesystem commits the batch's metadata together. Errors are left to
// the fsync.
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
