package store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// fixture is a Store over a real bolt file in a temp dir, sealing with a
// random key.
type fixture struct {
	t  *testing.T
	st *store.Store
	be *boltstore.Backend
	w  store.Writer
}

// newTestSealer returns a sealer under a fresh random key.
func newTestSealer(t *testing.T) *seal.Sealer {
	t.Helper()
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	be, err := boltstore.Open(filepath.Join(t.TempDir(), "sallyport.db"))
	if err != nil {
		t.Fatalf("opening the bolt store: %v", err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("closing the bolt store: %v", err)
		}
	})
	sealer := newTestSealer(t)
	return &fixture{t: t, st: store.New(be, sealer), be: be, w: store.Writer{Actor: "admin-token:test", RequestID: "req-test"}}
}

func (f *fixture) create(name string, spec model.Spec) *model.Resource {
	f.t.Helper()
	r, err := f.st.Create(context.Background(), f.w, name, spec)
	if err != nil {
		f.t.Fatalf("creating %s %q: %v", spec.Kind(), name, err)
	}
	return r
}

func (f *fixture) get(kind model.Kind, id string) *model.Resource {
	f.t.Helper()
	r, err := f.st.Get(context.Background(), kind, id)
	if err != nil {
		f.t.Fatalf("getting %s: %v", id, err)
	}
	return r
}

func (f *fixture) replace(r *model.Resource, name string, spec model.Spec) *model.Resource {
	f.t.Helper()
	out, err := f.st.Replace(context.Background(), f.w, spec.Kind(), r.ID, 0, name, spec)
	if err != nil {
		f.t.Fatalf("replacing %s: %v", r.ID, err)
	}
	return out
}

