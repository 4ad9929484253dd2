package authn

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sha1Hex is the upper-case hex SHA-1 of s, as the breached list holds it.
func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// writeBreachedFile writes a sorted list of the given passwords' hashes
// plus filler random hashes, and returns its path.
func writeBreachedFile(t testing.TB, passwords []string, filler int, eol string, trailingEOL bool) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var hashes []string
	for _, p := range passwords {
		hashes = append(hashes, sha1Hex(p))
	}
	for range filler {
		var h [sha1.Size]byte
		for i := range h {
			h[i] = byte(rng.Uint32())
		}
		hashes = append(hashes, strings.ToUpper(hex.EncodeToString(h[:])))
	}
	slices.Sort(hashes)
	var b strings.Builder
	for i, h := range hashes {
		fmt.Fprintf(&b, "%s:%d", h, rng.IntN(1_000_000)+1)
		if i < len(hashes)-1 || trailingEOL {
			b.WriteString(eol)
		}
	}
	return writeFile(t, b.String())
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pwned.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openBreached(t testing.TB, path string) *BreachedList {
	t.Helper()
	b, err := OpenBreachedList(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var breachedPasswords = []string{"password1234", "123456789012", "qwertyuiopas", "letmein-letmein", "correct horse battery staple"}

func TestBreachedListContains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		filler      int
		eol         string
		trailingEOL bool
	}{
		{"only the known passwords", 0, "\n", true},
		{"no final line end", 0, "\n", false},
		{"CRLF as downloaded", 5000, "\r\n", true},
		{"CRLF without a final line end", 5000, "\r\n", false},
		{"large", 50_000, "\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := openBreached(t, writeBreachedFile(t, breachedPasswords, tt.filler, tt.eol, tt.trailingEOL))
			if err := b.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for _, p := range breachedPasswords {
				if found, err := b.Contains(p); err != nil || !found {
					t.Errorf("Contains(%q) = %v, %v; want true", p, found, err)
				}
			}
			for _, p := range []string{"", "password12345", "Password1234", "a fresh passphrase nobody used", "\x00"} {
				if found, err := b.Contains(p); err != nil || found {
					t.Errorf("Contains(%q) = %v, %v; want false", p, found, err)
				}
			}
		})
	}
}

func TestBreachedListEveryLineIsFound(t *testing.T) {
	t.Parallel()
	// Every line of a file, first and last included, is found; the lower
	// case form of a file works as well as the upper case one.
	var passwords []string
	for i := range 300 {
		passwords = append(passwords, fmt.Sprintf("pw-%d", i))
	}
	for _, lower := range []bool{false, true} {
		path := writeBreachedFile(t, passwords, 0, "\n", true)
		if lower {
			data, _ := os.ReadFile(path)
			os.WriteFile(path, []byte(strings.ToLower(string(data))), 0o600)
		}
		b := openBreached(t, path)
		for _, p := range passwords {
			if found, err := b.Contains(p); err != nil || !found {
				t.Fatalf("lower case %v: Contains(%q) = %v, %v", lower, p, found, err)
			}
		}
	}
}

func TestBreachedListOneLine(t *testing.T) {
	t.Parallel()
	for _, content := range []string{sha1Hex("password1234") + ":3", sha1Hex("password1234") + ":3\n", sha1Hex("password1234") + ":3\r\n"} {
		b := openBreached(t, writeFile(t, content))
		if found, err := b.Contains("password1234"); err != nil || !found {
			t.Errorf("%q: Contains = %v, %v", content, found, err)
		}
		if found, err := b.Contains("other"); err != nil || found {
			t.Errorf("%q: Contains(other) = %v, %v", content, found, err)
		}
	}
}

