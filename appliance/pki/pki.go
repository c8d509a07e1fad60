// Package pki is the appliance's internal certificate authority.
//
// The appliance uses it to serve its admin API over TLS without any operator
// setup: on first start it creates a CA and a server certificate in the data
// directory, and clients pin the CA (by PEM or by its SHA-256 fingerprint).
// The same CA later issues self-signed gateway certificates and mTLS client
// certificates.
//
// All keys are ECDSA P-256. Files are written atomically (temp file, fsync,
// rename) so a crash never leaves a half-written key or certificate behind.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/atomicfile"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

const (
	// caValidity is how long a newly created CA is valid.
	caValidity = 10 * 365 * 24 * time.Hour
	// backdate is subtracted from NotBefore so that peers whose clocks lag
	// slightly behind still accept a freshly issued certificate.
	backdate = 5 * time.Minute
	// DefaultLeafValidity is the validity of a leaf certificate when an
	// IssueRequest does not set ValidFor.
	DefaultLeafValidity = 365 * 24 * time.Hour

	pemTypeCertificate = "CERTIFICATE"
	pemTypeECKey       = "EC PRIVATE KEY"
	pemTypePKCS8Key    = "PRIVATE KEY"
)

// Usage says what a leaf certificate may be used for.
type Usage int

const (
	// UsageServer issues a TLS server certificate (ExtKeyUsageServerAuth).
	UsageServer Usage = iota
	// UsageClient issues a TLS client certificate (ExtKeyUsageClientAuth).
	UsageClient
	// UsageBoth issues a certificate valid for both server and client auth.
	UsageBoth
)

// String returns the usage's name.
func (u Usage) String() string {
	switch u {
	case UsageServer:
		return "server"
	case UsageClient:
		return "client"
	case UsageBoth:
		return "both"
	default:
		return fmt.Sprintf("Usage(%d)", int(u))
	}
}

func (u Usage) extKeyUsages() ([]x509.ExtKeyUsage, error) {
	switch u {
	case UsageServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil
	case UsageClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	case UsageBoth:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil
	default:
		return nil, fmt.Errorf("unknown certificate usage %d", int(u))
	}
}

// CA is a loaded certificate authority: its certificate and private key.
// A CA is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// LoadOrCreateCA loads the CA stored in dir as <name>.pem (certificate) and
// <name>-key.pem (private key), or creates and stores a new one when neither
// file exists. A key file readable by group or others is refused, as is a
// directory holding only one of the two files (that is damage, not a fresh
// start, and silently replacing the CA would break every client that pinned
// it).
func LoadOrCreateCA(dir, name string) (*CA, error) {
	if name == "" {
		return nil, errors.New("pki: CA name is empty")
	}
	certPath := filepath.Join(dir, name+".pem")
	keyPath := filepath.Join(dir, name+"-key.pem")

	certExists, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && keyExists:
		return loadCA(certPath, keyPath)
	case certExists != keyExists:
		return nil, fmt.Errorf("pki: CA %q is incomplete: %s exists=%t, %s exists=%t; restore the missing file or remove both to create a new CA",
			name, certPath, certExists, keyPath, keyExists)
	}

	ca, keyPEM, err := newCA(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create directory %s: %w", dir, err)
	}
	// The key goes first: a crash between the two writes then leaves a lone
	// key file, which the next start reports rather than a certificate
	// without its key.
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(certPath, ca.certPEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// NewEphemeralCA creates a CA that lives in memory only, for development
// services and tests that need a trust root nobody keeps.
func NewEphemeralCA(name string) (*CA, error) {
	ca, _, err := newCA(name)
	return ca, err
}

// newCA creates a self-signed CA in memory and returns it with its key PEM.
func newCA(name string) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	// The random suffix keeps CAs of different appliances distinguishable in
	// trust stores and error messages even though they share a name.
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, nil, fmt.Errorf("pki: random CA suffix: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Sallyport %s CA %s", name, hex.EncodeToString(suffix)),
			Organization: []string{"Sallyport"},
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &CA{cert: cert, certPEM: encodeCert(der), key: key}, keyPEM, nil
}

