package recording

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/atomicfile"
)

// Files of the recording key in the data dir.
const (
	// KeyFile is the Ed25519 private key (PKCS #8 PEM, mode 0600).
	KeyFile = "recording-key.pem"
	// PublicKeyFile is its public key (PKIX PEM), for offline verifiers.
	PublicKeyFile = "recording-key.pub.pem"
)

// LoadOrCreateKey returns the recording key in dataDir, creating it on
// first use. The public key file is (re)written when missing or when it
// does not match the private key, so it always describes the key in use.
// An existing private key file with permissions looser than 0600 is
// refused: someone else may have read it.
func LoadOrCreateKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, KeyFile)
	key, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating the recording key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encoding the recording key: %w", err)
		}
		if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("saving the recording key: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	pubPEM := PublicKeyPEM(key.Public().(ed25519.PublicKey))
	pubPath := filepath.Join(dataDir, PublicKeyFile)
	if old, err := os.ReadFile(pubPath); err != nil || !bytes.Equal(old, pubPEM) {
		if err := atomicfile.Write(pubPath, pubPEM, 0o644); err != nil {
			return nil, fmt.Errorf("saving the recording public key: %w", err)
		}
	}
	return key, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the recording key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("recording key %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, fmt.Errorf("recording key %s has permissions %04o, looser than 0600: run `chmod 600 %s` (and consider whether it leaked)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("reading the recording key %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("recording key %s: not a PEM \"PRIVATE KEY\"", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("recording key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("recording key %s is a %T, not an Ed25519 key", path, k)
	}
	return key, nil
}

// PublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// Marshalling a well-formed Ed25519 key cannot fail.
		panic(fmt.Sprintf("recording: encoding an Ed25519 public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM decodes a "PUBLIC KEY" PEM block holding an Ed25519
// key.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the public key is a %T, not an Ed25519 key", k)
	}
	return pub, nil
}

// Fingerprint names a public key: "sha256:" and the hex SHA-256 of its 32
// raw bytes.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:])
}
