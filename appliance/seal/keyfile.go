package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKeyFile returns a Sealer for the master key in the file at
// path, creating the file with a new random key if it does not exist.
//
// A new key file is written atomically with mode 0600 (temp file, fsync,
// link into place, fsync of the directory), so a crash leaves either no key
// file or a complete one. It is linked rather than renamed into place so
// that two processes racing to create it never overwrite each other's key:
// the loser loads the winner's.
//
// An existing file is refused if its permissions are looser than 0600 or
// it is not exactly KeySize bytes. The file's directory must exist.
func LoadOrCreateKeyFile(path string) (*Sealer, error) {
	key, err := loadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	return New(key)
}

func loadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: open key file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checks apply to what is read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: stat key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: key file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, fmt.Errorf("seal: key file %s has permissions %04o, looser than 0600: "+
			"other users may have read the key; run `chmod 600 %s` (and consider whether it leaked)",
			path, perm, path)
	}
	// Read one byte more than a key so an oversized file is noticed even if
	// it grew after Stat.
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("seal: read key file %s: %w", path, err)
	}
	if len(key) != KeySize || fi.Size() != KeySize {
		return nil, fmt.Errorf("seal: key file %s is %d bytes, want exactly %d: it is not a sallyport key file or it is damaged",
			path, max(fi.Size(), int64(len(key))), KeySize)
	}
	return key, nil
}

func createKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: generate key: %w", err)
	}
	dir := filepath.Dir(path)
	// os.CreateTemp creates the file with mode 0600.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	tmpName := tmp.Name()
	// The temp name is always removed: on success the key lives on under
	// path through the hard link.
	defer os.Remove(tmpName)

	if err := writeAndSync(tmp, key); err != nil {
		return nil, fmt.Errorf("seal: write key file %s: %w", tmpName, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use its key.
			return loadKeyFile(path)
		}
		return nil, fmt.Errorf("seal: install key file %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("seal: sync key file directory: %w", err)
	}
	return key, nil
}

// writeAndSync writes data to f, makes sure it is 0600 whatever the umask
// did, fsyncs and closes it.
func writeAndSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory so a new entry in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}