func (f *fixture) revision() uint64 {
	f.t.Helper()
	rev, err := f.be.Revision(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return rev
}

func (f *fixture) audit(q model.AuditQuery) []model.AuditEntry {
	f.t.Helper()
	es, err := f.st.Audit(context.Background(), q)
	if err != nil {
		f.t.Fatalf("Audit(%+v): %v", q, err)
	}
	return es
}

// buckets every Store write may touch.
func allBuckets() []string {
	bs := []string{store.BucketMeta, store.BucketSecrets, store.BucketStatus, store.BucketAudit}
	for _, k := range model.Kinds {
		bs = append(bs, store.ObjectBucket(string(k)))
	}
	return bs
}

// snapshot reads every key of every bucket, raw.
func (f *fixture) snapshot() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	err := f.be.View(context.Background(), func(tx store.Tx) error {
		for _, b := range allBuckets() {
			if err := tx.Scan(b, "", func(k string, v []byte) error {
				out[b+"|"+k] = string(v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// rawRecord is the stored bytes of an object.
func (f *fixture) rawRecord(kind model.Kind, id string) []byte {
	f.t.Helper()
	var raw []byte
	err := f.be.View(context.Background(), func(tx store.Tx) error {
		var err error
		raw, err = tx.Get(store.ObjectBucket(string(kind)), id)
		return err
	})
	if err != nil {
		f.t.Fatalf("reading the record of %s: %v", id, err)
	}
	return raw
}

// secretPaths lists the field paths under which id has a stored secret.
func (f *fixture) secretPaths(id string) []string {
	f.t.Helper()
	var paths []string
	prefix := id + "\x00"
	err := f.be.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(store.BucketSecrets, prefix, func(k string, _ []byte) error {
			if !strings.HasPrefix(k, prefix) {
				return store.ErrStop
			}
			paths = append(paths, strings.TrimPrefix(k, prefix))
			return nil
		})
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return paths
}

// assertNoPlaintext fails if any stored byte (any bucket, keys and values)
// contains one of the secrets or its usual encodings.
func (f *fixture) assertNoPlaintext(secrets ...string) {
	f.t.Helper()
	for k, v := range f.snapshot() {
		for _, s := range secrets {
			for _, enc := range encodings(s) {
				if strings.Contains(k, enc) || strings.Contains(v, enc) {
					f.t.Errorf("stored entry %q holds a secret value (or an encoding of it)", strings.ReplaceAll(k, "\x00", "\\0"))
				}
			}
		}
	}
}

func encodings(s string) []string {
	return []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s))}
}

// certKey is a self-signed ECDSA certificate and its PKCS#8 key.
type certKey struct{ certPEM, keyPEM string }

func newCertKey(t *testing.T, cn string) certKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certKey{
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}
}

func selfSigned() *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{Certificate: model.CertificateSpec{Source: model.SourceSelfSigned}}
}

func staticTLS(certPEM, keyPEM string) *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{Certificate: model.CertificateSpec{
		Source: model.SourceStatic,
		Static: &model.StaticCertificateSpec{CertPEM: certPEM, KeyPEM: model.NewSecret(keyPEM)},
	}}
}

func acmeTLS(hmac string) *model.TLSSettingsSpec {
	return &model.TLSSettingsSpec{Certificate: model.CertificateSpec{
		Source: model.SourceACME,
		ACME: &model.ACMESpec{
			DirectoryURL: "https://acme.example.com/directory",
			Email:        "ops@example.com",
			EABKeyID:     "kid-1",
			EABHMAC:      model.NewSecret(hmac),
		},
	}}
}

func gateway(tlsID string, hostnames ...string) *model.GatewaySpec {
	return &model.GatewaySpec{ListenAddr: "127.0.0.1:8444", Hostnames: hostnames, TLSSettingsID: tlsID}
}

func connection(gwID string, headers map[string]string) *model.ConnectionSpec {
	s := &model.ConnectionSpec{
		GatewayID:   gwID,
		Protocol:    model.ProtocolHTTP,
		Hostname:    "api.example.com",
		PathPrefix:  "/v1",
		UpstreamURL: "https://executor.example.com",
	}
	if headers != nil {
		s.InjectHeaders = map[string]*model.Secret{}
		for k, v := range headers {
			s.InjectHeaders[k] = model.NewSecret(v)
		}
	}
	return s
}

func binding(connID, subject string) *model.IdentityBindingSpec {
	return &model.IdentityBindingSpec{ConnectionID: connID, Issuer: "https://idp.example.com", Subject: subject}
}

// randomHMAC is an EAB HMAC key as a CA issues it: base64url.
func randomHMAC(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func specJSON(t *testing.T, s model.Spec) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(rs []*model.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func sorted(ss ...string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// wantProblemAt fails unless err is model.Problems with a problem at field.
func wantProblemAt(t *testing.T, err error, field string) model.Problems {
	t.Helper()
	var ps model.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got error %v (%T), want model.Problems at %s", err, err, field)
	}
	for _, p := range ps {
		if p.Field == field {
			return ps
		}
	}
	t.Fatalf("got problems %v, want one at %s", ps, field)
	return nil
}

func TestCreateGetList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	before := time.Now().Add(-time.Second)
	tls1 := f.create("edge", selfSigned())
	tls2 := f.create("upstream", selfSigned())
	if !strings.HasPrefix(tls1.ID, model.KindTLSSettings.IDPrefix()) || tls1.ID == tls2.ID {
		t.Errorf("ids %q and %q: want distinct ids with prefix %q", tls1.ID, tls2.ID, model.KindTLSSettings.IDPrefix())
	}
	if tls1.Generation != 1 {
		t.Errorf("generation on create = %d, want 1", tls1.Generation)
	}
	if tls1.CreatedAt.Before(before) || !tls1.CreatedAt.Equal(tls1.UpdatedAt) {
		t.Errorf("created_at %v, updated_at %v: want both set to the create time", tls1.CreatedAt, tls1.UpdatedAt)
	}
	if tls1.Status.Ready || tls1.Status.ObservedGeneration != 0 {
		t.Errorf("status on create = %+v, want not ready, nothing observed", tls1.Status)
	}

	got := f.get(model.KindTLSSettings, tls1.ID)
	if got.ID != tls1.ID || got.Name != "edge" || got.Generation != 1 || !got.CreatedAt.Equal(tls1.CreatedAt) || !got.UpdatedAt.Equal(tls1.UpdatedAt) {
		t.Errorf("Get = %+v, want what Create returned: %+v", got, tls1)
	}
	// Normalize filled the defaults, and the stored spec is the one returned.
	if s := got.Spec.(*model.TLSSettingsSpec); s.MinVersion != model.TLS12 || s.ClientAuth != model.ClientAuthNone {
		t.Errorf("stored spec %+v: want defaults min_version 1.2, client_auth none", s)
	}
	if a, b := specJSON(t, got.Spec), specJSON(t, tls1.Spec); a != b {
		t.Errorf("Get spec %s != Create spec %s", a, b)
	}

	_, err := f.st.Get(ctx, model.KindTLSSettings, "tls_doesnotexist")
	var nf *store.NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an unknown id: %v, want *NotFoundError matching ErrNotFound", err)
	}
	// An id of one kind is not found as another kind.
	if _, err := f.st.Get(ctx, model.KindGateway, tls1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a TLS settings id as a gateway: %v, want not found", err)
	}

	gw1 := f.create("gw-one", gateway(tls1.ID, "one.example.com"))
	gw2 := f.create("gw-two", gateway(tls1.ID, "two.example.com"))
	c1 := f.create("api", connection(gw1.ID, nil))
	c2 := f.create("api", connection(gw2.ID, nil))
	c3 := f.create("web", connection(gw1.ID, nil))
	b1 := f.create("ci", binding(c1.ID, "ci"))

	all, err := f.st.List(ctx, model.KindTLSSettings, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), sorted(tls1.ID, tls2.ID); !slices.Equal(got, want) {
		t.Errorf("List tls settings = %v, want %v", got, want)
	}
	if !slices.IsSortedFunc(all, func(a, b *model.Resource) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("List is not in id order")
	}
	for _, tc := range []struct {
		name string
		kind model.Kind
		opts store.ListOptions
		want []string
	}{
		{"by name", model.KindTLSSettings, store.ListOptions{Name: "upstream"}, []string{tls2.ID}},
		{"unknown name", model.KindTLSSettings, store.ListOptions{Name: "nope"}, nil},
		{"connections of gw1", model.KindConnection, store.ListOptions{Parent: gw1.ID}, sorted(c1.ID, c3.ID)},
		{"connections of gw2", model.KindConnection, store.ListOptions{Parent: gw2.ID}, []string{c2.ID}},
		{"connections named api", model.KindConnection, store.ListOptions{Name: "api"}, sorted(c1.ID, c2.ID)},
		{"api under gw2", model.KindConnection, store.ListOptions{Name: "api", Parent: gw2.ID}, []string{c2.ID}},
		{"web under gw2", model.KindConnection, store.ListOptions{Name: "web", Parent: gw2.ID}, nil},
		{"bindings of c1", model.KindIdentityBinding, store.ListOptions{Parent: c1.ID}, []string{b1.ID}},
		{"bindings of c2", model.KindIdentityBinding, store.ListOptions{Parent: c2.ID}, nil},
		{"all gateways", model.KindGateway, store.ListOptions{}, sorted(gw1.ID, gw2.ID)},
	} {
		got, err := f.st.List(ctx, tc.kind, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if g := ids(got); !slices.Equal(g, tc.want) && (len(g) != 0 || len(tc.want) != 0) {
			t.Errorf("%s: List = %v, want %v", tc.name, g, tc.want)
		}
	}

	counts, err := f.st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[model.Kind]int{model.KindTLSSettings: 2, model.KindGateway: 2, model.KindConnection: 3, model.KindIdentityBinding: 1}
	if !maps.Equal(counts, want) {
		t.Errorf("Counts = %v, want %v", counts, want)
	}
}

func TestGenerations(t *testing.T) {
	f := newFixture(t)
	tls := f.create("edge", selfSigned())
	gw := f.create("gw", gateway(tls.ID, "a.example.com", "b.example.com"))
	if gw.Generation != 1 {
		t.Fatalf("generation on create = %d, want 1", gw.Generation)
	}
	entries := len(f.audit(model.AuditQuery{}))

	// The same intent written again, even in another order (hostnames are
	// a set), is not a change.
	same := f.replace(gw, "gw", gateway(tls.ID, "b.example.com", "a.example.com"))
	if same.Generation != 1 || !same.UpdatedAt.Equal(gw.UpdatedAt) {
		t.Errorf("identical replace: generation %d, updated_at %v; want 1 and %v unchanged", same.Generation, same.UpdatedAt, gw.UpdatedAt)
	}
	if n := len(f.audit(model.AuditQuery{})); n != entries {
		t.Errorf("identical replace wrote %d audit entries, want none", n-entries)
	}
	if got := f.get(model.KindGateway, gw.ID); got.Generation != 1 {
		t.Errorf("stored generation after identical replace = %d, want 1", got.Generation)
	}

	// A real spec change bumps the generation once.
	changed := f.replace(gw, "gw", gateway(tls.ID, "a.example.com", "c.example.com"))
	if changed.Generation != 2 {
		t.Errorf("generation after a spec change = %d, want 2", changed.Generation)
	}
	if changed.UpdatedAt.Before(gw.UpdatedAt) || !changed.CreatedAt.Equal(gw.CreatedAt) {
		t.Errorf("after a change: created_at %v (was %v), updated_at %v (was %v)", changed.CreatedAt, gw.CreatedAt, changed.UpdatedAt, gw.UpdatedAt)
	}
	got := f.get(model.KindGateway, gw.ID)
	if got.Generation != 2 || !slices.Equal(got.Spec.(*model.GatewaySpec).Hostnames, []string{"a.example.com", "c.example.com"}) {
		t.Errorf("stored after change: generation %d, spec %+v", got.Generation, got.Spec)
	}

	// A rename alone is a change.
	renamed := f.replace(got, "gw-renamed", gateway(tls.ID, "a.example.com", "c.example.com"))
	if renamed.Generation != 3 || f.get(model.KindGateway, gw.ID).Name != "gw-renamed" {
		t.Errorf("rename: generation %d, want 3", renamed.Generation)
	}

	// Writing back exactly what was read changes nothing.
	read := f.get(model.KindGateway, gw.ID)
	again := f.replace(read, read.Name, read.Spec)
	if again.Generation != 3 {
		t.Errorf("writing back the object as read: generation %d, want 3", again.Generation)
	}

	// Status is the reconciler's: it never bumps the generation.
	if err := f.st.SetStatus(context.Background(), model.KindGateway, gw.ID, model.Status{Ready: true, ObservedGeneration: 3}); err != nil {
		t.Fatal(err)
	}
	st := f.get(model.KindGateway, gw.ID)
	if st.Generation != 3 || !st.Status.Ready || st.Status.ObservedGeneration != 3 {
		t.Errorf("after SetStatus: generation %d, status %+v", st.Generation, st.Status)
	}
	// A spec replace keeps the status the reconciler wrote.
	kept := f.replace(st, st.Name, gateway(tls.ID, "d.example.com"))
	if kept.Generation != 4 || !kept.Status.Ready || kept.Status.ObservedGeneration != 3 {
		t.Errorf("after replace: generation %d, status %+v; want 4 and the reconciler's status kept", kept.Generation, kept.Status)
	}

	audit := f.audit(model.AuditQuery{ObjectID: gw.ID})
	var gens [][2]int64
	for _, e := range audit {
		gens = append(gens, [2]int64{e.GenerationBefore, e.GenerationAfter})
	}
	if want := [][2]int64{{0, 1}, {1, 2}, {2, 3}, {3, 4}}; !slices.Equal(gens, want) {
		t.Errorf("audit generations of the gateway = %v, want %v", gens, want)
	}
}

func TestSecretsSealedAndNeverReturned(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ck := newCertKey(t, "edge.example.com")

	created := f.create("edge", staticTLS(ck.certPEM, ck.keyPEM))
	cs := created.Spec.(*model.TLSSettingsSpec).Certificate.Static.KeyPEM
	if cs.Value != "" || !cs.Set || !strings.HasPrefix(cs.Version, seal.FingerprintPrefix) {
		t.Errorf("Create returned key_pem %s, want set with a version and no value", cs)
	}

	// The stored record never holds the key; the sealed value does not
	// either, and no other bucket does.
	raw := f.rawRecord(model.KindTLSSettings, created.ID)
	if bytes.Contains(raw, []byte(ck.keyPEM)) || bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Errorf("the stored record holds the private key: %s", raw)
	}
	f.assertNoPlaintext(ck.keyPEM)
	if got := f.secretPaths(created.ID); !slices.Equal(got, []string{model.PathKeyPEM}) {
		t.Errorf("stored secrets of the object = %v, want [%s]", got, model.PathKeyPEM)
	}

	got := f.get(model.KindTLSSettings, created.ID)
	s := got.Spec.(*model.TLSSettingsSpec).Certificate.Static.KeyPEM
	if s == nil || s.Value != "" || !s.Set || s.Version != cs.Version {
		t.Fatalf("Get returned key_pem %s, want set, version %s, no value", s, cs.Version)
	}
	list, err := f.st.List(ctx, model.KindTLSSettings, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if strings.Contains(specJSON(t, r.Spec), "PRIVATE KEY") {
			t.Errorf("List returned the private key of %s", r.ID)
		}
	}
	v, err := f.st.SecretValue(ctx, created.ID, model.PathKeyPEM)
	if err != nil || v != ck.keyPEM {
		t.Errorf("SecretValue = %q, %v; want the plaintext key", v, err)
	}

	// Writing back the object as read keeps the key: same version, same
	// generation, same plaintext.
	back := f.replace(got, got.Name, got.Spec)
	if bs := back.Spec.(*model.TLSSettingsSpec).Certificate.Static.KeyPEM; back.Generation != 1 || bs.Version != cs.Version || !bs.Set {
		t.Errorf("write-back: generation %d, key_pem %s; want 1 and version %s", back.Generation, bs, cs.Version)
	}
	if v, _ := f.st.SecretValue(ctx, created.ID, model.PathKeyPEM); v != ck.keyPEM {
		t.Errorf("after write-back the stored key changed")
	}
	// Even a spec change elsewhere keeps the stored key when the secret is
	// sent without a value.
	tweak := f.get(model.KindTLSSettings, created.ID)
	tweak.Spec.(*model.TLSSettingsSpec).MinVersion = model.TLS13
	tweaked := f.replace(tweak, tweak.Name, tweak.Spec)
	if ts := tweaked.Spec.(*model.TLSSettingsSpec).Certificate.Static.KeyPEM; tweaked.Generation != 2 || ts.Version != cs.Version {
		t.Errorf("spec change keeping the key: generation %d, key version %s; want 2, %s", tweaked.Generation, ts.Version, cs.Version)
	}
	if v, _ := f.st.SecretValue(ctx, created.ID, model.PathKeyPEM); v != ck.keyPEM {
		t.Errorf("a spec change without a new key value changed the stored key")
	}

	// A new value (a new certificate and key) changes the version and the
	// generation.
	ck2 := newCertKey(t, "edge.example.com")
	rotated := f.replace(tweaked, tweaked.Name, staticTLS(ck2.certPEM, ck2.keyPEM))
	rs := rotated.Spec.(*model.TLSSettingsSpec).Certificate.Static.KeyPEM
	if rotated.Generation != 3 || rs.Version == cs.Version || rs.Value != "" {
		t.Errorf("new key: generation %d, key_pem %s; want 3 and a new version (was %s)", rotated.Generation, rs, cs.Version)
	}
	if v, _ := f.st.SecretValue(ctx, created.ID, model.PathKeyPEM); v != ck2.keyPEM {
		t.Errorf("SecretValue after rotation is not the new key")
	}
	// The same value sent again is not a change: versions are of values.
	sameAgain := f.replace(rotated, rotated.Name, staticTLS(ck2.certPEM, ck2.keyPEM))
	if sameAgain.Generation != 3 {
		t.Errorf("re-sending the same key value: generation %d, want 3", sameAgain.Generation)
	}
	f.assertNoPlaintext(ck.keyPEM, ck2.keyPEM)

	// Switching the source away from static drops the key.
	dropped := f.replace(sameAgain, sameAgain.Name, selfSigned())
	if dropped.Generation != 4 {
		t.Errorf("switching to self_signed: generation %d, want 4", dropped.Generation)
	}
	if got := f.secretPaths(created.ID); len(got) != 0 {
		t.Errorf("secrets left after the key was dropped: %v", got)
	}
	if _, err := f.st.SecretValue(ctx, created.ID, model.PathKeyPEM); err == nil {
		t.Errorf("SecretValue of a dropped key succeeded")
	}
}

func TestSecretRemovalAndObjectDeletion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	hmac := randomHMAC(t)
	acme := f.create("acme", acmeTLS(hmac))
	if got := f.secretPaths(acme.ID); !slices.Equal(got, []string{model.PathEABHMAC}) {
		t.Fatalf("stored secrets = %v, want the EAB HMAC", got)
	}
	if v, _ := f.st.SecretValue(ctx, acme.ID, model.PathEABHMAC); v != hmac {
		t.Errorf("SecretValue of the EAB HMAC is not the value written")
	}

	gw := f.create("gw", gateway(acme.ID, "gw.example.com"))
	conn := f.create("api", connection(gw.ID, map[string]string{
		"Authorization": "Bearer upstream-token-1",
		"X-Api-Key":     "upstream-key-1",
	}))
	authPath, keyPath := model.InjectHeaderPath("Authorization"), model.InjectHeaderPath("X-Api-Key")
	if got := f.secretPaths(conn.ID); !slices.Equal(got, sorted(authPath, keyPath)) {
		t.Fatalf("stored secrets of the connection = %v", got)
	}
	f.assertNoPlaintext(hmac, "Bearer upstream-token-1", "upstream-key-1")

	// Removing one header (nil) deletes its secret and keeps the other.
	c := f.get(model.KindConnection, conn.ID)
	cs := c.Spec.(*model.ConnectionSpec)
	keyVersion := cs.InjectHeaders["X-Api-Key"].Version
	delete(cs.InjectHeaders, "Authorization")
	c2 := f.replace(c, c.Name, cs)
	if c2.Generation != 2 {
		t.Errorf("removing a header: generation %d, want 2", c2.Generation)
	}
	if got := f.secretPaths(conn.ID); !slices.Equal(got, []string{keyPath}) {
		t.Errorf("stored secrets after removing a header = %v, want [%s]", got, keyPath)
	}
	if v, _ := f.st.SecretValue(ctx, conn.ID, keyPath); v != "upstream-key-1" {
		t.Errorf("the kept header lost its value")
	}
	if h := f.get(model.KindConnection, conn.ID).Spec.(*model.ConnectionSpec).InjectHeaders; len(h) != 1 || h["X-Api-Key"].Version != keyVersion {
		t.Errorf("inject_headers after removal = %v", h)
	}

	// Removing the EAB binding deletes the HMAC.
	a := f.get(model.KindTLSSettings, acme.ID)
	as := a.Spec.(*model.TLSSettingsSpec)
	as.Certificate.ACME.EABKeyID, as.Certificate.ACME.EABHMAC = "", nil
	if r := f.replace(a, a.Name, as); r.Generation != 2 {
		t.Errorf("removing the EAB HMAC: generation %d, want 2", r.Generation)
	}
	if got := f.secretPaths(acme.ID); len(got) != 0 {
		t.Errorf("stored secrets after removing the EAB HMAC = %v, want none", got)
	}

	// Deleting an object deletes its secrets.
	if err := f.st.Delete(ctx, f.w, model.KindConnection, conn.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.secretPaths(conn.ID); len(got) != 0 {
		t.Errorf("secrets left after deleting the connection: %v", got)
	}
	if _, err := f.st.SecretValue(ctx, conn.ID, keyPath); err == nil {
		t.Errorf("SecretValue of a deleted object succeeded")
	}
	if snap := f.snapshot(); len(snap) > 0 {
		for k := range snap {
			if strings.HasPrefix(k, store.BucketSecrets+"|") {
				t.Errorf("the secrets bucket still holds %q", strings.ReplaceAll(k, "\x00", "\\0"))
			}
			if strings.HasPrefix(k, store.BucketStatus+"|"+conn.ID) {
				t.Errorf("the status of the deleted connection is still stored")
			}
		}
	}
}

func TestSecretWithoutValueOnCreate(t *testing.T) {
	f := newFixture(t)
	ck := newCertKey(t, "edge.example.com")
	for _, tc := range []struct {
		name  string
		spec  func(gwID string) model.Spec
		field string
	}{
		{"static key", func(string) model.Spec {
			s := staticTLS(ck.certPEM, "")
			s.Certificate.Static.KeyPEM = &model.Secret{Set: true, Version: "hmac-sha256:00000000000000000000000000000000"}
			return s
		}, model.PathKeyPEM},
		{"eab hmac", func(string) model.Spec {
			s := acmeTLS("")
			s.Certificate.ACME.EABHMAC = &model.Secret{}
			return s
		}, model.PathEABHMAC},
		{"header", func(gwID string) model.Spec {
			s := connection(gwID, nil)
			s.InjectHeaders = map[string]*model.Secret{"Authorization": {Set: true}}
			return s
		}, model.InjectHeaderPath("Authorization")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tls := f.create("tls-"+strings.ReplaceAll(tc.name, " ", "-"), selfSigned())
			gw := f.create("gw-"+strings.ReplaceAll(tc.name, " ", "-"), gateway(tls.ID, "gw.example.com"))
			before := f.snapshot()
			_, err := f.st.Create(context.Background(), f.w, "x", tc.spec(gw.ID))
			_ = wantProblemAt(t, err, tc.field)
			if !maps.Equal(before, f.snapshot()) {
				t.Errorf("a rejected create changed the store")
			}
		})
	}
}

