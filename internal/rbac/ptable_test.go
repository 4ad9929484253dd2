package rbac

import (
	"math/rand/v2"
	"testing"
)

// TestParseGUIDWords checks the word-at-a-time parser against parseGUIDKey
// on GUIDs and near-GUIDs (one byte changed to any value).
func TestParseGUIDWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const hexd = "0123456789abcdefABCDEF"
	for n := 0; n < 200000; n++ {
		b := []byte("00000000-0000-0000-0000-000000000000")
		for i := range b {
			if b[i] != '-' {
				b[i] = hexd[rng.IntN(len(hexd))]
			}
		}
		if n%2 == 1 {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		s := string(b)
		k, ok := parseGUIDKey(s)
		k0, k1, ok2 := parseGUIDWords(s)
		if ok != ok2 {
			t.Fatalf("%q: parseGUIDKey ok=%v, parseGUIDWords ok=%v", s, ok, ok2)
		}
		if ok {
			w0, w1 := guidWords(k)
			if w0 != k0 || w1 != k1 {
				t.Fatalf("%q: %x %x, want %x %x", s, k0, k1, w0, w1)
			}
		}
	}
	for _, s := range []string{"", "x", "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000", "00000000_0000-0000-0000-000000000000"} {
		if _, _, ok := parseGUIDWords(s); ok {
			t.Errorf("%q parsed as a GUID", s)
		}
	}
}

// TestLower checks the word-at-a-time lower against a byte-at-a-time one,
// non-ASCII bytes included.
func TestLower(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 100000; n++ {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			switch rng.IntN(4) {
			case 0:
				b[i] = byte(rng.IntN(256))
			default:
				b[i] = byte(32 + rng.IntN(96))
			}
		}
		want := make([]byte, len(b))
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			want[i] = c
		}
		if got := lower(nil, string(b)); string(got) != string(want) {
			t.Fatalf("lower(%q) = %q, want %q", b, got, want)
		}
	}
}
