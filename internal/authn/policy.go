package authn

import (
	"errors"
	"fmt"
)

// ErrBreachedPassword means a password appears in a list of passwords
// exposed in data breaches, which attackers try first.
var ErrBreachedPassword = errors.New("password appears in a list of breached passwords")

// PasswordPolicy says which passwords a user may choose (NIST SP 800-63B:
// a length range and a blocklist, no composition rules).
type PasswordPolicy struct {
	// MinLength is the shortest password accepted, in bytes.
	MinLength int
	// MaxLength is the longest password accepted, in bytes; it bounds the
	// hashing work one request can ask for.
	MaxLength int
	// BreachedList, when set, refuses passwords found in it.
	BreachedList *BreachedList
}

// DefaultPasswordPolicy is the policy CheckPasswordPolicy applies: 12 to 256
// bytes, no breached-password list.
func DefaultPasswordPolicy() PasswordPolicy {
	return PasswordPolicy{MinLength: MinPasswordLength, MaxLength: MaxPasswordLength}
}

// Validate reports a policy that would accept trivially short passwords or
// passwords VerifyPassword refuses to check.
func (p PasswordPolicy) Validate() error {
	switch {
	case p.MinLength < 8:
		return fmt.Errorf("password policy: MinLength %d is below 8", p.MinLength)
	case p.MaxLength < p.MinLength:
		return fmt.Errorf("password policy: MaxLength %d is below MinLength %d", p.MaxLength, p.MinLength)
	case p.MaxLength > MaxPasswordLength:
		return fmt.Errorf("password policy: MaxLength %d is above %d, the longest password VerifyPassword checks", p.MaxLength, MaxPasswordLength)
	}
	return nil
}

// Check returns why password may not be chosen under p, or nil. A password
// found in the breached list gives ErrBreachedPassword; a list that cannot
// be read gives another error, and the caller decides whether to refuse.
func (p PasswordPolicy) Check(password string) error {
	switch {
	case len(password) < p.MinLength:
		return fmt.Errorf("password must be at least %d characters", p.MinLength)
	case len(password) > p.MaxLength:
		return fmt.Errorf("password must be at most %d characters", p.MaxLength)
	}
	if p.BreachedList == nil {
		return nil
	}
	found, err := p.BreachedList.Contains(password)
	if err != nil {
		return fmt.Errorf("check breached passwords: %w", err)
	}
	if found {
		return ErrBreachedPassword
	}
	return nil
}

// CheckPasswordPolicy rejects passwords too short or too long to use: it is
// DefaultPasswordPolicy().Check.
func CheckPasswordPolicy(password string) error {
	return DefaultPasswordPolicy().Check(password)
}
