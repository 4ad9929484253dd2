package rbac

import (
	"math/rand/v2"
	"testing"
)

// TestPrefixHashes checks the one-pass prefix hashes against hashing each
// prefix on its own.
func TestPrefixHashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const alphabet = "/ab/c/Z/-"
	var ns [maxPrefixes]int32
	var hs [maxPrefixes]uint64
	for n := 0; n < 100000; n++ {
		b := make([]byte, 1+rng.IntN(60))
		b[0] = '/'
		for i := 1; i < len(b); i++ {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(50) == 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		k := prefixHashes(b, &ns, &hs)
		var want []int
		for i := 1; i < len(b); i++ {
			if b[i] == '/' {
				want = append(want, i)
			}
		}
		want = append(want, len(b))
		if len(want) > maxPrefixes {
			if k != -1 {
				t.Fatalf("%q: %d prefixes, want -1", b, k)
			}
			continue
		}
		if k != len(want) {
			t.Fatalf("%q: %d prefixes, want %d", b, k, len(want))
		}
		for j, w := range want {
			if int(ns[j]) != w || hs[j] != scopeHash(string(b[:w])) {
				t.Fatalf("%q prefix %d: n=%d h=%x, want n=%d h=%x", b, j, ns[j], hs[j], w, scopeHash(string(b[:w])))
			}
		}
	}
}
