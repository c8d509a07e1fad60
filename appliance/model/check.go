package model

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The checks below validate single values. Each spec's Validate uses them,
// and the Terraform provider wraps the same functions as plan-time
// validators, so a bad attribute fails with the same words everywhere.

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckName checks an object name: 1 to 63 letters, digits, '.', '_' or '-',
// starting with a letter or digit.
func CheckName(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if !nameRE.MatchString(s) {
		return errors.New("must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// CheckHostname checks a DNS name a gateway serves or a connection routes:
// lower-case labels of letters, digits and '-', optionally a leading "*."
// wildcard label. IP addresses are not hostnames (SNI cannot carry them).
func CheckHostname(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 characters")
	}
	if s != strings.ToLower(s) {
		return fmt.Errorf("%q must be lower case", s)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return fmt.Errorf("%q is an IP address; give a DNS name", s)
	}
	name := strings.TrimPrefix(s, "*.")
	for _, label := range strings.Split(name, ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("%q is not a valid hostname: %w", s, err)
		}
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return errors.New("each label must be 1 to 63 characters")
	}
	for i, c := range l {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(l)-1
		if !ok {
			return fmt.Errorf("label %q may hold only a-z, 0-9 and inner '-'", l)
		}
	}
	return nil
}

// CheckListenAddr checks a listen address: "host:port" where host is an IP
// address, "localhost" or empty (all interfaces) and port is 1 to 65535.
func CheckListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be HOST:PORT, for example 0.0.0.0:443: %v", stripAddrErr(err))
	}
	if err := checkPort(port); err != nil {
		return err
	}
	if host == "" || host == "localhost" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("host %q must be an IP address, \"localhost\" or empty", host)
	}
	return nil
}

func stripAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 1 to 65535", port)
	}
	return nil
}

// CheckServiceURL checks an absolute URL of a service the appliance talks
// to: the scheme must be one of schemes, there must be a host, and there
// may be no user info or fragment.
func CheckServiceURL(s string, schemes ...string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a valid URL: %w", errors.Unwrap(err))
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || u.Scheme == sc
	}
	if !ok {
		return nil, fmt.Errorf("scheme must be %s (got %q)", strings.Join(schemes, " or "), u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("must include a host")
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return nil, err
		}
	}
	if u.User != nil {
		return nil, errors.New("must not contain user info; put credentials in a secret")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return nil, errors.New("must not contain a fragment")
	}
	return u, nil
}

// ParseCertificatesPEM parses one or more PEM "CERTIFICATE" blocks.
func ParseCertificatesPEM(s string) ([]*x509.Certificate, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("required")
	}
	var certs []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", len(certs)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("unexpected data after the last PEM block")
	}
	return certs, nil
}

// ParsePrivateKeyPEM parses one PEM private key (PKCS#8, EC or PKCS#1 RSA).
// Errors never quote the key.
func ParsePrivateKeyPEM(s string) (crypto.Signer, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("must hold exactly one PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, errors.New("the private key could not be parsed")
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must be at least 2048 bits")
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, errors.New("unsupported private key type")
}

// CheckKeyMatchesCertificate checks that key is the private key of cert.
func CheckKeyMatchesCertificate(key crypto.Signer, cert *x509.Certificate) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the private key does not match the first certificate")
	}
	return nil
}

// CheckEmail checks an e-mail address (a bare address, no display name).
func CheckEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return fmt.Errorf("%q is not a valid e-mail address", s)
	}
	return nil
}

// CheckDuration checks a Go duration string ("30s", "2m") within [lo, hi].
func CheckDuration(s string, lo, hi time.Duration) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"30s\" or \"2m\"", s)
	}
	if d < lo || d > hi {
		return fmt.Errorf("must be between %s and %s", lo, hi)
	}
	return nil
}

// CheckGlob checks a glob pattern ('*', '?', '[...]' as in path.Match).
func CheckGlob(s string) error {
	if _, err := path.Match(s, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob pattern", s)
	}
	return nil
}

// CheckHeaderName checks an HTTP header field name.
func CheckHeaderName(s string) error {
	if s == "" {
		return errors.New("header name must not be empty")
	}
	for _, c := range s {
		if !isTokenChar(c) {
			return fmt.Errorf("%q is not a valid header name", s)
		}
	}
	return nil
}

// CheckHeaderValue checks an HTTP header field value without quoting it
// (header values here are secrets).
func CheckHeaderValue(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	for _, c := range s {
		if c == '\r' || c == '\n' || c == 0 || c == 0x7f || c < ' ' && c != '\t' {
			return errors.New("must not contain control characters such as CR or LF")
		}
	}
	return nil
}

func isTokenChar(c rune) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", c)
}

// CheckOneOf checks that s is one of allowed.
func CheckOneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s (got %q)", quoteList(allowed), s)
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