func TestStaticKeyMustMatchCertificate(t *testing.T) {
	f := newFixture(t)
	a, b := newCertKey(t, "a.example.com"), newCertKey(t, "b.example.com")
	before := f.snapshot()
	_, err := f.st.Create(context.Background(), f.w, "mismatch", staticTLS(a.certPEM, b.keyPEM))
	ps := wantProblemAt(t, err, model.PathKeyPEM)
	if strings.Contains(ps.Error(), "PRIVATE KEY") || strings.Contains(ps.Error(), b.keyPEM) {
		t.Errorf("the problem quotes the key: %v", ps)
	}
	if !maps.Equal(before, f.snapshot()) {
		t.Errorf("a rejected create changed the store")
	}

	// On replace, a stored key is checked against a new certificate.
	ok := f.create("edge", staticTLS(a.certPEM, a.keyPEM))
	read := f.get(model.KindTLSSettings, ok.ID)
	rs := read.Spec.(*model.TLSSettingsSpec)
	rs.Certificate.Static.CertPEM = b.certPEM // keep key a, send cert b
	before = f.snapshot()
	_, err = f.st.Replace(context.Background(), f.w, model.KindTLSSettings, ok.ID, 0, read.Name, rs)
	_ = wantProblemAt(t, err, model.PathKeyPEM)
	if !maps.Equal(before, f.snapshot()) {
		t.Errorf("a rejected replace changed the store")
	}
	// A garbage key is a problem at the same field, and is not quoted.
	_, err = f.st.Create(context.Background(), f.w, "garbage", staticTLS(a.certPEM, "not-a-key-s3cr3t"))
	ps = wantProblemAt(t, err, model.PathKeyPEM)
	if strings.Contains(ps.Error(), "not-a-key-s3cr3t") {
		t.Errorf("the problem quotes the key: %v", ps)
	}
}

