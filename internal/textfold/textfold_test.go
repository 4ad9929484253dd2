package textfold

import (
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s, p                     string
		prefix, suffix, contains bool
	}{
		{"Windows 11", "windows", true, false, true},
		{"Windows 11", "DOWS 11", false, true, true},
		{"\u212Aelvin", "kel", true, false, true}, // KELVIN SIGN folds to k
		{"STRASSE", "strasse", true, true, true},
		{"Ünïcode", "üNÏ", true, false, true},
		{"abc", "abcd", false, false, false},
		{"", "", true, true, true},
		{"abc", "", true, true, true},
		{"xyz", "y", false, false, true},
	} {
		if got := HasPrefix(tt.s, tt.p); got != tt.prefix {
			t.Errorf("HasPrefix(%q, %q) = %v", tt.s, tt.p, got)
		}
		if got := HasSuffix(tt.s, tt.p); got != tt.suffix {
			t.Errorf("HasSuffix(%q, %q) = %v", tt.s, tt.p, got)
		}
		if got := Contains(tt.s, tt.p); got != tt.contains {
			t.Errorf("Contains(%q, %q) = %v", tt.s, tt.p, got)
		}
	}
}

// TestAgreesWithEqualFold: on whole strings, prefix-of-equal-length
// agrees with strings.EqualFold.
func TestAgreesWithEqualFold(t *testing.T) {
	t.Parallel()
	words := []string{"Device", "DEVICE", "device", "Dévice", "DÉVICE", "\u212A", "k", "K", "ß", "SS", "ǅ", "ǆ", "Σ", "ς", "σ"}
	for _, a := range words {
		for _, b := range words {
			want := strings.EqualFold(a, b)
			got := HasPrefix(a, b) && HasPrefix(b, a)
			if got != want {
				t.Errorf("%q vs %q: %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

func TestNoAllocations(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		_ = Contains("Microsoft Windows 11 Enterprise", "WINDOWS") && HasSuffix("Verity-PAW-0001", "paw-0001")
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
