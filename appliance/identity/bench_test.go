package identity

import (
	"testing"
)

// The verified-token cache is a performance target: a gateway sees the
// same bearer token on every request of a session. Compare
//
//	go test -run XXX -bench Verify ./appliance/identity/
//
// BenchmarkVerifyUncached pays for parsing, the RSA signature and claim
// decoding on every call; BenchmarkVerifyCached only for a SHA-256 of the
// token and a map lookup. Both run against a real IdP's token and keys
// (discovery happens before the timer starts; no call touches the
// network).

func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b)
	v := f.verifier(b, OIDCOptions{KeyMaxAge: -1})
	benchmarkVerify(b, v, f.token(b))
}

func BenchmarkVerifyUncached(b *testing.B) {
	f := newFixture(b)
	v := f.verifier(b, OIDCOptions{KeyMaxAge: -1, CacheSize: -1})
	benchmarkVerify(b, v, f.token(b))
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	f := newFixture(b)
	v := f.verifier(b, OIDCOptions{KeyMaxAge: -1})
	tok := f.token(b)
	if _, err := v.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(b.Context(), tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchmarkVerify(b *testing.B, v *OIDCVerifier, tok string) {
	if _, err := v.Verify(b.Context(), tok); err != nil { // discovery, outside the timer
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