func TestReferentialIntegrity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tls := f.create("edge", selfSigned())
	gw := f.create("gw", gateway(tls.ID, "gw.example.com"))
	conn := f.create("api", connection(gw.ID, nil))

	for _, tc := range []struct {
		name    string
		spec    model.Spec
		field   string
		missing string
	}{
		{"connection with unknown gateway", connection("gw_unknown", nil), "spec.gateway_id", "gw_unknown"},
		{"connection with a TLS settings id as gateway", connection(tls.ID, nil), "spec.gateway_id", tls.ID},
		{"gateway with unknown TLS settings", gateway("tls_unknown", "x.example.com"), "spec.tls_settings_id", "tls_unknown"},
		{"binding with unknown connection", binding("conn_unknown", "ci"), "spec.connection_id", "conn_unknown"},
		{"connection with unknown upstream TLS settings", func() model.Spec {
			s := connection(gw.ID, nil)
			s.UpstreamTLSSettingsID = "tls_unknown"
			return s
		}(), "spec.upstream_tls_settings_id", "tls_unknown"},
	} {
		before := f.snapshot()
		_, err := f.st.Create(ctx, f.w, "dangling", tc.spec)
		ps := wantProblemAt(t, err, tc.field)
		if !strings.Contains(ps.Error(), tc.missing) {
			t.Errorf("%s: problem %v does not name the missing id", tc.name, ps)
		}
		if !maps.Equal(before, f.snapshot()) {
			t.Errorf("%s: a rejected create changed the store", tc.name)
		}
	}

	// A replace that points at something missing is refused too.
	read := f.get(model.KindConnection, conn.ID)
	cs := read.Spec.(*model.ConnectionSpec)
	cs.GatewayID = "gw_gone"
	_, err := f.st.Replace(ctx, f.w, model.KindConnection, conn.ID, 0, read.Name, cs)
	_ = wantProblemAt(t, err, "spec.gateway_id")
	if got := f.get(model.KindConnection, conn.ID); got.Spec.(*model.ConnectionSpec).GatewayID != gw.ID || got.Generation != 1 {
		t.Errorf("a rejected replace changed the connection: %+v", got)
	}
}

