package bench

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// Names the peers serve and the executor is verified as.
const (
	// Hostname is what the load generator sends as SNI and Host to every
	// peer; it dials 127.0.0.1, so the name needs no DNS.
	Hostname = "bench.sallyport.test"
	// ExecutorName is the name the proxies verify the executor as; its
	// certificate also holds Hostname (for the executor-direct row) and
	// 127.0.0.1.
	ExecutorName = "executor.sallyport.test"
)

// Material is the TLS material every peer shares: one CA, a certificate
// for the peers' serving side and one for the executor, all ECDSA P-256.
type Material struct {
	// Dir holds the PEM files.
	Dir string
	// CAFile is the CA certificate; CAPEM its content.
	CAFile string
	CAPEM  []byte
	// ServerCertFile and ServerKeyFile are what every peer serves with
	// (the chain holds the leaf and the CA).
	ServerCertFile, ServerKeyFile string
	ServerCertPEM, ServerKeyPEM   []byte
	// ExecutorCertFile and ExecutorKeyFile are the executor's.
	ExecutorCertFile, ExecutorKeyFile string
	// Pool trusts the CA.
	Pool *x509.CertPool
}

// NewMaterial creates a CA and the two certificates in dir.
func NewMaterial(dir string) (*Material, error) {
	ca, err := pki.LoadOrCreateCA(dir, "bench-ca")
	if err != nil {
		return nil, fmt.Errorf("bench CA: %w", err)
	}
	m := &Material{
		Dir:              dir,
		CAFile:           filepath.Join(dir, "bench-ca.pem"),
		CAPEM:            ca.CertPEM(),
		ServerCertFile:   filepath.Join(dir, "server.pem"),
		ServerKeyFile:    filepath.Join(dir, "server-key.pem"),
		ExecutorCertFile: filepath.Join(dir, "executor.pem"),
		ExecutorKeyFile:  filepath.Join(dir, "executor-key.pem"),
		Pool:             ca.Pool(),
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	certPEM, keyPEM, _, err := ca.Issue(pki.IssueRequest{DNSNames: []string{Hostname}, IPs: loopback, Usage: pki.UsageServer})
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	m.ServerCertPEM, m.ServerKeyPEM = certPEM, keyPEM
	if err := writeFiles(map[string][]byte{m.ServerCertFile: certPEM, m.ServerKeyFile: keyPEM}); err != nil {
		return nil, err
	}
	certPEM, keyPEM, _, err = ca.Issue(pki.IssueRequest{DNSNames: []string{ExecutorName, Hostname}, IPs: loopback, Usage: pki.UsageServer})
	if err != nil {
		return nil, fmt.Errorf("executor certificate: %w", err)
	}
	if err := writeFiles(map[string][]byte{m.ExecutorCertFile: certPEM, m.ExecutorKeyFile: keyPEM}); err != nil {
		return nil, err
	}
	return m, nil
}

func writeFiles(files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}
