package masking

import (
	"strings"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

const pemKey = `-----BEGIN RSA PRIVATE KEY-----
MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu
KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm
-----END RSA PRIVATE KEY-----`

const jwtToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

func TestDetectors(t *testing.T) {
	for _, tc := range []struct {
		detector string
		in, want string
	}{
		// Payment cards: Luhn, separators, groups, network prefix.
		{"payment_card", "card 4111111111111111 ok", "card *** ok"},
		{"payment_card", "card 4111 1111 1111 1111.", "card ***."},
		{"payment_card", "card 4111-1111-1111-1111", "card ***"},
		{"payment_card", "amex 378282246310005", "amex ***"},
		{"payment_card", "card4111111111111111x", "card***x"},
		{"payment_card", "4111 1111 1111 1111 7", "*** 7"},
		{"payment_card", "ref 12 4111 1111 1111 1111", "ref 12 ***"},
		{"payment_card", "not luhn 4111111111111112", "not luhn 4111111111111112"},
		{"payment_card", "timestamp 1700000000000", "timestamp 1700000000000"},
		{"payment_card", "too short 411111111111", "too short 411111111111"},
		{"payment_card", "glued 14111111111111111", "glued 14111111111111111"},
		// AWS access key ids.
		{"aws_access_key", "id=AKIAIOSFODNN7EXAMPLE&x", "id=***&x"},
		{"aws_access_key", "key_ASIAY34FZKBOKMUTVV7A", "key_***"},
		{"aws_access_key", "AKIAshort", "AKIAshort"},
		// PEM private keys, whole blocks; a BEGIN without END masks what
		// follows it.
		{"pem_private_key", "key:\n" + pemKey + "\nend", "key:\n***\nend"},
		{"pem_private_key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", "***"},
		{"pem_private_key", "-----BEGIN PUBLIC KEY-----\nMFww\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nMFww\n-----END PUBLIC KEY-----"},
		// JWTs.
		{"jwt", "Bearer " + jwtToken + " x", "Bearer *** x"},
		{"jwt", "x." + jwtToken, "x.***"},
		{"jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "***"},
		{"jwt", "www.example.com and 1.2.3", "www.example.com and 1.2.3"},
		{"jwt", "eyJub3RhbGciOjF9.eyJzdWIiOiIxIn0.sig", "eyJub3RhbGciOjF9.eyJzdWIiOiIxIn0.sig"},
		// Email addresses.
		{"email", "to: alice.smith+tag@mail.example.co.uk.", "to: ***."},
		{"email", "<bob@example.org>", "<***>"},
		{"email", "jörg@müller.de", "***"},
		{"email", "not@localhost nor @example.com", "not@localhost nor @example.com"},
		// US SSNs and the ranges never issued.
		{"us_ssn", "ssn 123-45-6789.", "ssn ***."},
		{"us_ssn", "ssn 123 45 6789", "ssn ***"},
		{"us_ssn", "000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000", "000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000"},
		{"us_ssn", "123-45 6789 1123-45-6789 123-45-67890", "123-45 6789 1123-45-6789 123-45-67890"},
		// IBANs: country, length, mod-97, compact or grouped, any case.
		{"iban", "IBAN DE89370400440532013000.", "IBAN ***."},
		{"iban", "IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN *** thanks"},
		{"iban", "gb82west12345698765432", "***"},
		{"iban", "XDE89370400440532013000", "X***"},
		{"iban", "DE89370400440532013001", "DE89370400440532013001"},
		{"iban", "ZZ89370400440532013000", "ZZ89370400440532013000"},
	} {
		m := compile(t, det(tc.detector))
		if got := mustMask(t, m, "text/plain", tc.in); got != tc.want {
			t.Errorf("%s on %q:\n got %q\nwant %q", tc.detector, tc.in, got, tc.want)
		}
	}
}

func TestReplacements(t *testing.T) {
	in := "card 4111 1111 1111 1111 mail a@example.com"
	for repl, want := range map[string]string{
		model.ReplaceRedact:  "card *** mail ***",
		model.ReplacePartial: "card ***1111 mail ***.com",
	} {
		m := compile(t, det("payment_card", repl), det("email", repl))
		if got := mustMask(t, m, "text/plain", in); got != want {
			t.Errorf("%s: got %q, want %q", repl, got, want)
		}
	}
	m := compile(t, det("email", model.ReplaceHash))
	a := mustMask(t, m, "text/plain", "a@example.com")
	b := mustMask(t, m, "text/plain", "x a@example.com y")
	if !strings.HasPrefix(a, "hash:") || len(a) != 37 || b != "x "+a+" y" {
		t.Fatalf("hash: %q, %q", a, b)
	}
}

// Overlapping matches of several rules are masked as one range, by the
// first rule's replacement: nothing of either match survives.
func TestOverlappingRulesMerge(t *testing.T) {
	m := compile(t, rx(`abc-[0-9]+`, model.ReplacePartial), rx(`[0-9]+-xyz`))
	if got := mustMask(t, m, "text/plain", "id abc-12345678-xyz end"); got != "id ***-xyz end" {
		t.Fatalf("got %q", got)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		rules []model.MaskingRule
		key   []byte
		want  string
	}{
		{[]model.MaskingRule{{}}, testKey, "masking[0]: set exactly one"},
		{[]model.MaskingRule{{Regex: "a", Detector: "email"}}, testKey, "masking[0]: set exactly one"},
		{[]model.MaskingRule{det("email"), {Detector: "phone"}}, testKey, "masking[1].detector"},
		{[]model.MaskingRule{{Regex: "("}}, testKey, "masking[0].regex"},
		{[]model.MaskingRule{{JSONPath: "a.b"}}, testKey, "masking[0].json_path"},
		{[]model.MaskingRule{{JSONPath: "$.a", Replacement: "scramble"}}, testKey, "masking[0].replacement"},
		{[]model.MaskingRule{det("email", model.ReplaceHash)}, nil, "hash key"},
	} {
		_, err := Compile(tc.rules, Options{HashKey: tc.key})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.rules, err, tc.want)
		}
	}
}
