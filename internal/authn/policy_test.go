package authn

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordPolicyCheck(t *testing.T) {
	t.Parallel()
	list := openBreached(t, writeBreachedFile(t, breachedPasswords, 100, "\r\n", true))
	withList := DefaultPasswordPolicy()
	withList.BreachedList = list
	tests := []struct {
		name     string
		policy   PasswordPolicy
		password string
		wantErr  string // "" for none
	}{
		{"default: long enough", DefaultPasswordPolicy(), "password1234", ""},
		{"default: too short", DefaultPasswordPolicy(), "short", "at least 12 characters"},
		{"default: too long", DefaultPasswordPolicy(), strings.Repeat("a", 257), "at most 256 characters"},
		{"default: exactly the bounds", DefaultPasswordPolicy(), strings.Repeat("a", 256), ""},
		{"list: breached", withList, "password1234", ErrBreachedPassword.Error()},
		{"list: breached passphrase", withList, "correct horse battery staple", ErrBreachedPassword.Error()},
		{"list: not breached", withList, "a passphrase of my own", ""},
		{"list: length checked first", withList, "short", "at least 12 characters"},
		{"custom lengths", PasswordPolicy{MinLength: 15, MaxLength: 64}, "fourteen chars", "at least 15 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Check(tt.password)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Check = %v; want %q", err, tt.wantErr)
			}
			if tt.wantErr == ErrBreachedPassword.Error() && !errors.Is(err, ErrBreachedPassword) {
				t.Fatalf("Check = %v; want ErrBreachedPassword", err)
			}
		})
	}
}

func TestPasswordPolicyUnreadableList(t *testing.T) {
	t.Parallel()
	list, err := OpenBreachedList(writeBreachedFile(t, breachedPasswords, 0, "\n", true))
	if err != nil {
		t.Fatal(err)
	}
	list.Close()
	err = PasswordPolicy{MinLength: 12, MaxLength: 256, BreachedList: list}.Check("password1234")
	if err == nil || errors.Is(err, ErrBreachedPassword) || !strings.Contains(err.Error(), "check breached passwords") {
		t.Fatalf("Check over a closed list = %v", err)
	}
}

func TestCheckPasswordPolicyIsTheDefault(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "elevenchars", "twelve chars", strings.Repeat("x", 256), strings.Repeat("x", 257)} {
		a, b := CheckPasswordPolicy(p), DefaultPasswordPolicy().Check(p)
		if (a == nil) != (b == nil) || a != nil && a.Error() != b.Error() {
			t.Errorf("%d bytes: CheckPasswordPolicy = %v, default policy = %v", len(p), a, b)
		}
	}
	if err := DefaultPasswordPolicy().Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
}

func TestPasswordPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  PasswordPolicy
		wantErr string
	}{
		{"default", DefaultPasswordPolicy(), ""},
		{"NIST single factor", PasswordPolicy{MinLength: 15, MaxLength: 64}, ""},
		{"zero", PasswordPolicy{}, "MinLength 0 is below 8"},
		{"max below min", PasswordPolicy{MinLength: 12, MaxLength: 10}, "MaxLength 10 is below MinLength 12"},
		{"max above verify limit", PasswordPolicy{MinLength: 12, MaxLength: 1024}, "MaxLength 1024 is above 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate = %v; want %q", err, tt.wantErr)
			}
		})
	}
}
