package authn

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// phc builds a PHC string by hand so tests can name any parameters.
func phc(params string, salt, key []byte) string {
	return "$argon2id$v=19$" + params + "$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

func TestVerifyPasswordOlderParameters(t *testing.T) {
	t.Parallel()
	const password = "correct horse battery staple"
	tests := []struct {
		name   string
		params argonParams
	}{
		{"current", currentParams},
		{"OWASP m=19MiB t=2 p=1", argonParams{memory: 19 * 1024, time: 2, threads: 1, keyLen: 32}},
		{"OWASP m=9MiB t=4 p=1", argonParams{memory: 9 * 1024, time: 4, threads: 1, keyLen: 32}},
		{"small memory, 16-byte key", argonParams{memory: 64, time: 1, threads: 1, keyLen: 16}},
		{"64-byte key, 4 lanes", argonParams{memory: 1024, time: 3, threads: 4, keyLen: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := hashWith(password, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyPassword(h, password); err != nil {
				t.Fatalf("right password rejected: %v", err)
			}
			if err := VerifyPassword(h, password+"!"); !errors.Is(err, ErrMismatch) {
				t.Fatalf("wrong password: %v; want ErrMismatch", err)
			}
			if got, want := NeedsRehash(h), tt.params != currentParams; got != want {
				t.Fatalf("NeedsRehash(%s) = %v; want %v", h, got, want)
			}
		})
	}
}

func TestVerifyPasswordMatchesArgon2(t *testing.T) {
	t.Parallel()
	// A hash made outside HashPassword, from a fixed salt, must verify: the
	// format is the PHC string other argon2 tools write.
	salt := []byte("somesalt-16bytes")
	key := argon2.IDKey([]byte("password1234"), salt, 2, 4096, 2, 32)
	h := phc("m=4096,t=2,p=2", salt, key)
	if err := VerifyPassword(h, "password1234"); err != nil {
		t.Fatalf("VerifyPassword(%s) = %v", h, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	salt, key := make([]byte, saltLen), make([]byte, argonKeyLen)
	tests := []struct {
		name    string
		encoded string
		want    bool
	}{
		{"current parameters", phc("m=32768,t=2,p=2", salt, key), false},
		{"less memory", phc("m=19456,t=2,p=2", salt, key), true},
		{"more memory", phc("m=65536,t=2,p=2", salt, key), true},
		{"other time", phc("m=32768,t=3,p=2", salt, key), true},
		{"other parallelism", phc("m=32768,t=2,p=1", salt, key), true},
		{"shorter key", phc("m=32768,t=2,p=2", salt, key[:16]), true},
		{"longer salt only", phc("m=32768,t=2,p=2", make([]byte, 32), key), false},
		{"unreadable", "plaintext", true},
		{"empty", "", true},
		{"older version", strings.Replace(phc("m=32768,t=2,p=2", salt, key), "v=19", "v=16", 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := NeedsRehash(tt.encoded); got != tt.want {
				t.Errorf("NeedsRehash(%q) = %v; want %v", tt.encoded, got, tt.want)
			}
		})
	}
}

func TestParseArgon2idRefuses(t *testing.T) {
	t.Parallel()
	salt, key := make([]byte, saltLen), make([]byte, argonKeyLen)
	tests := []struct {
		name    string
		encoded string
		wantErr string
	}{
		{"empty", "", "unsupported password hash format"},
		{"argon2i", "$argon2i$v=19$m=32768,t=2,p=2$c2FsdHNhbHQ$a2V5", "unsupported password hash format"},
		{"text before", "x$argon2id$v=19$m=32768,t=2,p=2$c2FsdHNhbHQ$a2V5", "unsupported password hash format"},
		{"extra field", phc("m=32768,t=2,p=2", salt, key) + "$x", "unsupported password hash format"},
		{"version 16", strings.Replace(phc("m=32768,t=2,p=2", salt, key), "v=19", "v=16", 1), "unsupported argon2 version"},
		{"version missing", strings.Replace(phc("m=32768,t=2,p=2", salt, key), "v=19", "19", 1), "unsupported argon2 version"},
		{"parameters reordered", phc("t=2,m=32768,p=2", salt, key), "want m= in position 1"},
		{"fourth parameter", phc("m=32768,t=2,p=2,k=1", salt, key), "want m=,t=,p="},
		{"negative memory", phc("m=-1,t=2,p=2", salt, key), "malformed argon2 parameter m=-1"},
		{"memory not a number", phc("m=lots,t=2,p=2", salt, key), "malformed argon2 parameter m=lots"},
		{"memory beyond uint32", phc("m=4294967296,t=2,p=2", salt, key), "malformed argon2 parameter"},
		{"4 TiB of memory", phc("m=4294967295,t=2,p=2", salt, key), "argon2 memory 4294967295 KiB out of range"},
		{"512 MiB of memory", phc("m=524288,t=1,p=2", salt, key), "argon2 memory 524288 KiB out of range"},
		{"memory below 8p", phc("m=15,t=2,p=2", salt, key), "argon2 memory 15 KiB out of range [16,"},
		{"time 0", phc("m=32768,t=0,p=2", salt, key), "argon2 time 0 out of range"},
		{"time 1000", phc("m=32768,t=1000,p=2", salt, key), "argon2 time 1000 out of range"},
		{"too much work", phc("m=262144,t=5,p=2", salt, key), "argon2 work m×t = 1310720 above the limit"},
		{"parallelism 0", phc("m=32768,t=2,p=0", salt, key), "argon2 parallelism 0 out of range"},
		{"parallelism 255", phc("m=32768,t=2,p=255", salt, key), "argon2 parallelism 255 out of range"},
		{"salt not base64", "$argon2id$v=19$m=32768,t=2,p=2$!!!$" + base64.RawStdEncoding.EncodeToString(key), "malformed salt"},
		{"salt padded", "$argon2id$v=19$m=32768,t=2,p=2$" + base64.StdEncoding.EncodeToString(salt[:7]) + "$" + base64.RawStdEncoding.EncodeToString(key), "malformed salt"},
		{"salt too short", phc("m=32768,t=2,p=2", salt[:4], key), "salt of 4 bytes out of range"},
		{"key empty", phc("m=32768,t=2,p=2", salt, nil), "key of 0 bytes out of range"},
		{"key too short", phc("m=32768,t=2,p=2", salt, key[:8]), "key of 8 bytes out of range"},
		{"key too long", phc("m=32768,t=2,p=2", salt, make([]byte, 65)), "key of 65 bytes out of range"},
		{"string too long", phc("m=32768,t=2,p=2", salt, key) + strings.Repeat("A", maxEncodedLen), "longer than 256 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := parseArgon2id(tt.encoded)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseArgon2id(%q) = %v; want an error containing %q", tt.encoded, err, tt.wantErr)
			}
			if err := VerifyPassword(tt.encoded, "whatever-password"); err == nil || errors.Is(err, ErrMismatch) {
				t.Fatalf("VerifyPassword = %v; want a format error", err)
			}
		})
	}
}

func TestParseArgon2idAcceptsBounds(t *testing.T) {
	t.Parallel()
	salt, key := make([]byte, minSaltLen), make([]byte, maxArgonKeyLen)
	for _, params := range []string{"m=8,t=1,p=1", "m=128,t=1,p=16", "m=262144,t=4,p=16", "m=32768,t=10,p=1"} {
		if _, _, _, err := parseArgon2id(phc(params, salt, key)); err != nil {
			t.Errorf("%s: %v", params, err)
		}
	}
}

// FuzzParseArgon2id checks that no stored string makes the parser panic or
// accept parameters outside the bounds.
func FuzzParseArgon2id(f *testing.F) {
	salt, key := make([]byte, saltLen), make([]byte, argonKeyLen)
	for _, s := range []string{"", phc("m=32768,t=2,p=2", salt, key), phc("m=4294967295,t=0,p=0", salt, key), "$argon2id$v=19$m=1,t=1,p=1$$", "$$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parseArgon2id(s)
		if err != nil {
			return
		}
		if p.memory > maxArgonMemory || p.time < 1 || p.time > maxArgonTime || p.threads < 1 || p.threads > maxArgonThreads ||
			uint64(p.memory)*uint64(p.time) > maxArgonWork || len(salt) < minSaltLen || len(key) < minArgonKeyLen {
			t.Fatalf("accepted out-of-bounds %s: %+v", s, p)
		}
		if p.keyLen != uint32(len(key)) {
			t.Fatalf("keyLen %d for a %d-byte key", p.keyLen, len(key))
		}
	})
}
