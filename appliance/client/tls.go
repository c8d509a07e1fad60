package client

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// ParseFingerprint parses a SHA-256 certificate fingerprint: 64 hex digits,
// upper or lower case, optionally separated by colons ("AB:CD:...").
func ParseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	s = strings.TrimSpace(s)
	hexDigits := strings.ReplaceAll(s, ":", "")
	if strings.Contains(s, ":") && len(s) != sha256.Size*3-1 {
		// Colons must separate every byte, not appear at random.
		return fp, fmt.Errorf("fingerprint %q: colons must separate each of the %d bytes", s, sha256.Size)
	}
	if len(hexDigits) != hex.EncodedLen(sha256.Size) {
		return fp, fmt.Errorf("fingerprint %q: want the %d hex digits of a SHA-256, got %d characters", s, hex.EncodedLen(sha256.Size), len(hexDigits))
	}
	if _, err := hex.Decode(fp[:], []byte(hexDigits)); err != nil {
		return fp, fmt.Errorf("fingerprint %q: %w", s, err)
	}
	return fp, nil
}

// Fingerprint returns the SHA-256 of a certificate's DER encoding as
// lower-case hex, the form Config.CAFingerprint accepts.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// newTLSConfig builds the client TLS configuration for an endpoint host:
// verification against caPEM, against a pinned CA the server presents, or
// against the system roots.
func newTLSConfig(host, caPEM, fingerprint string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	var pin *[sha256.Size]byte
	if strings.TrimSpace(fingerprint) != "" {
		fp, err := ParseFingerprint(fingerprint)
		if err != nil {
			return nil, fmt.Errorf("sallyport: CA fingerprint: %w", err)
		}
		pin = &fp
	}
	switch {
	case strings.TrimSpace(caPEM) != "":
		certs, err := model.ParseCertificatesPEM(caPEM)
		if err != nil {
			return nil, fmt.Errorf("sallyport: CA certificate PEM: %w", err)
		}
		pool := x509.NewCertPool()
		trusted := 0
		for _, c := range certs {
			if pin != nil && sha256.Sum256(c.Raw) != *pin {
				continue
			}
			pool.AddCert(c)
			trusted++
		}
		if trusted == 0 {
			return nil, errors.New("sallyport: the CA fingerprint matches none of the certificates in the CA certificate PEM")
		}
		cfg.RootCAs = pool
	case pin != nil:
		// The standard verifier cannot express "trust only the CA with this
		// hash", so it is switched off and VerifyConnection does the whole
		// verification instead. VerifyConnection runs on every handshake,
		// resumed ones included, so no connection skips it.
		cfg.InsecureSkipVerify = true
		p := *pin
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, p, host)
		}
	}
	return cfg, nil
}

// PinError says why a server failed CA-fingerprint verification.
type PinError struct {
	// Fingerprint is the pinned SHA-256, lower-case hex.
	Fingerprint string
	// Reason explains the failure.
	Reason string
	// Err is the verification error, if the pinned CA was found but the
	// leaf did not verify against it.
	Err error
}

// Error implements error.
func (e *PinError) Error() string {
	// No "sallyport:" prefix: the error only reaches callers wrapped in
	// the request error, which has one.
	msg := "pinned CA fingerprint " + e.Fingerprint + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the verification error.
func (e *PinError) Unwrap() error { return e.Err }

// verifyPinned checks that chain (leaf first, as the server sent it)
// contains a CA certificate whose SHA-256 is pin and that the leaf chains
// to that CA and is valid for host.
func verifyPinned(chain []*x509.Certificate, pin [sha256.Size]byte, host string) error {
	fail := func(reason string, err error) error {
		return &PinError{Fingerprint: hex.EncodeToString(pin[:]), Reason: reason, Err: err}
	}
	if len(chain) == 0 {
		return fail("the server presented no certificate", nil)
	}
	var ca *x509.Certificate
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		if bytes.Equal(sum[:], pin[:]) {
			ca = c
			break
		}
	}
	if ca == nil {
		return fail(fmt.Sprintf("none of the %d certificates the server presented has this fingerprint", len(chain)), nil)
	}
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return fail("the certificate with this fingerprint is not a CA certificate", nil)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	// Other certificates the server sent may be intermediates below the
	// pinned CA; they are trusted only if they chain to it.
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != ca {
			inter.AddCert(c)
		}
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fail("the server certificate does not verify against this CA for "+host, err)
	}
	return nil
}
