// Package authn proves who a caller is: password hashing (argon2id), API
// bearer tokens, and the lockout that slows password guessing. It keeps
// secrets out of everything it returns except the one moment a secret is
// minted. authn imports store and nothing above it.
package authn

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters, following OWASP's recommendation for argon2id
// (m=19 MiB, t=2, p=1) with a little more memory.
const (
	argonTime    = 2
	argonMemory  = 32 * 1024 // KiB
	argonThreads = 2
	argonKeyLen  = 32
	saltLen      = 16

	// MinPasswordLength is the shortest password Verity accepts.
	MinPasswordLength = 12
	// MaxPasswordLength bounds hashing work per request.
	MaxPasswordLength = 256
)

// ErrMismatch means a password does not match its hash.
var ErrMismatch = errors.New("password does not match")

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string) (string, error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPasswordPolicy rejects passwords too short or too long to use.
func CheckPasswordPolicy(password string) error {
	switch {
	case len(password) < MinPasswordLength:
		return fmt.Errorf("password must be at least %d characters", MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("password must be at most %d characters", MaxPasswordLength)
	}
	return nil
}

// VerifyPassword checks password against a PHC string made by HashPassword,
// in constant time with respect to the derived key.
func VerifyPassword(encoded, password string) error {
	if len(password) > MaxPasswordLength {
		return ErrMismatch
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("unsupported password hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("unsupported argon2 version")
	}
	var mem, iter uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil {
		return fmt.Errorf("malformed argon2 parameters: %w", err)
	}
	if mem > 1<<20 || iter > 16 || threads == 0 {
		return errors.New("argon2 parameters out of range")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("malformed salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return errors.New("malformed key")
	}
	got := argon2.IDKey([]byte(password), salt, iter, mem, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// GeneratePassword returns a random password of 26 base32 characters
// (130 bits), for one-time bootstrap credentials.
func GeneratePassword() string {
	return rand.Text()
}