func TestNameScopes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tls := f.create("edge", selfSigned())

	_, err := f.st.Create(ctx, f.w, "edge", selfSigned())
	var ce *store.ConflictError
	if !errors.As(err, &ce) || !strings.Contains(ce.Error(), "edge") || !strings.Contains(ce.Error(), tls.ID) {
		t.Errorf("second TLS settings named edge: %v, want *ConflictError naming the holder", err)
	}

	gw1 := f.create("gw", gateway(tls.ID, "one.example.com"))
	if _, err := f.st.Create(ctx, f.w, "gw", gateway(tls.ID, "two.example.com")); !errors.As(err, &ce) {
		t.Errorf("second gateway named gw: %v, want *ConflictError (gateway names are global)", err)
	}
	// Names are scoped per kind: a gateway may share a TLS settings' name.
	f.create("edge", gateway(tls.ID, "edge.example.com"))
	gw2 := f.create("gw2", gateway(tls.ID, "two.example.com"))

	// Connection names are per gateway.
	c1 := f.create("api", connection(gw1.ID, nil))
	c2 := f.create("api", connection(gw2.ID, nil))
	if _, err := f.st.Create(ctx, f.w, "api", connection(gw1.ID, nil)); !errors.As(err, &ce) {
		t.Errorf("second connection api under gw: %v, want *ConflictError", err)
	}
	// Moving c2 to gw1 would clash.
	read := f.get(model.KindConnection, c2.ID)
	read.Spec.(*model.ConnectionSpec).GatewayID = gw1.ID
	if _, err := f.st.Replace(ctx, f.w, model.KindConnection, c2.ID, 0, read.Name, read.Spec); !errors.As(err, &ce) {
		t.Errorf("moving connection api under a gateway that has one: %v, want *ConflictError", err)
	}
	// Renaming into a taken name clashes; keeping one's own name does not.
	other := f.create("other", selfSigned())
	ro := f.get(model.KindTLSSettings, other.ID)
	if _, err := f.st.Replace(ctx, f.w, model.KindTLSSettings, other.ID, 0, "edge", ro.Spec); !errors.As(err, &ce) {
		t.Errorf("renaming TLS settings to a taken name: %v, want *ConflictError", err)
	}
	if got := f.get(model.KindTLSSettings, other.ID); got.Name != "other" {
		t.Errorf("a refused rename changed the name to %q", got.Name)
	}

	// Binding names are per connection.
	f.create("ci", binding(c1.ID, "ci"))
	f.create("ci", binding(c2.ID, "ci"))
	if _, err := f.st.Create(ctx, f.w, "ci", binding(c1.ID, "other")); !errors.As(err, &ce) {
		t.Errorf("second binding ci on the same connection: %v, want *ConflictError", err)
	}

	// Invalid names are field problems, not conflicts.
	_, err = f.st.Create(ctx, f.w, "-bad name", selfSigned())
	_ = wantProblemAt(t, err, "name")
}

