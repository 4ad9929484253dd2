package directory

import (
	"crypto/rand"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/verityhq/verity/internal/strictjson"
)

// Limits Graph documents for directory strings; Verity applies the same so
// that what it accepts also imports into Entra.
const (
	maxDisplayName = 256
	maxShortText   = 64  // givenName, surname, department, companyName
	maxJobTitle    = 128 // jobTitle, officeLocation
	maxUPN         = 113 // 64 local + "@" + 48 domain
	maxUPNLocal    = 64
	maxMail        = 254
	maxEmployeeID  = 16
	maxDescription = 1024
	maxNickname    = 64
	maxListLength  = 1000 // tags, otherMails, identifierUris, groupTypes
)

// NewID returns a random (version 4) UUID in lower case, the form of every
// Verity and Graph object id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// IsGUID reports whether s is a GUID in its 8-4-4-4-12 hexadecimal form,
// in either case.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// lowerGUID lower-cases s when it is a GUID, so ids compare byte for byte.
// Stored ids are already lower case; they return at once.
func lowerGUID(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'F' {
			if IsGUID(s) {
				return strings.ToLower(s)
			}
			return s
		}
	}
	return s
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkID accepts an empty id (the server assigns one on create) or a GUID.
func checkID(path, id string) error {
	if id != "" && !IsGUID(id) {
		return strictjson.Errorf(path, "must be a GUID such as 00000000-0000-0000-0000-000000000000")
	}
	return nil
}

func checkGUID(path, s string) error {
	if s == "" {
		return strictjson.Errorf(path, "required")
	}
	if !IsGUID(s) {
		return strictjson.Errorf(path, "must be a GUID such as 00000000-0000-0000-0000-000000000000")
	}
	return nil
}

func checkDisplayName(path, s string) error {
	if strings.TrimSpace(s) == "" {
		return strictjson.Errorf(path, "required")
	}
	return checkText(path, s, maxDisplayName)
}

// checkText bounds a free-text property and rejects control characters,
// which no directory name needs and which hide text in logs and consoles.
func checkText(path, s string, max int) error {
	if !utf8.ValidString(s) {
		return strictjson.Errorf(path, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return strictjson.Errorf(path, "must be at most %d characters, not %d", max, n)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return strictjson.Errorf(path, "must not contain control characters")
		}
	}
	return nil
}

func checkEnum(path, s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return strictjson.Errorf(path, "must be one of %s, not %q", strings.Join(quoted(allowed), ", "), s)
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// canonical returns the element of allowed that equals s ignoring case, or
// s unchanged.
func canonical(s string, allowed ...string) string {
	for _, a := range allowed {
		if strings.EqualFold(s, a) {
			return a
		}
	}
	return s
}

// checkUPN checks the shape Entra requires of a userPrincipalName:
// local@domain, the local part of letters, digits and ' . - _ ! # ^ ~
// (guests carry "#EXT#"), not starting or ending with a dot, and a domain
// of DNS labels.
func checkUPN(path, upn string) error {
	if upn == "" {
		return strictjson.Errorf(path, "required")
	}
	if len(upn) > maxUPN {
		return strictjson.Errorf(path, "must be at most %d characters", maxUPN)
	}
	local, domain, ok := strings.Cut(upn, "@")
	if !ok || strings.Contains(domain, "@") {
		return strictjson.Errorf(path, "must have the form local@domain with exactly one @")
	}
	if local == "" || len(local) > maxUPNLocal {
		return strictjson.Errorf(path, "the part before @ must have 1 to %d characters", maxUPNLocal)
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return strictjson.Errorf(path, "the part before @ must not start or end with a dot or hold two dots in a row")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !isAlnum(c) && !strings.ContainsRune("'.-_!#^~", rune(c)) {
			return strictjson.Errorf(path, "the part before @ must not contain %q", c)
		}
	}
	if !isDomain(domain) {
		return strictjson.Errorf(path, "%q is not a valid domain name", domain)
	}
	return nil
}

// checkMail checks the loose shape of an e-mail address: something@domain.
func checkMail(path, mail string) error {
	if len(mail) > maxMail {
		return strictjson.Errorf(path, "must be at most %d characters", maxMail)
	}
	i := strings.LastIndexByte(mail, '@')
	if i <= 0 || strings.ContainsAny(mail, " \t\r\n<>,;\"") || !isDomain(mail[i+1:]) {
		return strictjson.Errorf(path, "must be an e-mail address such as alice@contoso.com")
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isDomain accepts DNS names of letters, digits and hyphens; a single label
// ("localhost") is allowed for self-hosted tenants.
func isDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

// checkCountry checks an ISO 3166-1 alpha-2 code as Graph writes it: two
// upper-case letters.
func checkCountry(path, c string) error {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return strictjson.Errorf(path, "must be an ISO 3166-1 alpha-2 country code of two upper-case letters, not %q", c)
	}
	return nil
}

// checkLanguage checks the loose shape of an ISO 639-1 tag with an optional
// region ("en", "en-US").
func checkLanguage(path, s string) error {
	lang, region, hasRegion := strings.Cut(s, "-")
	ok := len(lang) >= 2 && len(lang) <= 3 && isLetters(lang)
	if hasRegion {
		ok = ok && len(region) >= 2 && len(region) <= 8 && isLettersOrDigits(region)
	}
	if !ok {
		return strictjson.Errorf(path, "must be a language tag such as \"en-US\", not %q", s)
	}
	return nil
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isLettersOrDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// checkStrings checks a list: at most maxListLength entries, each passing
// check and none repeated (compared exactly).
func checkStrings(path string, list []string, check func(path, s string) error) error {
	if len(list) > maxListLength {
		return strictjson.Errorf(path, "must have at most %d entries", maxListLength)
	}
	seen := make(map[string]int, len(list))
	for i, s := range list {
		p := strictjson.Index(path, i)
		if err := check(p, s); err != nil {
			return err
		}
		if j, dup := seen[s]; dup {
			return strictjson.Errorf(p, "repeats entry %d (%q)", j, s)
		}
		seen[s] = i
	}
	return nil
}

// textUpTo returns a checker for free-text list entries.
func textUpTo(max int) func(path, s string) error {
	return func(path, s string) error {
		if s == "" {
			return strictjson.Errorf(path, "must not be empty")
		}
		return checkText(path, s, max)
	}
}

func lowerGUIDs(ids []string) {
	for i, id := range ids {
		ids[i] = lowerGUID(id)
	}
}
