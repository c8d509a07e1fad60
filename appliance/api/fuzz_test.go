package api_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/admintoken"
	"github.com/sallyport/terraform-provider-sallyport/appliance/api"
	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
	"github.com/sallyport/terraform-provider-sallyport/appliance/seal"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store/boltstore"
)

// FuzzWrite sends arbitrary bodies to every collection's create and replace
// handlers. Whatever arrives, the API must answer with a deliberate status
// (never 500) and never panic; and what it accepts must read back valid.
func FuzzWrite(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","spec":{"certificate":{"source":"self_signed"}}}`,
		`{"name":"a","spec":{"certificate":{"source":"acme","acme":{"directory_url":"https://ca.test/dir","eab_key_id":"k","eab_hmac":{"value":"aGVsbG8"}}}}}`,
		`{"name":"gw","spec":{"listen_addr":":443","hostnames":["a.test"],"tls_settings_id":"tls_x","oidc_providers":[{"issuer_url":"https://i.test","audiences":["a"]}]}}`,
		`{"name":"c","spec":{"gateway_id":"gw_x","protocol":"http","path_prefix":"/a","upstream_url":"https://e.test","inject_headers":{"X-K":{"value":"v"}},"timeouts":{"connect":"1s"}}}`,
		`{"name":"b","spec":{"connection_id":"conn_x","issuer":"https://i.test","claims":{"groups":"ops*"},"expires_at":"2030-01-01T00:00:00Z"}}`,
		`{"name":"b","spec":{"connection_id":"conn_x","client_cert_uri_san":"spiffe://td/*","allowed_grpc_methods":["/p.S/*"]}}`,
		`{"name":1}`, `[]`, `null`, `{"spec":{"hostnames":[null]}}`, `{"name":"x","spec":{"inject_headers":{"":null}}}`,
	} {
		for k := range model.Kinds {
			f.Add(uint8(k), false, []byte(seed))
			f.Add(uint8(k), true, []byte(seed))
		}
	}

	dir := f.TempDir()
	b, err := boltstore.Open(filepath.Join(dir, "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	sealer, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	st := store.New(b, sealer)
	token, _ := admintoken.Generate()
	tokens, _ := admintoken.NewSet(admintoken.Hash(token))
	h := api.New(api.Config{Store: st, Tokens: tokens, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "fuzz"})

	// One existing object per kind, so replaces reach validation too.
	ids := map[model.Kind]string{}
	for _, k := range model.Kinds {
		ids[k] = "missing"
	}
	tlsObj, err := st.Create(f.Context(), store.Writer{Actor: "seed"}, "seed", &model.TLSSettingsSpec{Certificate: model.CertificateSpec{Source: model.SourceNone}})
	if err != nil {
		f.Fatal(err)
	}
	ids[model.KindTLSSettings] = tlsObj.ID

	f.Fuzz(func(t *testing.T, kindIdx uint8, replace bool, body []byte) {
		kind := model.Kinds[int(kindIdx)%len(model.Kinds)]
		method, path := http.MethodPost, "/v1/"+kind.Collection()
		if replace {
			method, path = http.MethodPut, path+"/"+ids[kind]
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK || rec.Code == http.StatusCreated {
			// What was accepted reads back as a valid object of the kind.
			obj, err := model.UnmarshalResource(kind, rec.Body.Bytes(), false)
			if err != nil {
				t.Fatalf("accepted object does not decode: %v", err)
			}
			if ps := obj.Spec.Validate(func(string) (string, bool) { return "x", true }); kind != model.KindTLSSettings && kind != model.KindConnection && len(ps) > 0 {
				t.Fatalf("accepted object is invalid: %v", ps)
			}
		}
	})
}