func TestDeleteWithDependents(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tls := f.create("edge", selfSigned())
	up := f.create("upstream", selfSigned())
	gw := f.create("gw", gateway(tls.ID, "gw.example.com"))
	cs := connection(gw.ID, nil)
	cs.UpstreamTLSSettingsID = up.ID
	conn := f.create("api", cs)
	conn2 := f.create("web", connection(gw.ID, nil))
	b := f.create("ci", binding(conn.ID, "ci"))

	wantDeps := func(kind model.Kind, id string, want ...model.ObjectRef) {
		t.Helper()
		before := f.snapshot()
		err := f.st.Delete(ctx, f.w, kind, id, 0)
		var ce *store.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("deleting %s: %v, want *ConflictError", id, err)
		}
		got := slices.Clone(ce.Dependents)
		slices.SortFunc(got, func(a, b model.ObjectRef) int { return strings.Compare(a.ID, b.ID) })
		slices.SortFunc(want, func(a, b model.ObjectRef) int { return strings.Compare(a.ID, b.ID) })
		if !slices.Equal(got, want) {
			t.Errorf("deleting %s: dependents %v, want %v", id, got, want)
		}
		for _, d := range want {
			if !strings.Contains(err.Error(), d.ID) {
				t.Errorf("the error %q does not name %s", err, d.ID)
			}
		}
		if !maps.Equal(before, f.snapshot()) {
			t.Errorf("a refused delete changed the store")
		}
	}
	wantDeps(model.KindTLSSettings, tls.ID, model.ObjectRef{Kind: model.KindGateway, ID: gw.ID, Name: "gw"})
	wantDeps(model.KindTLSSettings, up.ID, model.ObjectRef{Kind: model.KindConnection, ID: conn.ID, Name: "api"})
	wantDeps(model.KindGateway, gw.ID,
		model.ObjectRef{Kind: model.KindConnection, ID: conn.ID, Name: "api"},
		model.ObjectRef{Kind: model.KindConnection, ID: conn2.ID, Name: "web"})
	wantDeps(model.KindConnection, conn.ID, model.ObjectRef{Kind: model.KindIdentityBinding, ID: b.ID, Name: "ci"})

	// Deleting leaves first frees the rest.
	for _, o := range []struct {
		kind model.Kind
		id   string
	}{{model.KindIdentityBinding, b.ID}, {model.KindConnection, conn.ID}, {model.KindConnection, conn2.ID}, {model.KindGateway, gw.ID}, {model.KindTLSSettings, tls.ID}, {model.KindTLSSettings, up.ID}} {
		if err := f.st.Delete(ctx, f.w, o.kind, o.id, 0); err != nil {
			t.Fatalf("deleting %s: %v", o.id, err)
		}
		if _, err := f.st.Get(ctx, o.kind, o.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get after delete of %s: %v, want not found", o.id, err)
		}
	}
	if err := f.st.Delete(ctx, f.w, model.KindTLSSettings, tls.ID, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting twice: %v, want not found", err)
	}
}

func TestIfMatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tls := f.create("edge", selfSigned())
	gw := f.create("gw", gateway(tls.ID, "a.example.com"))

	// The generation the caller read matches.
	r, err := f.st.Replace(ctx, f.w, model.KindGateway, gw.ID, 1, "gw", gateway(tls.ID, "b.example.com"))
	if err != nil || r.Generation != 2 {
		t.Fatalf("replace with a current If-Match: %v, generation %d", err, r.Generation)
	}
	// A stale one does not.
	before := f.snapshot()
	_, err = f.st.Replace(ctx, f.w, model.KindGateway, gw.ID, 1, "gw", gateway(tls.ID, "c.example.com"))
	var pe *store.PreconditionFailedError
	if !errors.As(err, &pe) || pe.Expected != 1 || pe.Current != 2 {
		t.Errorf("replace with a stale If-Match: %v, want *PreconditionFailedError{1, 2}", err)
	}
	if err := f.st.Delete(ctx, f.w, model.KindGateway, gw.ID, 1); !errors.As(err, &pe) {
		t.Errorf("delete with a stale If-Match: %v, want *PreconditionFailedError", err)
	}
	if !maps.Equal(before, f.snapshot()) {
		t.Errorf("refused writes changed the store")
	}
	if err := f.st.Delete(ctx, f.w, model.KindGateway, gw.ID, 2); err != nil {
		t.Errorf("delete with a current If-Match: %v", err)
	}
}

// TestRejectedWritesLeaveNoTrace checks that every kind of refused write
// leaves the store byte for byte as it was: objects, secrets, status, the
// audit log and the revision.
func TestRejectedWritesLeaveNoTrace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ck, other := newCertKey(t, "edge.example.com"), newCertKey(t, "other.example.com")
	tls := f.create("edge", staticTLS(ck.certPEM, ck.keyPEM))
	gw := f.create("gw", gateway(tls.ID, "gw.example.com"))
	conn := f.create("api", connection(gw.ID, map[string]string{"Authorization": "Bearer old"}))
	web := f.create("web", connection(gw.ID, nil))
	connRead := func() *model.Resource { return f.get(model.KindConnection, conn.ID) }

	for _, tc := range []struct {
		name  string
		write func() error
		check func(error) bool
	}{
		{"invalid create", func() error {
			_, err := f.st.Create(ctx, f.w, "bad", &model.TLSSettingsSpec{Certificate: model.CertificateSpec{Source: "magic"}})
			return err
		}, isProblems},
		{"name clash", func() error {
			_, err := f.st.Create(ctx, f.w, "edge", selfSigned())
			return err
		}, isConflict},
		{"unknown reference", func() error {
			_, err := f.st.Create(ctx, f.w, "x", connection("gw_nope", map[string]string{"X-Key": "new-secret"}))
			return err
		}, isProblems},
		{"new secret with an invalid spec", func() error {
			r := connRead()
			s := r.Spec.(*model.ConnectionSpec)
			s.InjectHeaders["Authorization"] = model.NewSecret("Bearer new")
			s.UpstreamURL = "http://not-https.example.com"
			_, err := f.st.Replace(ctx, f.w, model.KindConnection, r.ID, 0, r.Name, s)
			return err
		}, isProblems},
		{"new secret with a name clash", func() error {
			r := f.get(model.KindConnection, web.ID)
			s := r.Spec.(*model.ConnectionSpec)
			s.InjectHeaders = map[string]*model.Secret{"X-Key": model.NewSecret("web-secret")}
			_, err := f.st.Replace(ctx, f.w, model.KindConnection, web.ID, 0, "api", s)
			return err
		}, isConflict},
		{"mismatched new key", func() error {
			_, err := f.st.Replace(ctx, f.w, model.KindTLSSettings, tls.ID, 0, "edge", staticTLS(ck.certPEM, other.keyPEM))
			return err
		}, isProblems},
		{"stale If-Match with a new secret", func() error {
			r := connRead()
			s := r.Spec.(*model.ConnectionSpec)
			s.InjectHeaders["Authorization"] = model.NewSecret("Bearer new")
			_, err := f.st.Replace(ctx, f.w, model.KindConnection, r.ID, r.Generation+5, r.Name, s)
			return err
		}, isPrecondition},
		{"unknown id", func() error {
			_, err := f.st.Replace(ctx, f.w, model.KindConnection, "conn_nope", 0, "x", connection(gw.ID, nil))
			return err
		}, func(err error) bool { return errors.Is(err, store.ErrNotFound) }},
		{"spec of another kind", func() error {
			_, err := f.st.Replace(ctx, f.w, model.KindConnection, conn.ID, 0, "api", selfSigned())
			return err
		}, func(err error) bool { return err != nil }},
		{"delete with dependents", func() error {
			return f.st.Delete(ctx, f.w, model.KindGateway, gw.ID, 0)
		}, isConflict},
		{"delete unknown", func() error {
			return f.st.Delete(ctx, f.w, model.KindGateway, "gw_nope", 0)
		}, func(err error) bool { return errors.Is(err, store.ErrNotFound) }},
		{"delete stale", func() error {
			return f.st.Delete(ctx, f.w, model.KindConnection, conn.ID, 7)
		}, isPrecondition},
	} {
		before, rev, audit := f.snapshot(), f.revision(), len(f.audit(model.AuditQuery{}))
		err := tc.write()
		if !tc.check(err) {
			t.Errorf("%s: unexpected error %v (%T)", tc.name, err, err)
		}
		if got := f.revision(); got != rev {
			t.Errorf("%s: revision moved from %d to %d", tc.name, rev, got)
		}
		if got := len(f.audit(model.AuditQuery{})); got != audit {
			t.Errorf("%s: %d audit entries written", tc.name, got-audit)
		}
		if !maps.Equal(before, f.snapshot()) {
			t.Errorf("%s: the store changed", tc.name)
		}
	}
	if v, _ := f.st.SecretValue(ctx, conn.ID, model.InjectHeaderPath("Authorization")); v != "Bearer old" {
		t.Errorf("a refused write changed a stored secret")
	}
	if v, _ := f.st.SecretValue(ctx, tls.ID, model.PathKeyPEM); v != ck.keyPEM {
		t.Errorf("a refused write changed the stored key")
	}
}