func loadCA(certPath, keyPath string) (*CA, error) {
	if err := checkKeyPerm(keyPath); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	key, err := model.ParsePrivateKeyPEM(string(keyPEM))
	if err != nil {
		return nil, fmt.Errorf("pki: CA key %s: %w", keyPath, err)
	}
	if err := model.CheckKeyMatchesCertificate(key, cert); err != nil {
		return nil, fmt.Errorf("pki: CA %s and key %s: %w", certPath, keyPath, err)
	}
	return &CA{cert: cert, certPEM: encodeCert(cert.Raw), key: key}, nil
}

// CertPEM returns the CA certificate in PEM form. The caller must not modify
// the returned slice.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Certificate returns the parsed CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Fingerprint returns the CA certificate's SHA-256 fingerprint (see
// Fingerprint).
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// Pool returns a new certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// IssueRequest describes a leaf certificate to issue.
type IssueRequest struct {
	// CommonName is the subject CN. When empty, the first DNS name (or IP)
	// is used.
	CommonName string
	// DNSNames are the DNS subject alternative names.
	DNSNames []string
	// IPs are the IP address subject alternative names.
	IPs []net.IP
	// URIs are the URI subject alternative names (e.g. SPIFFE-style
	// identities on client certificates).
	URIs []*url.URL
	// Usage selects server auth, client auth or both.
	Usage Usage
	// ValidFor is the validity period from now; DefaultLeafValidity when 0.
	ValidFor time.Duration
}

// Issue creates a new ECDSA P-256 key and a leaf certificate for it signed by
// the CA. It returns the certificate (leaf followed by the CA) and key in PEM
// form, and the same pair ready for a tls.Config.
func (ca *CA) Issue(req IssueRequest) (certPEM, keyPEM []byte, tlsCert *tls.Certificate, err error) {
	if req.ValidFor < 0 {
		return nil, nil, nil, fmt.Errorf("pki: negative validity %s", req.ValidFor)
	}
	if req.ValidFor == 0 {
		req.ValidFor = DefaultLeafValidity
	}
	ekus, err := req.Usage.extKeyUsages()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: %w", err)
	}
	cn := req.CommonName
	if cn == "" {
		switch {
		case len(req.DNSNames) > 0:
			cn = req.DNSNames[0]
		case len(req.IPs) > 0:
			cn = req.IPs[0].String()
		case len(req.URIs) > 0:
			cn = req.URIs[0].String()
		}
	}
	if cn == "" && len(req.DNSNames) == 0 && len(req.IPs) == 0 && len(req.URIs) == 0 {
		return nil, nil, nil, errors.New("pki: certificate request has no common name and no subject alternative names")
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(req.ValidFor)
	// A leaf outliving its CA would fail verification anyway; cap it so the
	// expiry the appliance reports is the real one.
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Sallyport"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           ekus,
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              append([]string(nil), req.DNSNames...),
		IPAddresses:           append([]net.IP(nil), req.IPs...),
		URIs:                  append([]*url.URL(nil), req.URIs...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: sign certificate for %q: %w", cn, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: parse issued certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	// The chain includes the CA so that peers configured with only the
	// fingerprint can still see (and pin) it during the handshake.
	certPEM = append(encodeCert(der), ca.certPEM...)
	tlsCert = &tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}
	return certPEM, keyPEM, tlsCert, nil
}

// Fingerprint returns the SHA-256 fingerprint of cert's DER encoding as 64
// lowercase hex characters without separators: the value of
// `openssl x509 -noout -fingerprint -sha256` with the colons removed and
// lowercased.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// FingerprintPEM returns the Fingerprint of the first certificate in pemData.
func FingerprintPEM(pemData []byte) (string, error) {
	cert, err := parseCertPEM(pemData)
	if err != nil {
		return "", fmt.Errorf("pki: fingerprint: %w", err)
	}
	return Fingerprint(cert), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeECKey, Bytes: der}), nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("pki: random serial: %w", err)
		}
		// RFC 5280 requires a positive serial.
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// checkKeyPerm refuses a private key file that group or others may access:
// such a key may already have leaked, and using it silently would hide that.
func checkKeyPerm(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("pki: stat %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("pki: private key %s has permissions %#o, want 0600 or stricter; fix with: chmod 600 %s",
			path, perm, path)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: stat %s: %w", path, err)
	}
}

// parseCertPEM returns the first certificate of a PEM file.
func parseCertPEM(pemData []byte) (*x509.Certificate, error) {
	certs, err := model.ParseCertificatesPEM(string(pemData))
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}
