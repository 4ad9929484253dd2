package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// Recovery codes stand in for the second factor when the authenticator is
// lost. Each is 10 characters from an alphabet without 0/o, 1/i/l (so a
// code read aloud or off paper is typed right), about 49.5 bits, shown once
// as "xxxxx-xxxxx" and stored only as a salted SHA-256. A slow hash is not
// needed at this entropy, and the per-code salt means one pass over all
// 2^49.5 codes cracks one code, not every user's.
const (
	recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"
	recoveryLen      = 10
	recoverySaltLen  = 16
	// MaxRecoveryCodes bounds one batch of recovery codes.
	MaxRecoveryCodes = 100
	recoveryPrefix   = "$rc-sha256$"
)

// NewRecoveryCodes returns n fresh recovery codes to show the user once, and
// their hashes to store in the same order.
func NewRecoveryCodes(n int) (codes, hashes []string, err error) {
	if n < 1 || n > MaxRecoveryCodes {
		return nil, nil, fmt.Errorf("recovery code count %d out of range [1, %d]", n, MaxRecoveryCodes)
	}
	codes, hashes = make([]string, n), make([]string, n)
	for i := range n {
		code := randomRecoveryCode()
		codes[i] = code[:recoveryLen/2] + "-" + code[recoveryLen/2:]
		salt := make([]byte, recoverySaltLen)
		_, _ = rand.Read(salt) // crypto/rand.Read never returns an error (Go 1.24+)
		hashes[i] = recoveryPrefix + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(recoveryDigest(salt, code))
	}
	return codes, hashes, nil
}

// randomRecoveryCode draws recoveryLen characters uniformly from the
// alphabet, rejecting bytes that would bias the draw.
func randomRecoveryCode() string {
	const limit = 256 - 256%len(recoveryAlphabet)
	b := make([]byte, recoveryLen)
	var buf [32]byte
	for i := 0; i < recoveryLen; {
		_, _ = rand.Read(buf[:])
		for _, r := range buf {
			if int(r) < limit && i < recoveryLen {
				b[i] = recoveryAlphabet[int(r)%len(recoveryAlphabet)]
				i++
			}
		}
	}
	return string(b)
}

func recoveryDigest(salt []byte, code string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(code))
	return h.Sum(nil)
}

// UseRecoveryCode checks code against the stored hashes. On a match it
// returns the hashes without the one used (a new slice; hashes is not
// changed), which the caller stores so the code works once. The code may be
// typed in any case, with or without its dash and spaces.
func UseRecoveryCode(hashes []string, code string) (remaining []string, ok bool) {
	code = normaliseRecoveryCode(code)
	if code == "" {
		return hashes, false
	}
	used := -1
	// Every stored hash is tried, so the time taken does not say which one
	// matched.
	for i, stored := range hashes {
		salt, want, good := parseRecoveryHash(stored)
		if good && subtle.ConstantTimeCompare(recoveryDigest(salt, code), want) == 1 {
			used = i
		}
	}
	if used < 0 {
		return hashes, false
	}
	return slices.Delete(slices.Clone(hashes), used, used+1), true
}

// normaliseRecoveryCode returns code lower-cased without dashes and spaces,
// or "" when it is not a recovery code at all.
func normaliseRecoveryCode(code string) string {
	if len(code) > 2*recoveryLen {
		return ""
	}
	code = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(code) != recoveryLen {
		return ""
	}
	for i := range len(code) {
		if strings.IndexByte(recoveryAlphabet, code[i]) < 0 {
			return ""
		}
	}
	return code
}

func parseRecoveryHash(stored string) (salt, digest []byte, ok bool) {
	rest, found := strings.CutPrefix(stored, recoveryPrefix)
	if !found {
		return nil, nil, false
	}
	s, d, found := strings.Cut(rest, "$")
	if !found {
		return nil, nil, false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(s)
	digest, err2 := base64.RawStdEncoding.DecodeString(d)
	if err1 != nil || err2 != nil || len(salt) != recoverySaltLen || len(digest) != sha256.Size {
		return nil, nil, false
	}
	return salt, digest, true
}