func isProblems(err error) bool {
	var ps model.Problems
	return errors.As(err, &ps) && len(ps) > 0
}

func isConflict(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce)
}

func isPrecondition(err error) bool {
	var pe *store.PreconditionFailedError
	return errors.As(err, &pe)
}

func TestAuditEntries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ck := newCertKey(t, "edge.example.com")

	alice := store.Writer{Actor: "admin-token:aaaa", RequestID: "req-create"}
	created, err := f.st.Create(ctx, alice, "edge", staticTLS(ck.certPEM, ck.keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	bob := store.Writer{Actor: "admin-token:bbbb", RequestID: "req-replace"}
	read := f.get(model.KindTLSSettings, created.ID)
	read.Spec.(*model.TLSSettingsSpec).MinVersion = model.TLS13
	if _, err := f.st.Replace(ctx, bob, model.KindTLSSettings, created.ID, 1, "edge-2", read.Spec); err != nil {
		t.Fatal(err)
	}
	carol := store.Writer{Actor: "admin-token:cccc", RequestID: "req-delete"}
	if err := f.st.Delete(ctx, carol, model.KindTLSSettings, created.ID, 2); err != nil {
		t.Fatal(err)
	}

	es := f.audit(model.AuditQuery{})
	if len(es) != 3 {
		t.Fatalf("got %d audit entries, want 3: %+v", len(es), es)
	}
	type summary struct {
		Action, Actor, RequestID, Name string
		Kind                           model.Kind
		ObjectID                       string
		Before, After                  int64
		HasSpec                        bool
	}
	var got []summary
	for i, e := range es {
		if e.Seq == 0 || (i > 0 && e.Seq <= es[i-1].Seq) {
			t.Errorf("entry %d has seq %d: want strictly increasing from 1", i, e.Seq)
		}
		if e.Time.IsZero() {
			t.Errorf("entry %d has no time", i)
		}
		got = append(got, summary{e.Action, e.Actor, e.RequestID, e.Name, e.Kind, e.ObjectID, e.GenerationBefore, e.GenerationAfter, len(e.Spec) > 0})
		if strings.Contains(string(e.Spec), "PRIVATE KEY") {
			t.Errorf("the %s entry holds the private key", e.Action)
		}
	}
	want := []summary{
		{"create", "admin-token:aaaa", "req-create", "edge", model.KindTLSSettings, created.ID, 0, 1, true},
		{"replace", "admin-token:bbbb", "req-replace", "edge-2", model.KindTLSSettings, created.ID, 1, 2, true},
		{"delete", "admin-token:cccc", "req-delete", "edge-2", model.KindTLSSettings, created.ID, 2, 0, false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit entries:\n got %+v\nwant %+v", got, want)
	}
	// The spec recorded is the one stored, secrets as set+version only.
	var spec model.TLSSettingsSpec
	if err := json.Unmarshal(es[1].Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if k := spec.Certificate.Static.KeyPEM; spec.MinVersion != model.TLS13 || k == nil || !k.Set || k.Value != "" || k.Version == "" {
		t.Errorf("audited spec = %+v (key %s)", spec, spec.Certificate.Static.KeyPEM)
	}
	f.assertNoPlaintext(ck.keyPEM)
}

func TestAuditQuery(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var tlsIDs []string
	for _, n := range []string{"t1", "t2", "t3"} {
		tlsIDs = append(tlsIDs, f.create(n, selfSigned()).ID) // seq 1-3
	}
	gw := f.create("gw", gateway(tlsIDs[0], "gw.example.com")) // seq 4
	read := f.get(model.KindTLSSettings, tlsIDs[1])
	read.Spec.(*model.TLSSettingsSpec).MinVersion = model.TLS13
	f.replace(read, read.Name, read.Spec)                                              // seq 5
	if err := f.st.Delete(ctx, f.w, model.KindTLSSettings, tlsIDs[1], 0); err != nil { // seq 6
		t.Fatal(err)
	}

	seqs := func(es []model.AuditEntry) []uint64 {
		out := []uint64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    model.AuditQuery
		want []uint64
	}{
		{"all", model.AuditQuery{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"after 3", model.AuditQuery{After: 3}, []uint64{4, 5, 6}},
		{"after the last", model.AuditQuery{After: 6}, []uint64{}},
		{"limit 2", model.AuditQuery{Limit: 2}, []uint64{1, 2}},
		{"after 2 limit 2", model.AuditQuery{After: 2, Limit: 2}, []uint64{3, 4}},
		{"kind gateway", model.AuditQuery{Kind: model.KindGateway}, []uint64{4}},
		{"kind tls after 1 limit 3", model.AuditQuery{Kind: model.KindTLSSettings, After: 1, Limit: 3}, []uint64{2, 3, 5}},
		{"object", model.AuditQuery{ObjectID: tlsIDs[1]}, []uint64{2, 5, 6}},
		{"object after 2", model.AuditQuery{ObjectID: tlsIDs[1], After: 2}, []uint64{5, 6}},
		{"object of another kind", model.AuditQuery{ObjectID: gw.ID, Kind: model.KindTLSSettings}, []uint64{}},
		{"unknown object", model.AuditQuery{ObjectID: "tls_nope"}, []uint64{}},
		{"limit above the cap", model.AuditQuery{Limit: 5000}, []uint64{1, 2, 3, 4, 5, 6}},
	} {
		if got := seqs(f.audit(tc.q)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: seqs %v, want %v", tc.name, got, tc.want)
		}
	}
	// Paging with After and Limit walks every entry exactly once.
	var paged []uint64
	for after := uint64(0); ; {
		page := f.audit(model.AuditQuery{After: after, Limit: 4})
		if len(page) == 0 {
			break
		}
		paged = append(paged, seqs(page)...)
		after = page[len(page)-1].Seq
	}
	if !slices.Equal(paged, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("paging: %v", paged)
	}
}
