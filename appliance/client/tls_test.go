package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("ca"))
	plain := hex.EncodeToString(sum[:])
	var colons []string
	for i := 0; i < len(plain); i += 2 {
		colons = append(colons, strings.ToUpper(plain[i:i+2]))
	}
	for _, in := range []string{plain, strings.ToUpper(plain), strings.Join(colons, ":"), "  " + plain + "\n"} {
		got, err := ParseFingerprint(in)
		if err != nil {
			t.Errorf("ParseFingerprint(%q): %v", in, err)
			continue
		}
		if got != sum {
			t.Errorf("ParseFingerprint(%q) = %x, want %x", in, got, sum)
		}
	}
	for _, in := range []string{
		"",
		plain[:62],
		plain + "00",
		"zz" + plain[2:],
		plain[:2] + ":" + plain[2:],     // a stray colon
		strings.Join(colons, ":") + ":", // trailing colon
		"sha256:" + plain,
	} {
		if _, err := ParseFingerprint(in); err == nil {
			t.Errorf("ParseFingerprint(%q) succeeded, want an error", in)
		}
	}
}

// statusServer answers /v1/status like the appliance would.
func statusServer(t *testing.T, cert tls.Certificate) (url string, handshakes *atomic.Int32) {
	t.Helper()
	handshakes = new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version":"test","store":{"backend":"bolt","revision":7}}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			handshakes.Add(1)
		}
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// The handshake errors the tests provoke are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, handshakes
}

func TestTLSVerification(t *testing.T) {
	ca := newTestCA(t, "admin CA")
	other := newTestCA(t, "other CA")
	caFP := Fingerprint(ca.cert)

	// The appliance's way: leaf first, then the CA, so it can be pinned.
	withCA, _ := statusServer(t, ca.serverCert(t, ca.cert))
	leafOnly, _ := statusServer(t, ca.serverCert(t))
	// A leaf from another CA, with the pinned CA merely appended.
	foreignLeaf, _ := statusServer(t, other.serverCert(t, ca.cert))
	// A leaf of the right CA that is not valid for 127.0.0.1.
	derWrongHost, keyWrongHost := ca.leaf(t, []string{"elsewhere.example"})
	wrongHost, _ := statusServer(t, tls.Certificate{Certificate: [][]byte{derWrongHost, ca.cert.Raw}, PrivateKey: keyWrongHost})

	tests := []struct {
		name     string
		endpoint string
		pem, fp  string
		wantErr  string // "" for success
	}{
		{"pinned CA in chain", withCA, "", caFP, ""},
		{"pinned CA with colons", withCA, "", colonize(caFP), ""},
		{"wrong pin", withCA, "", Fingerprint(other.cert), "none of the 2 certificates"},
		{"pinned CA not presented", leafOnly, "", caFP, "none of the 1 certificates"},
		{"leaf not issued by pinned CA", foreignLeaf, "", caFP, "does not verify against this CA for 127.0.0.1"},
		{"leaf for another host", wrongHost, "", caFP, "doesn't contain any IP SANs"},
		{"CA PEM", withCA, ca.pem, "", ""},
		{"CA PEM, leaf only", leafOnly, ca.pem, "", ""},
		{"CA PEM and matching pin", leafOnly, ca.pem + other.pem, caFP, ""},
		{"other CA PEM", withCA, other.pem, "", "certificate signed by unknown authority"},
		{"CA PEM, wrong host", wrongHost, ca.pem, "", "doesn't contain any IP SANs"},
		{"system roots", withCA, "", "", "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{Endpoint: tt.endpoint, Token: "tok-secret", CACertPEM: tt.pem, CAFingerprint: tt.fp})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			st, err := c.Status(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
				if st.Store.Revision != 7 || st.Version != "test" {
					t.Fatalf("Status = %+v", st)
				}
				return
			}
			if err == nil {
				t.Fatal("Status succeeded against a server that should not be trusted")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "tok-secret") {
				t.Fatalf("error reveals the token: %v", err)
			}
		})
	}
}

func TestPinnedCANotACA(t *testing.T) {
	ca := newTestCA(t, "admin CA")
	cert := ca.serverCert(t, ca.cert)
	sum := sha256.Sum256(cert.Certificate[0])
	url, _ := statusServer(t, cert)
	c, err := New(Config{Endpoint: url, Token: "t", CAFingerprint: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	var pe *PinError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "not a CA certificate") {
		t.Fatalf("pinning the leaf: got %v, want a PinError saying it is not a CA", err)
	}
}

func TestPinFailureIsNotRetried(t *testing.T) {
	ca, other := newTestCA(t, "admin CA"), newTestCA(t, "other")
	url, handshakes := statusServer(t, ca.serverCert(t, ca.cert))
	c, err := New(Config{Endpoint: url, Token: "t", CAFingerprint: Fingerprint(other.cert)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	var pe *PinError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *PinError", err)
	}
	if n := handshakes.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: a certificate failure must not be retried", n)
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	ca := newTestCA(t, "admin CA")
	srv := startTLSWithConfig(t, &tls.Config{
		Certificates: []tls.Certificate{ca.serverCert(t, ca.cert)},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
	})
	c, err := New(Config{Endpoint: srv, Token: "t", CACertPEM: ca.pem})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	if err == nil {
		t.Fatal("a TLS 1.1 server was accepted")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("error %q does not name the protocol version", err)
	}
}

func colonize(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
