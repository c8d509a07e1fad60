package certificates_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/certificates"
)

func TestChallengeServerRoutesOnlyChallengesForDeclaredHosts(t *testing.T) {
	cs := certificates.NewChallengeServer(nil)
	t.Cleanup(func() { _ = cs.Close(t.Context()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	answer := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
	}
	if errs := cs.Apply(map[string][]certificates.ChallengeRoute{addr: {
		{Hostnames: []string{"a.test"}, Handler: answer("A")},
		{Hostnames: []string{"*.b.test"}, Handler: answer("B")},
	}}); len(errs) != 0 {
		t.Fatal(errs)
	}
	get := func(host, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const ch = "/.well-known/acme-challenge/tok"
	for _, c := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"a.test", ch, 200, "A"},
		{"x.b.test:80", ch, 200, "B"},
		{"x.y.b.test", ch, 404, ""},
		{"c.test", ch, 404, ""},
		{"a.test", "/jobs", 404, ""},
	} {
		code, body := get(c.host, c.path)
		if code != c.code || (c.body != "" && body != c.body) {
			t.Errorf("%s%s: %d %q, want %d %q", c.host, c.path, code, body, c.code, c.body)
		}
	}
	// A new route set replaces the old; an empty set closes the listener.
	cs.Apply(map[string][]certificates.ChallengeRoute{addr: {{Hostnames: []string{"c.test"}, Handler: answer("C")}}})
	if code, body := get("c.test", ch); code != 200 || body != "C" {
		t.Errorf("after swap: %d %q", code, body)
	}
	if code, _ := get("a.test", ch); code != 404 {
		t.Errorf("after swap a.test: %d", code)
	}
	cs.Apply(nil)
	if resp, err := http.Get("http://" + addr + ch); err == nil {
		resp.Body.Close()
		t.Errorf("listener still open after its last route went")
	}
}
