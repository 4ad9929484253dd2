package authn

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var recoveryCodeShape = regexp.MustCompile(`^[2-9a-hjkmnp-z]{5}-[2-9a-hjkmnp-z]{5}$`)

func TestNewRecoveryCodes(t *testing.T) {
	t.Parallel()
	codes, hashes, err := NewRecoveryCodes(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if !recoveryCodeShape.MatchString(c) || seen[c] {
			t.Fatalf("code %q malformed or repeated", c)
		}
		seen[c] = true
		bare := strings.ReplaceAll(c, "-", "")
		if strings.Contains(hashes[i], bare) || strings.Contains(strings.ToLower(hashes[i]), bare) {
			t.Fatalf("hash %q holds its code", hashes[i])
		}
	}
	for _, n := range []int{0, -1, MaxRecoveryCodes + 1} {
		if _, _, err := NewRecoveryCodes(n); err == nil {
			t.Errorf("NewRecoveryCodes(%d) succeeded", n)
		}
	}
}

func TestRecoveryCodesAreSingleUse(t *testing.T) {
	t.Parallel()
	codes, hashes, err := NewRecoveryCodes(5)
	if err != nil {
		t.Fatal(err)
	}
	stored := slices.Clone(hashes)
	for i, c := range codes {
		remaining, ok := UseRecoveryCode(stored, c)
		if !ok || len(remaining) != len(stored)-1 {
			t.Fatalf("code %d: ok %v, %d left of %d", i, ok, len(remaining), len(stored))
		}
		if slices.Contains(remaining, hashes[i]) {
			t.Fatalf("code %d: its hash was kept", i)
		}
		if again, ok := UseRecoveryCode(remaining, c); ok || len(again) != len(remaining) {
			t.Fatalf("code %d worked twice", i)
		}
		stored = remaining
	}
	if len(stored) != 0 {
		t.Fatalf("%d hashes left", len(stored))
	}
}

func TestUseRecoveryCode(t *testing.T) {
	t.Parallel()
	codes, hashes, err := NewRecoveryCodes(3)
	if err != nil {
		t.Fatal(err)
	}
	code := codes[1]
	bare := strings.ReplaceAll(code, "-", "")
	otherCodes, _, _ := NewRecoveryCodes(1)
	tests := []struct {
		name  string
		input string
		want  bool
	}{
		{"as shown", code, true},
		{"upper case", strings.ToUpper(code), true},
		{"without the dash", bare, true},
		{"upper case without the dash", strings.ToUpper(bare), true},
		{"space for the dash", bare[:5] + " " + bare[5:], true},
		{"surrounding spaces", "  " + code + " ", true},
		{"another batch's code", otherCodes[0], false},
		{"one character changed", swapFirst(code), false},
		{"too short", code[:len(code)-1], false},
		{"too long", code + "a", false},
		{"ambiguous zero", "0" + code[1:], false},
		{"ambiguous letter o", "o" + code[1:], false},
		{"empty", "", false},
		{"dashes only", "-----------", false},
		{"hash as the code", hashes[1], false},
		{"very long input", strings.Repeat(code, 1000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(hashes)
			remaining, ok := UseRecoveryCode(hashes, tt.input)
			if ok != tt.want {
				t.Fatalf("UseRecoveryCode(%q) ok = %v; want %v", tt.input, ok, tt.want)
			}
			if !slices.Equal(hashes, before) {
				t.Fatal("the caller's slice was changed")
			}
			wantRemaining := hashes
			if tt.want {
				wantRemaining = []string{hashes[0], hashes[2]}
			}
			if !slices.Equal(remaining, wantRemaining) {
				t.Fatalf("remaining %v; want %v", remaining, wantRemaining)
			}
		})
	}
}

func swapFirst(code string) string {
	if code[0] == '2' {
		return "3" + code[1:]
	}
	return "2" + code[1:]
}

func TestUseRecoveryCodeSkipsMalformedHashes(t *testing.T) {
	t.Parallel()
	codes, hashes, err := NewRecoveryCodes(1)
	if err != nil {
		t.Fatal(err)
	}
	stored := []string{"", "plaintext", recoveryPrefix + "!!!$!!!", recoveryPrefix + "c2FsdA$c2FsdA", hashes[0]}
	remaining, ok := UseRecoveryCode(stored, codes[0])
	if !ok || !slices.Equal(remaining, stored[:4]) {
		t.Fatalf("ok %v, remaining %v", ok, remaining)
	}
	if _, ok := UseRecoveryCode(stored[:4], "plaintext"); ok {
		t.Fatal("a malformed stored entry matched")
	}
}

func TestRecoveryCodeAlphabetIsUniform(t *testing.T) {
	t.Parallel()
	counts := map[rune]int{}
	const codes = 3100
	for range codes {
		for _, r := range randomRecoveryCode() {
			counts[r]++
		}
	}
	if len(counts) != len(recoveryAlphabet) {
		t.Fatalf("%d distinct characters drawn; want %d", len(counts), len(recoveryAlphabet))
	}
	// 1000 expected per character; a biased draw (256 % 31 = 8 extra values
	// for the first eight characters) would give about 1030 to them and less
	// elsewhere, so this bound catches gross bias, not the subtle kind.
	for r, n := range counts {
		if !strings.ContainsRune(recoveryAlphabet, r) || n < 850 || n > 1150 {
			t.Errorf("character %q drawn %d times of %d", r, n, codes*recoveryLen)
		}
	}
}
