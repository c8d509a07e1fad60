package seal_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
)

func newSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := seal.New(key)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

const (
	secret = "super-secret-token-value"
	aad    = "conn-123\x00upstream.credentials.token"
)

func TestRoundTrip(t *testing.T) {
	s := newSealer(t)
	for _, pt := range [][]byte{[]byte(secret), {}, bytes.Repeat([]byte{0xAB}, 4096)} {
		sealed, err := s.Seal(pt, aad)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if sealed[0] != seal.Version {
			t.Fatalf("version byte = %#x, want %#x", sealed[0], seal.Version)
		}
		if want := 1 + 12 + len(pt) + 16; len(sealed) != want {
			t.Fatalf("sealed length = %d, want %d", len(sealed), want)
		}
		if len(pt) > 0 && bytes.Contains(sealed, pt) {
			t.Fatal("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed, aad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip = %q, want %q", got, pt)
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	s := newSealer(t)
	a, err := s.Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("sealing the same value twice gave identical output (nonce reuse)")
	}
}

// assertOpenFails checks that Open failed with a clear ErrOpen that
// leaks no plaintext and returns none.
func assertOpenFails(t *testing.T, pt []byte, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Open succeeded with %q", pt)
	}
	if !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("err = %v, want ErrOpen", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error %q contains the plaintext", err)
	}
	if pt != nil {
		t.Fatalf("Open returned %q along with an error", pt)
	}
}

func TestWrongAADFails(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s.Open(sealed, "conn-456\x00upstream.credentials.token")
	assertOpenFails(t, pt, err)
	pt, err = s.Open(sealed, "")
	assertOpenFails(t, pt, err)
}

func TestTamperedFails(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one bit in every byte position in turn: version, nonce,
	// ciphertext and tag must all be covered.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		pt, err := s.Open(bad, aad)
		assertOpenFails(t, pt, err)
	}
	for _, bad := range [][]byte{nil, {seal.Version}, sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		pt, err := s.Open(bad, aad)
		assertOpenFails(t, pt, err)
	}
}

func TestOtherKeyFails(t *testing.T) {
	sealed, err := newSealer(t).Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := newSealer(t).Open(sealed, aad)
	assertOpenFails(t, pt, err)
}

func TestNewRejectsWrongKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := seal.New(make([]byte, n)); err == nil {
			t.Fatalf("New accepted a %d-byte key", n)
		}
	}
}

func TestFingerprint(t *testing.T) {
	key := bytes.Repeat([]byte{7}, seal.KeySize)
	s1, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	s1again, err := seal.New(bytes.Clone(key))
	if err != nil {
		t.Fatal(err)
	}
	s2 := newSealer(t)

	fp := s1.Fingerprint(secret)
	if !strings.HasPrefix(fp, seal.FingerprintPrefix) || len(fp) != len(seal.FingerprintPrefix)+32 {
		t.Fatalf("fingerprint %q: want %q + 32 hex chars", fp, seal.FingerprintPrefix)
	}
	for _, c := range strings.TrimPrefix(fp, seal.FingerprintPrefix) {
		if !strings.ContainsRune("0123456789abcdef", c) {
			t.Fatalf("fingerprint %q is not lowercase hex", fp)
		}
	}
	if strings.Contains(fp, secret) {
		t.Fatal("fingerprint contains the value")
	}
	if s1.Fingerprint(secret) != fp || s1again.Fingerprint(secret) != fp {
		t.Fatal("fingerprint not stable for the same key and value")
	}
	if s2.Fingerprint(secret) == fp {
		t.Fatal("fingerprint equal across keys")
	}
	if s1.Fingerprint(secret+"x") == fp || s1.Fingerprint("") == fp {
		t.Fatal("fingerprint equal across values")
	}
}

func TestKeyFileCreatedAndReloaded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seal.key")
	s1, err := seal.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode = %04o, want 0600", perm)
	}
	if fi.Size() != seal.KeySize {
		t.Fatalf("key file size = %d, want %d", fi.Size(), seal.KeySize)
	}
	// No temp file is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries after create, want only the key file", len(entries))
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	sealed, err := s1.Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	// The sealed value (what the store persists) never carries the key.
	if bytes.Contains(sealed, content) {
		t.Fatal("sealed value contains the master key")
	}

	s2, err := seal.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	got, err := s2.Open(sealed, aad)
	if err != nil || string(got) != secret {
		t.Fatalf("reloaded key Open = %q, %v", got, err)
	}
	if s1.Fingerprint(secret) != s2.Fingerprint(secret) {
		t.Fatal("reloaded key gives a different fingerprint")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, content) {
		t.Fatal("reload rewrote the key file")
	}
	// The master key is not what appears in a fingerprint either.
	if strings.Contains(s1.Fingerprint(secret), string(content)) {
		t.Fatal("fingerprint contains the master key")
	}
}

func TestKeyFilesDiffer(t *testing.T) {
	dir := t.TempDir()
	var keys [][]byte
	for _, name := range []string{"a.key", "b.key"} {
		path := filepath.Join(dir, name)
		if _, err := seal.LoadOrCreateKeyFile(path); err != nil {
			t.Fatal(err)
		}
		k, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k, make([]byte, seal.KeySize)) {
			t.Fatal("key file is all zeros")
		}
		keys = append(keys, k)
	}
	if bytes.Equal(keys[0], keys[1]) {
		t.Fatal("two new key files hold the same key")
	}
}

func TestKeyFileLoosePermissionsRefused(t *testing.T) {
	for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o700} {
		path := filepath.Join(t.TempDir(), "seal.key")
		if err := os.WriteFile(path, make([]byte, seal.KeySize), 0o600); err != nil {
			t.Fatal(err)
		}
		// Chmod explicitly: WriteFile's mode is filtered by the umask.
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		_, err := seal.LoadOrCreateKeyFile(path)
		if err == nil {
			t.Fatalf("key file with mode %04o accepted", perm)
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600") {
			t.Fatalf("mode %04o: error %q should name the path and say chmod 600", perm, msg)
		}
	}
	// Stricter than 0600 is fine.
	path := filepath.Join(t.TempDir(), "seal.key")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, seal.KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadOrCreateKeyFile(path); err != nil {
		t.Fatalf("0400 key file refused: %v", err)
	}
}

func TestKeyFileWrongSizeRefused(t *testing.T) {
	for _, n := range []int{0, 16, seal.KeySize - 1, seal.KeySize + 1, 64} {
		path := filepath.Join(t.TempDir(), "seal.key")
		if err := os.WriteFile(path, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := seal.LoadOrCreateKeyFile(path)
		if err == nil {
			t.Fatalf("%d-byte key file accepted", n)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the path", err)
		}
		// A damaged key file must never be silently replaced.
		if got, _ := os.ReadFile(path); len(got) != n {
			t.Fatalf("%d-byte key file was rewritten to %d bytes", n, len(got))
		}
	}
}

func TestKeyFileNotRegularRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("directory accepted as key file")
	}
}

func TestKeyFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "seal.key")
	if _, err := seal.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("key file created in a missing directory")
	}
}

func TestKeyFileConcurrentCreateAgrees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	const n = 8
	sealers := make([]*seal.Sealer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sealers[i], errs[i] = seal.LoadOrCreateKeyFile(path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("creator %d: %v", i, err)
		}
	}
	// Everyone ends up with the single key on disk.
	want := sealers[0].Fingerprint(secret)
	for i, s := range sealers {
		if got := s.Fingerprint(secret); got != want {
			t.Fatalf("creator %d holds a different key than creator 0", i)
		}
	}
}
