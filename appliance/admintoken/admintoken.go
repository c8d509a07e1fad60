// Package admintoken issues and checks the bearer tokens of the admin API.
// The appliance keeps only SHA-256 hashes of tokens: a token is 32 random
// bytes, so a plain hash cannot be reversed, and a stolen data dir does not
// yield a usable credential.
package admintoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/atomicfile"
)

// Prefix starts every generated token, so a leaked one is easy to spot by
// secret scanners.
const Prefix = "spt_"

// Generate returns a new random token.
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating an admin token: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the stored form of a token: "sha256:<64 hex digits>".
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseHash checks a stored hash ("sha256:<hex>", or bare hex) and returns
// its canonical form.
func ParseHash(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	h = strings.TrimPrefix(h, "sha256:")
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", errors.New("an admin token hash must be \"sha256:\" followed by 64 hex digits (the SHA-256 of the token)")
	}
	return "sha256:" + h, nil
}

// Set is the set of accepted token hashes.
type Set struct {
	hashes [][]byte
}

// NewSet returns a Set accepting the given hashes (see ParseHash).
func NewSet(hashes ...string) (*Set, error) {
	s := &Set{}
	for _, h := range hashes {
		c, err := ParseHash(h)
		if err != nil {
			return nil, err
		}
		s.hashes = append(s.hashes, []byte(c))
	}
	if len(s.hashes) == 0 {
		return nil, errors.New("no admin token configured")
	}
	return s, nil
}

// Verify returns the actor name of token ("admin-token:<first 8 hex digits
// of its hash>") and whether it is accepted. It compares in constant time.
func (s *Set) Verify(token string) (actor string, ok bool) {
	if token == "" {
		return "", false
	}
	h := []byte(Hash(token))
	match := 0
	for _, want := range s.hashes {
		match |= subtle.ConstantTimeCompare(h, want)
	}
	if match != 1 {
		return "", false
	}
	return "admin-token:" + string(h[len("sha256:"):len("sha256:")+8]), true
}

// Files in the data dir.
const (
	// TokenFile holds a generated token for the operator to pick up (0600).
	TokenFile = "admin-token"
	// HashFile holds the hash the appliance checks tokens against.
	HashFile = "admin-token.sha256"
)

// Source says where the admin token comes from; at most one field is set.
type Source struct {
	// Token is a plaintext token given by the operator.
	Token string
	// TokenFile is a file holding a plaintext token.
	TokenFile string
	// Hash is the hash of a token the operator keeps elsewhere.
	Hash string
}

// Resolve returns the accepted hash for a data dir. A token or hash the
// operator gives wins and is recorded in HashFile; otherwise HashFile is
// used; on an empty data dir a token is generated, written to TokenFile for
// the operator (0600), and generated is true.
func Resolve(dataDir string, src Source) (hash string, generated bool, err error) {
	set := 0
	for _, v := range []string{src.Token, src.TokenFile, src.Hash} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return "", false, errors.New("give the admin token one way only: a token, a token file or a hash")
	}
	hashPath := filepath.Join(dataDir, HashFile)
	switch {
	case src.Token != "":
		hash = Hash(strings.TrimSpace(src.Token))
	case src.TokenFile != "":
		b, err := os.ReadFile(src.TokenFile)
		if err != nil {
			return "", false, fmt.Errorf("reading the admin token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", false, fmt.Errorf("the admin token file %s is empty", src.TokenFile)
		}
		hash = Hash(t)
	case src.Hash != "":
		if hash, err = ParseHash(src.Hash); err != nil {
			return "", false, err
		}
	default:
		b, err := os.ReadFile(hashPath)
		if err == nil {
			hash, err = ParseHash(string(b))
			if err != nil {
				return "", false, fmt.Errorf("%s: %w", hashPath, err)
			}
			return hash, false, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", false, fmt.Errorf("reading the admin token hash: %w", err)
		}
		token, err := Generate()
		if err != nil {
			return "", false, err
		}
		if err := atomicfile.Write(filepath.Join(dataDir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
			return "", false, err
		}
		hash, generated = Hash(token), true
	}
	if err := atomicfile.Write(hashPath, []byte(hash+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return hash, generated, nil
}