func TestOpenBreachedListRefuses(t *testing.T) {
	t.Parallel()
	good := sha1Hex("x") + ":1\n"
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"empty", "", "is empty"},
		{"NTLM hashes", "8846F7EAEE8FB117AD06BDD830B7586C:12\n", "malformed line at offset 0"},
		{"range response without prefix", strings.Repeat("A", 35) + ":12\n", "malformed line at offset 0"},
		{"not hex", strings.Repeat("G", 40) + ":12\n", "hash is not hexadecimal"},
		{"no count", sha1Hex("x") + ":\n", "want 40 hex digits, a colon and a count"},
		{"count not a number", sha1Hex("x") + ":12a\n", "count is not a decimal number"},
		{"count too long", sha1Hex("x") + ":" + strings.Repeat("9", 21) + "\n", "count longer than 20 digits"},
		{"blank first line", "\n" + good, "malformed line at offset 0"},
		{"first line too long", strings.Repeat("A", 1000) + "\n" + good, "longer than 128 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := OpenBreachedList(writeFile(t, tt.content))
			if err == nil {
				b.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("OpenBreachedList = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := OpenBreachedList(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestBreachedListContainsReportsMalformedLine(t *testing.T) {
	t.Parallel()
	// The first line is fine, so the file opens; every later line is broken,
	// and the search must say where it found one rather than answer false.
	first := "0000000000000000000000000000000000000000:1\n"
	content := first + strings.Repeat("ZZZZ:not a hash line at all\n", 20)
	b := openBreached(t, writeFile(t, content))
	_, err := b.Contains("password1234")
	if err == nil || !strings.Contains(err.Error(), "malformed line at offset") {
		t.Fatalf("Contains = %v; want a malformed line error with an offset", err)
	}
	// The offset named is the start of a broken line.
	var off int
	if _, scanErr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "offset"):], "offset %d", &off); scanErr != nil {
		t.Fatalf("no offset in %v", err)
	}
	if off < len(first) || (off-len(first))%len("ZZZZ:not a hash line at all\n") != 0 {
		t.Fatalf("offset %d is not the start of a broken line", off)
	}

	long := first + strings.Repeat("F", 5000) + "\n"
	b = openBreached(t, writeFile(t, long))
	if _, err := b.Contains("password1234"); err == nil || !strings.Contains(err.Error(), "longer than 128 bytes") {
		t.Fatalf("Contains over a long line = %v", err)
	}
}

func TestBreachedListVerify(t *testing.T) {
	t.Parallel()
	a, b, c := sha1Hex("a"), sha1Hex("b"), sha1Hex("c")
	sorted := slices.Sorted(slices.Values([]string{a, b, c}))
	tests := []struct {
		name    string
		content string
		wantErr string // "" for none
	}{
		{"sorted", sorted[0] + ":1\n" + sorted[1] + ":2\n" + sorted[2] + ":3\n", ""},
		{"sorted CRLF no final line end", sorted[0] + ":1\r\n" + sorted[1] + ":2\r\n" + sorted[2] + ":3", ""},
		{"out of order", sorted[0] + ":1\n" + sorted[2] + ":2\n" + sorted[1] + ":3\n", "line 3 sorts before line 2"},
		{"malformed second line", sorted[0] + ":1\n" + sorted[1] + "-2\n" + sorted[2] + ":3\n", "line 2:"},
		{"blank line", sorted[0] + ":1\n\n" + sorted[2] + ":3\n", "line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := openBreached(t, writeFile(t, tt.content)).Verify()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Verify = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzBreachedList checks that no file content makes a lookup panic, and
// that in a file Verify accepts, every listed password is found.
func FuzzBreachedList(f *testing.F) {
	f.Add([]byte(sha1Hex("password1234")+":1\n"), "password1234")
	f.Add([]byte("0000000000000000000000000000000000000000:1\r\nZZ\n"), "x")
	f.Add([]byte(sha1Hex("a")+":1\n"+sha1Hex("b")+":1"), "b")
	f.Fuzz(func(t *testing.T, content []byte, password string) {
		path := filepath.Join(t.TempDir(), "pwned.txt")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := OpenBreachedList(path)
		if err != nil {
			return
		}
		defer b.Close()
		found, err := b.Contains(password)
		if err != nil || b.Verify() != nil {
			return
		}
		listed := false
		for line := range strings.Lines(string(content)) {
			if len(line) >= 40 && strings.EqualFold(line[:40], sha1Hex(password)) {
				listed = true
			}
		}
		if found != listed {
			t.Fatalf("Contains(%q) = %v; listed %v", password, found, listed)
		}
	})
}
