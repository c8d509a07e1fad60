// Package seal encrypts the appliance's secrets at rest and fingerprints
// them.
//
// One 32-byte master key, kept in a file of the data dir, is expanded with
// HKDF-SHA256 into two independent subkeys: one for AES-256-GCM sealing and
// one for HMAC-SHA256 fingerprints. Keeping them apart means a fingerprint
// reveals nothing that could help attack a sealed value, and vice versa.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the size in bytes of the master key.
const KeySize = 32

// Version is the first byte of every sealed value; it lets a future format
// (or key rotation scheme) coexist with values already stored.
const Version byte = 0x01

// FingerprintPrefix starts every fingerprint, naming its algorithm.
const FingerprintPrefix = "hmac-sha256:"

const (
	nonceSize = 12
	tagSize   = 16
	// HKDF info strings: domain separation between the subkeys.
	infoSeal        = "sallyport/seal/v1/aes-256-gcm"
	infoFingerprint = "sallyport/seal/v1/hmac-sha256-fingerprint"
	infoMaskingHash = "sallyport/seal/v1/masking-hash"
)

// ErrOpen is wrapped by every error from Open: the value is malformed, was
// sealed with another key or another aad, or was tampered with.
var ErrOpen = errors.New("seal: cannot open sealed value")

// Sealer seals and opens secrets with keys derived from one master key.
// It is safe for concurrent use.
type Sealer struct {
	aead    cipher.AEAD
	fpKey   []byte
	maskKey []byte
}

// New returns a Sealer for a KeySize-byte master key. The key slice is not
// retained.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: master key is %d bytes, want %d", len(key), KeySize)
	}
	sealKey, err := hkdf.Key(sha256.New, key, nil, infoSeal, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive sealing key: %w", err)
	}
	fpKey, err := hkdf.Key(sha256.New, key, nil, infoFingerprint, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive fingerprint key: %w", err)
	}
	maskKey, err := hkdf.Key(sha256.New, key, nil, infoMaskingHash, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive masking key: %w", err)
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("seal: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: gcm: %w", err)
	}
	return &Sealer{aead: aead, fpKey: fpKey, maskKey: maskKey}, nil
}

// MaskingHashKey is the key of masking's "hash" replacement: derived from
// the master key, so a masked value hashes the same across restarts (and
// across appliances sharing the key) without the hash revealing the value.
func (s *Sealer) MaskingHashKey() []byte { return append([]byte(nil), s.maskKey...) }

// Seal encrypts plaintext and binds it to aad, the value's place in the
// store (object id and field path), so a sealed value copied to another
// place fails to open. The result is
// Version || 12-byte random nonce || AES-256-GCM ciphertext and tag.
func (s *Sealer) Seal(plaintext []byte, aad string) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = Version
	nonce := out[1 : 1+nonceSize]
	// Random nonces are safe here: far fewer than 2^32 secrets are ever
	// sealed under one key.
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: read random nonce: %w", err)
	}
	return s.aead.Seal(out, nonce, plaintext, []byte(aad)), nil
}

// Open decrypts a value made by Seal with the same key and aad. Its errors
// wrap ErrOpen and never contain plaintext or key material.
func (s *Sealer) Open(sealed []byte, aad string) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: %d bytes is too short to be a sealed value", ErrOpen, len(sealed))
	}
	if sealed[0] != Version {
		return nil, fmt.Errorf("%w: unknown format version 0x%02x (want 0x%02x)", ErrOpen, sealed[0], Version)
	}
	nonce := sealed[1 : 1+nonceSize]
	pt, err := s.aead.Open(nil, nonce, sealed[1+nonceSize:], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("%w for %q: wrong key, wrong place, or tampered data: %w", ErrOpen, aad, err)
	}
	return pt, nil
}

// Fingerprint returns "hmac-sha256:" followed by the first 32 hex digits
// (128 bits) of HMAC-SHA256(fingerprint key, value). It changes when the
// value changes and reveals nothing of it; being keyed, it cannot be
// brute-forced offline without the master key.
func (s *Sealer) Fingerprint(value string) string {
	m := hmac.New(sha256.New, s.fpKey)
	m.Write([]byte(value)) // hash.Hash.Write never fails
	return FingerprintPrefix + hex.EncodeToString(m.Sum(nil))[:32]
}
