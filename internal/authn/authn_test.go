package authn

import (
	"strings"
	"testing"
	"time"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=32768,t=2,p=2$") || strings.Contains(h, "horse") {
		t.Fatalf("hash %q", h)
	}
	if err := VerifyPassword(h, "correct horse battery staple"); err != nil {
		t.Fatalf("right password rejected: %v", err)
	}
	for _, wrong := range []string{"correct horse battery stapl", "", strings.Repeat("x", MaxPasswordLength+1)} {
		if err := VerifyPassword(h, wrong); err != ErrMismatch {
			t.Errorf("VerifyPassword(%q) = %v; want ErrMismatch", wrong[:min(len(wrong), 10)], err)
		}
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	if _, err := HashPassword("short"); err == nil {
		t.Error("accepted a 5-character password")
	}
	if _, err := HashPassword(strings.Repeat("a", MaxPasswordLength+1)); err == nil {
		t.Error("accepted an over-long password")
	}
}

func TestVerifyRejectsHostileHashes(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"", "plaintext", "$argon2i$v=19$m=32768,t=2,p=2$c2FsdA$a2V5",
		"$argon2id$v=18$m=32768,t=2,p=2$c2FsdA$a2V5",
		"$argon2id$v=19$m=4294967295,t=2,p=2$c2FsdA$a2V5", // would allocate 4 TiB
		"$argon2id$v=19$m=32768,t=1000,p=2$c2FsdA$a2V5",
		"$argon2id$v=19$m=32768,t=2,p=0$c2FsdA$a2V5",
		"$argon2id$v=19$m=32768,t=2,p=2$!!!$a2V5",
		"$argon2id$v=19$m=32768,t=2,p=2$c2FsdA$",
	} {
		if err := VerifyPassword(h, "whatever-password"); err == nil {
			t.Errorf("hash %q verified", h)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	t.Parallel()
	a, b := GeneratePassword(), GeneratePassword()
	if len(a) != 26 || a == b {
		t.Fatalf("generated %q and %q", a, b)
	}
	if err := CheckPasswordPolicy(a); err != nil {
		t.Fatalf("generated password fails the policy: %v", err)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	secret, hash := NewToken()
	if !LooksLikeToken(secret) || len(hash) != 32 || string(HashToken(secret)) != string(hash) {
		t.Fatalf("token %q hash %x", secret, hash)
	}
	other, _ := NewToken()
	if other == secret {
		t.Fatal("two tokens are equal")
	}
	for _, bad := range []string{"", "vrt_", "Bearer " + secret, secret + "x", "xyz_" + secret[4:], secret[:len(secret)-1] + "!"} {
		if LooksLikeToken(bad) {
			t.Errorf("LooksLikeToken(%q) = true", bad)
		}
	}
}

func TestLockout(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := NewLockout(3, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 2 {
		if l.Fail("alice") {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if locked, _ := l.Locked("alice"); locked {
		t.Fatal("locked before the limit")
	}
	if !l.Fail("alice") {
		t.Fatal("not locked at the limit")
	}
	if locked, until := l.Locked("alice"); !locked || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("Locked = %v %v", locked, until)
	}
	if locked, _ := l.Locked("bob"); locked {
		t.Fatal("lock leaked to another name")
	}
	now = now.Add(time.Minute + time.Second)
	if locked, _ := l.Locked("alice"); locked {
		t.Fatal("lock did not expire")
	}
	l.Fail("carol")
	l.Succeed("carol")
	l.Fail("carol")
	if l.Fail("carol") {
		t.Fatal("success did not reset the count")
	}
	// Failures spread further apart than the lock period do not add up.
	l.Fail("dave")
	now = now.Add(2 * time.Minute)
	l.Fail("dave")
	if l.Fail("dave") {
		t.Fatal("stale failures counted")
	}
}

func TestLockoutMemoryIsBounded(t *testing.T) {
	t.Parallel()
	l := NewLockout(5, time.Minute)
	for i := range maxTracked + 10 {
		l.Fail(string(rune(i)) + "@spray")
	}
	if n := len(l.entries); n > maxTracked {
		t.Fatalf("%d entries tracked", n)
	}
}
