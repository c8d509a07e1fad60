package masking

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// span is a range of text a rule matched: [start, end), and the index of
// the rule.
type span struct{ start, end, rule int }

// detector is a built-in detector: it appends the spans it finds in b.
type detector struct {
	find func(b []byte, spans []span, rule int) []span
}

// detectors are the built-in detectors by name (model.MaskingDetectors).
var detectors = map[string]*detector{
	"payment_card":    {find: findCards},
	"aws_access_key":  {find: findAWSKeys},
	"pem_private_key": {find: findPEMKeys},
	"jwt":             {find: findJWTs},
	"email":           {find: findEmails},
	"us_ssn":          {find: findSSNs},
	"iban":            {find: findIBANs},
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// findCards finds payment card numbers: 13 to 19 digits, optionally in
// groups separated by single spaces or dashes, whose first digit is a
// card network's (2 to 6) and that pass the Luhn check. A card is
// delimited by group boundaries, so digits glued to letters still count
// ("card4111111111111111") and a number followed by more digit groups
// ("4111 1111 1111 1111 7") is still found.
func findCards(b []byte, spans []span, rule int) []span {
	var digits []int // byte offset of each digit of the run
	var groups []int // index in digits where each group starts
	for i := 0; i < len(b); {
		if !isDigit(b[i]) {
			i++
			continue
		}
		digits, groups = digits[:0], groups[:0]
		groups = append(groups, 0)
		j := i
		for j < len(b) {
			if isDigit(b[j]) {
				digits = append(digits, j)
				j++
				continue
			}
			if (b[j] == ' ' || b[j] == '-') && j+1 < len(b) && isDigit(b[j+1]) {
				groups = append(groups, len(digits))
				j++
				continue
			}
			break
		}
		i = j
		if len(digits) < 13 {
			continue
		}
		ends := append(groups[1:len(groups):len(groups)], len(digits))
		for g := 0; g < len(groups); {
			s := groups[g]
			found := -1
			// The longest valid number starting at this group.
			for e := len(ends) - 1; e >= g; e-- {
				n := ends[e] - s
				if n >= 13 && n <= 19 && cardPrefix(b[digits[s]]) && luhn(b, digits[s:ends[e]]) {
					found = e
					break
				}
			}
			if found < 0 {
				g++
				continue
			}
			spans = append(spans, span{digits[s], digits[ends[found]-1] + 1, rule})
			g = found + 1
		}
	}
	return spans
}

// cardPrefix reports whether a first digit is a payment network's major
// industry identifier (2 to 6): timestamps and most ids start otherwise.
func cardPrefix(c byte) bool { return '2' <= c && c <= '6' }

// luhn checks the digits of b at the given offsets.
func luhn(b []byte, at []int) bool {
	sum, double := 0, false
	for k := len(at) - 1; k >= 0; k-- {
		d := int(b[at[k]] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// findAWSKeys finds AWS access key ids: long-term (AKIA), temporary
// (ASIA) and the other access key prefixes, then 16 upper-case letters
// and digits. No word boundary is required: "key_AKIA..." is still a key.
func findAWSKeys(b []byte, spans []span, rule int) []span {
	for i := 0; i+20 <= len(b); i++ {
		if b[i] != 'A' {
			k := bytes.IndexByte(b[i:], 'A')
			if k < 0 {
				break
			}
			i += k
			if i+20 > len(b) {
				break
			}
		}
		switch string(b[i+1 : i+4]) {
		case "KIA", "SIA", "BIA", "CCA":
		default:
			if b[i+1] != '3' || b[i+2] != 'T' || !isUpperAlnum(b[i+3]) {
				continue
			}
		}
		ok := true
		for _, c := range b[i+4 : i+20] {
			if !isUpperAlnum(c) {
				ok = false
				break
			}
		}
		if ok {
			spans = append(spans, span{i, i + 20, rule})
			i += 19
		}
	}
	return spans
}

func isUpperAlnum(c byte) bool { return 'A' <= c && c <= 'Z' || isDigit(c) }

// PEM private keys: the whole block, from BEGIN to END. A BEGIN line
// without its END within the window masks the key material that follows
// it (base64, headers, whitespace, escaped newlines), so a truncated or
// oversized key is not revealed either.
var pemKeyRE = regexp.MustCompile(`-----BEGIN[ A-Z0-9]*PRIVATE KEY-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY-----|[A-Za-z0-9+/=\s:,.\\-]*)`)

var pemBegin = []byte("-----BEGIN")

func findPEMKeys(b []byte, spans []span, rule int) []span {
	if !bytes.Contains(b, pemBegin) {
		return spans
	}
	for _, loc := range pemKeyRE.FindAllIndex(b, -1) {
		spans = append(spans, span{loc[0], loc[1], rule})
	}
	return spans
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || isDigit(c) || c == '-' || c == '_'
}

// findJWTs finds JSON Web Tokens: three base64url segments separated by
// dots (five for an encrypted token) whose first segment decodes to a
// JSON object with an "alg" member. Every dotted run is tried from each
// of its segments, so a prefix ("x.eyJ...") does not hide a token.
func findJWTs(b []byte, spans []span, rule int) []span {
	var segs [][2]int
	for i := 0; i < len(b); {
		if !isB64URL(b[i]) {
			i++
			continue
		}
		segs = segs[:0]
		start := i
		for {
			for i < len(b) && isB64URL(b[i]) {
				i++
			}
			segs = append(segs, [2]int{start, i})
			if i < len(b) && b[i] == '.' {
				i++
				start = i
				continue
			}
			break
		}
		for k := 0; k+2 < len(segs); k++ {
			n, ok := jwtAt(b, segs[k:])
			if !ok {
				continue
			}
			spans = append(spans, span{segs[k][0], segs[k+n-1][1], rule})
			k += n - 1
		}
	}
	return spans
}

// jwtAt reports whether segs start a token, and how many segments it
// has.
func jwtAt(b []byte, segs [][2]int) (int, bool) {
	h := b[segs[0][0]:segs[0][1]]
	if len(h) < 8 || len(h) > 4096 || segs[1][1] == segs[1][0] {
		return 0, false
	}
	var buf [3072]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], h)
	if err != nil {
		return 0, false
	}
	var hdr struct {
		Alg *string `json:"alg"`
		Enc *string `json:"enc"`
	}
	dec := bytes.TrimSpace(buf[:n])
	if len(dec) == 0 || dec[0] != '{' || json.Unmarshal(dec, &hdr) != nil || hdr.Alg == nil {
		return 0, false
	}
	if hdr.Enc != nil && len(segs) >= 5 {
		return 5, true
	}
	return 3, true
}

// findEmails finds email addresses: a local part, "@", and a domain of
// two or more dot-separated labels whose last one starts with a letter.
// Letters and digits of any script count.
func findEmails(b []byte, spans []span, rule int) []span {
	pos := 0
	for {
		k := bytes.IndexByte(b[pos:], '@')
		if k < 0 {
			return spans
		}
		at := pos + k
		s := at
		for s > pos {
			r, size := utf8.DecodeLastRune(b[:s])
			if !isLocalRune(r) {
				break
			}
			s -= size
		}
		e, ok := domainEnd(b, at+1)
		if s == at || !ok {
			pos = at + 1
			continue
		}
		spans = append(spans, span{s, e, rule})
		pos = e
	}
}

func isLocalRune(r rune) bool {
	if r < utf8.RuneSelf {
		return strings.IndexByte("!#$%&'*+/=?^_`{|}~.-", byte(r)) >= 0 || isAlnum(byte(r))
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) }

func isLabelRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isAlnum(byte(r)) || r == '-'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// domainEnd returns the end of the email domain starting at b[i]: its
// labels up to the last one that starts with a letter, at least two.
func domainEnd(b []byte, i int) (int, bool) {
	end, labels := -1, 0
	for i < len(b) {
		start := i
		for i < len(b) {
			r, size := utf8.DecodeRune(b[i:])
			if !isLabelRune(r) {
				break
			}
			i += size
		}
		if i == start {
			break
		}
		labels++
		if r, _ := utf8.DecodeRune(b[start:]); labels >= 2 && unicode.IsLetter(r) {
			end = i
		}
		if i+1 >= len(b) || b[i] != '.' {
			break
		}
		i++
	}
	return end, end > 0
}

// findSSNs finds US social security numbers written AAA-GG-SSSS or AAA
// GG SSSS (the same separator twice), not glued to other digits, outside
// the ranges never issued: area 000, 666 and 900-999, group 00, serial
// 0000. Nine digits without separators are not matched: too many ids look
// like that.
func findSSNs(b []byte, spans []span, rule int) []span {
	for i := 0; i+11 <= len(b); i++ {
		c := b[i : i+11]
		if !isDigit(c[0]) || i > 0 && isDigit(b[i-1]) || i+11 < len(b) && isDigit(b[i+11]) {
			continue
		}
		if c[3] != '-' && c[3] != ' ' || c[6] != c[3] {
			continue
		}
		ok := true
		for _, k := range [...]int{1, 2, 4, 5, 7, 8, 9, 10} {
			if !isDigit(c[k]) {
				ok = false
				break
			}
		}
		area, group, serial := string(c[0:3]), string(c[4:6]), string(c[7:11])
		if !ok || area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
			continue
		}
		spans = append(spans, span{i, i + 11, rule})
		i += 10
	}
	return spans
}

// ibanLengths are the IBAN lengths of the countries of the IBAN registry.
// Only these lengths are tried, which keeps the mod-97 check from
// matching random codes.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
	"MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
	"SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
	"YE": 30,
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// findIBANs finds IBANs of registry countries with their length and a
// valid mod-97 check, in upper or lower case, compact or grouped by
// single spaces. No boundary is required before the country code
// ("XDE89...").
func findIBANs(b []byte, spans []span, rule int) []span {
	var at []int
	for i := 0; i+15 <= len(b); i++ {
		if !isAlpha(b[i]) || !isAlpha(b[i+1]) || !isDigit(b[i+2]) || !isDigit(b[i+3]) {
			continue
		}
		want, ok := ibanLengths[string([]byte{upper(b[i]), upper(b[i+1])})]
		if !ok {
			continue
		}
		at = append(at[:0], i, i+1, i+2, i+3)
		for k := i + 4; k < len(b) && len(at) < want; k++ {
			switch {
			case isAlnum(b[k]):
				at = append(at, k)
			case b[k] == ' ' && k+1 < len(b) && isAlnum(b[k+1]) && b[k-1] != ' ':
			default:
				k = len(b)
			}
		}
		if len(at) == want && mod97(b, at) {
			spans = append(spans, span{i, at[len(at)-1] + 1, rule})
			i = at[len(at)-1]
		}
	}
	return spans
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// mod97 checks an IBAN's digits (ISO 13616): the first four characters
// moved to the end, letters as 10 to 35, the number mod 97 is 1.
func mod97(b []byte, at []int) bool {
	if c := (b[at[2]]-'0')*10 + b[at[3]] - '0'; c < 2 || c > 98 {
		return false
	}
	r := 0
	for k := range at {
		c := upper(b[at[(k+4)%len(at)]])
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	return r == 1
}
