package authn

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters (RFC 6238). They are the ones every authenticator app
// assumes whatever the otpauth URL says: SHA-1, 6 digits, 30 s steps.
const (
	totpPeriod     = 30 // seconds per time step
	totpDigits     = 6
	totpSkew       = 1  // steps accepted either side of now, for clock drift and typing time
	totpSecretSize = 20 // bytes: 160 bits, RFC 4226's recommended key length
	minTOTPSecret  = 16 // bytes: RFC 4226 requires at least 128 bits
	totpQRSize     = 256
)

// TOTPEnrollment is what a user needs to add Verity to an authenticator app.
// Secret is the only copy of the shared key the caller gets: it stores it
// with the user's credentials and shows URL or QRCode once.
type TOTPEnrollment struct {
	Secret string // base32 without padding, as VerifyTOTP takes it
	URL    string // otpauth://totp/Issuer:account?secret=…&issuer=…
	QRCode []byte // PNG of URL, 256×256
}

// NewTOTPEnrollment mints a random TOTP secret for accountName at issuer.
func NewTOTPEnrollment(issuer, accountName string) (TOTPEnrollment, error) {
	return totpEnrollment(issuer, accountName, nil)
}

// TOTPEnrollmentFor renders the enrollment of an existing secret (as
// NewTOTPEnrollment returned it) again, for a page shown twice.
func TOTPEnrollmentFor(issuer, accountName, secret string) (TOTPEnrollment, error) {
	if !validTOTPSecret(secret) {
		return TOTPEnrollment{}, errors.New("totp secret is not a valid base32 secret")
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(secret), "="))
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("totp secret: %w", err)
	}
	return totpEnrollment(issuer, accountName, raw)
}

func totpEnrollment(issuer, accountName string, secret []byte) (TOTPEnrollment, error) {
	// The label is "issuer:account", so neither may hold a colon (Google
	// Authenticator's key URI format).
	switch {
	case issuer == "" || strings.Contains(issuer, ":"):
		return TOTPEnrollment{}, fmt.Errorf("totp issuer %q must be non-empty and hold no colon", issuer)
	case accountName == "" || strings.Contains(accountName, ":"):
		return TOTPEnrollment{}, fmt.Errorf("totp account name %q must be non-empty and hold no colon", accountName)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: accountName,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Secret:      secret,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("generate totp key: %w", err)
	}
	img, err := key.Image(totpQRSize, totpQRSize)
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("render totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPEnrollment{}, fmt.Errorf("encode totp qr code: %w", err)
	}
	return TOTPEnrollment{Secret: key.Secret(), URL: key.URL(), QRCode: buf.Bytes()}, nil
}

// VerifyTOTP checks a 6-digit code against secret at now, accepting the
// steps one either side of now's. A code is used at most once: a step at or
// before lastUsedStep is refused, and on success the caller stores the
// returned step as the next lastUsedStep (0 before any code was used).
// Guessing is bounded by the caller's lockout, not here.
func VerifyTOTP(secret, code string, now time.Time, lastUsedStep int64) (step int64, ok bool) {
	if !isDigits(code, totpDigits) || !validTOTPSecret(secret) || now.Unix() < 0 {
		return 0, false
	}
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	current := now.Unix() / totpPeriod
	matched := int64(-1)
	// Every candidate step is computed and compared, so the time taken does
	// not say which one matched.
	for s := current - totpSkew; s <= current+totpSkew; s++ {
		if s <= lastUsedStep || s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 {
		return 0, false
	}
	return matched, true
}

// validTOTPSecret reports whether secret decodes, the way pquerna/otp
// decodes it (any case, padding optional), to a key of at least 128 bits.
func validTOTPSecret(secret string) bool {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(secret), "="))
	return err == nil && len(key) >= minTOTPSecret
}

// isDigits reports whether s is exactly n ASCII digits.
func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
