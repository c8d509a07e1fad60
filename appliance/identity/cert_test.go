package identity_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/identity"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/pki"
)

// TestClientCertificateIdentity runs a real mutual-TLS exchange on
// 127.0.0.1 and evaluates a certificate binding on the identity taken from
// the verified peer certificate.
func TestClientCertificateIdentity(t *testing.T) {
	ca, err := pki.LoadOrCreateCA(t.TempDir(), "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	_, _, serverCert, err := ca.Issue(pki.IssueRequest{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.UsageServer})
	if err != nil {
		t.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://prod.example/ns/ci/sa/builder")
	_, _, clientCert, err := ca.Issue(pki.IssueRequest{CommonName: "builder", URIs: []*url.URL{spiffe}, Usage: pki.UsageClient, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{*serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := make(chan *identity.Identity, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- identity.FromCertificate(r.TLS.PeerCertificates[0])
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{*clientCert}, MinVersion: tls.VersionTLS12,
	}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + ln.Addr().String() + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := <-ids

	if id.Source != identity.SourceClientCert || !strings.HasPrefix(id.Subject, "CN=builder") || id.Subject != id.Certificate.Subject.String() || len(id.URISANs) != 1 || id.URISANs[0] != spiffe.String() {
		t.Fatalf("identity %+v", id)
	}
	if id.Certificate == nil || !id.Expiry.Equal(id.Certificate.NotAfter) {
		t.Errorf("expiry %s, certificate %v", id.Expiry, id.Certificate)
	}

	allow, err := identity.CompileBinding("b", "ci", &model.IdentityBindingSpec{ClientCertURISAN: "spiffe://prod.example/ns/ci/sa/*", AllowedPaths: []string{"/jobs/**"}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, reason := allow.Allows(id, identity.Request{Method: "GET", Path: "/jobs"}, time.Now()); !ok {
		t.Errorf("denied: %s", reason)
	}
	deny, err := identity.CompileBinding("b", "prod", &model.IdentityBindingSpec{ClientCertURISAN: "spiffe://prod.example/ns/prod/sa/*"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, reason := deny.Allows(id, identity.Request{Method: "GET", Path: "/jobs"}, time.Now()); ok || reason != identity.ReasonURISANMismatch {
		t.Errorf("prod binding: %v %q", ok, reason)
	}

	if identity.FromCertificate(nil) != nil {
		t.Error("FromCertificate(nil) is not nil")
	}
}
