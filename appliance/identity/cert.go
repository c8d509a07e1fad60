package identity

import "crypto/x509"

// FromCertificate returns the identity of a verified client certificate:
// its subject, its URI SANs (SPIFFE IDs) and its expiry. The caller must
// have verified the certificate chain (the TLS handshake does); nil yields
// nil, which no binding admits.
func FromCertificate(cert *x509.Certificate) *Identity {
	if cert == nil {
		return nil
	}
	sans := make([]string, 0, len(cert.URIs))
	for _, u := range cert.URIs {
		sans = append(sans, u.String())
	}
	return &Identity{
		Source:      SourceClientCert,
		Subject:     cert.Subject.String(),
		Expiry:      cert.NotAfter,
		Certificate: cert,
		URISANs:     sans,
	}
}
