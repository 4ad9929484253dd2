package authn

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of new hashes, following OWASP's recommendation for
// argon2id (m=19 MiB, t=2, p=1) with a little more memory. Raising any of
// them makes NeedsRehash true for every stored hash, so sign-in upgrades
// hashes as users come back; VerifyPassword keeps reading the old ones.
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

// Bounds on the parameters VerifyPassword accepts from a stored hash. A
// stored string is data, and a hostile or corrupt one must not make a
// sign-in allocate gigabytes or spin for minutes: memory is capped at 8× the
// current setting, and time × memory (the work, in KiB passes) at 16× the
// current work. OWASP's and RFC 9106's second recommended settings fit;
// RFC 9106's 2 GiB setting does not, deliberately.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 10
	maxArgonThreads = 16
	maxArgonWork    = 16 * argonTime * argonMemory // KiB × passes
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 64
	minSaltLen      = 8
	maxSaltLen      = 64
	maxEncodedLen   = 256 // longer than any hash the bounds above allow
)

// ErrMismatch means a password does not match its hash.
var ErrMismatch = errors.New("password does not match")

// argonParams are the cost parameters recorded in a PHC string.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	keyLen  uint32
}

// currentParams are the parameters HashPassword uses.
var currentParams = argonParams{memory: argonMemory, time: argonTime, threads: argonThreads, keyLen: argonKeyLen}

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string) (string, error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return "", err
	}
	return hashWith(password, currentParams)
}

func hashWith(password string, p argonParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword checks password against an argon2id PHC string, made by
// HashPassword now or with older parameters, in constant time with respect
// to the derived key. It returns ErrMismatch for a wrong password and
// another error for a stored hash it will not read.
func VerifyPassword(encoded, password string) error {
	if len(password) > MaxPasswordLength {
		return ErrMismatch
	}
	p, salt, want, err := parseArgon2id(encoded)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// NeedsRehash reports whether a stored hash was made with parameters other
// than the current ones (or cannot be read at all), so that sign-in, having
// just verified the password, can store a fresh HashPassword of it.
func NeedsRehash(encoded string) bool {
	p, _, _, err := parseArgon2id(encoded)
	return err != nil || p != currentParams
}

// parseArgon2id reads "$argon2id$v=19$m=M,t=T,p=P$salt$key" strictly and
// refuses parameters outside the bounds above before any work is done.
func parseArgon2id(encoded string) (p argonParams, salt, key []byte, err error) {
	if len(encoded) > maxEncodedLen {
		return p, nil, nil, fmt.Errorf("password hash longer than %d characters", maxEncodedLen)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("unsupported password hash format")
	}
	version, ok := strings.CutPrefix(parts[2], "v=")
	if !ok || version != strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("malformed argon2 parameters %q: want m=,t=,p=", parts[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(fields[i], name)
		if !ok {
			return p, nil, nil, fmt.Errorf("malformed argon2 parameters %q: want %s in position %d", parts[3], name, i+1)
		}
		if vals[i], err = strconv.ParseUint(s, 10, 32); err != nil {
			return p, nil, nil, fmt.Errorf("malformed argon2 parameter %s: %w", fields[i], err)
		}
	}
	mem, iter, threads := vals[0], vals[1], vals[2]
	switch {
	case threads < 1 || threads > maxArgonThreads:
		return p, nil, nil, fmt.Errorf("argon2 parallelism %d out of range [1, %d]", threads, maxArgonThreads)
	case iter < 1 || iter > maxArgonTime:
		return p, nil, nil, fmt.Errorf("argon2 time %d out of range [1, %d]", iter, maxArgonTime)
	case mem < 8*threads || mem > maxArgonMemory: // RFC 9106: m ≥ 8p
		return p, nil, nil, fmt.Errorf("argon2 memory %d KiB out of range [%d, %d]", mem, 8*threads, maxArgonMemory)
	case mem*iter > maxArgonWork:
		return p, nil, nil, fmt.Errorf("argon2 work m×t = %d above the limit %d", mem*iter, maxArgonWork)
	}
	salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("malformed salt: %w", err)
	}
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("salt of %d bytes out of range [%d, %d]", len(salt), minSaltLen, maxSaltLen)
	}
	key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return p, nil, nil, fmt.Errorf("malformed key: %w", err)
	}
	if len(key) < minArgonKeyLen || len(key) > maxArgonKeyLen {
		return p, nil, nil, fmt.Errorf("key of %d bytes out of range [%d, %d]", len(key), minArgonKeyLen, maxArgonKeyLen)
	}
	p = argonParams{memory: uint32(mem), time: uint32(iter), threads: uint8(threads), keyLen: uint32(len(key))}
	return p, salt, key, nil
}

// GeneratePassword returns a random password of 26 base32 characters
// (130 bits), for one-time bootstrap credentials.
func GeneratePassword() string {
	return rand.Text()
}
