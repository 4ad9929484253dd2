package rbac

import (
	"encoding/binary"
	"math/bits"
)

// scopeTable finds interned scopes by a hash of their lower-case bytes
// that Check computes for the request scope and all its path prefixes in
// one pass (prefixHashes), so that resolving a scope is a few probes of a
// small pointer-free table, rather than a Go map lookup (hash, group and
// key misses) per prefix tried. A slot locates the scope's name and its
// ancestor chain in two flat arenas, so that once the slot is read, the
// name to confirm the match and the chain to use are loaded together.
type scopeTable struct {
	shift  uint8
	slots  []scopeSlot
	names  []byte  // every interned scope's lower-case name, back to back
	chains []int32 // every interned scope's ancestor chain, back to back
}

// scopeSlot is 32 bytes: an interned scope's hash, id plus one (0: empty),
// and where its name and chain sit in the arenas.
type scopeSlot struct {
	h                  uint64
	id1                int32
	nameOff, nameLen   int32
	chainOff, chainLen int32
	_                  int32
}

func (sl *scopeSlot) name(t *scopeTable) []byte {
	return t.names[sl.nameOff : sl.nameOff+sl.nameLen]
}

func (sl *scopeSlot) chain(t *scopeTable) []int32 {
	return t.chains[sl.chainOff : sl.chainOff+sl.chainLen]
}

const scopeMul = 0x9e3779b97f4a7c15

func scopeMix(h, w uint64) uint64 {
	return bits.RotateLeft64((h^w)*scopeMul, 29)
}

// scopeHash is the hash of s[:n] given h, the hash of s's whole words
// before n/8*8, and w, s's word at n/8*8 (both as prefixHashes reads them).
func scopeFinish(h, w uint64, n int) uint64 {
	if r := n & 7; r != 0 {
		h = scopeMix(h, w&(1<<(8*r)-1))
	}
	return scopeMix(h, uint64(n)) * 0xbf58476d1ce4e5b9
}

// scopeHash hashes a whole string as prefixHashes hashes a prefix.
func scopeHash(s string) uint64 {
	var h uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		h = scopeMix(h, load8(s, i))
	}
	var w uint64
	for j := len(s) - 1; j >= i; j-- {
		w = w<<8 | uint64(s[j])
	}
	return scopeFinish(h, w, len(s))
}

func buildScopeTable(names []string, chains [][]int32) scopeTable {
	n := 16
	for n < 2*len(names) {
		n <<= 1
	}
	t := scopeTable{shift: uint8(64 - bits.TrailingZeros(uint(n))), slots: make([]scopeSlot, n)}
	mask := uint64(n - 1)
	for id, s := range names {
		h := scopeHash(s)
		i := h >> t.shift
		for t.slots[i].id1 != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = scopeSlot{h: h, id1: int32(id) + 1,
			nameOff: int32(len(t.names)), nameLen: int32(len(s)),
			chainOff: int32(len(t.chains)), chainLen: int32(len(chains[id]))}
		t.names = append(t.names, s...)
		t.chains = append(t.chains, chains[id]...)
	}
	return t
}

// maxPrefixes bounds the prefixes prefixHashes records; a deeper scope
// falls back to resolving by map.
const maxPrefixes = 64

// prefixHashes records in ns and hs the lengths and hashes of s's
// candidate prefixes: s itself and s[:i] for each '/' at i > 0, shortest
// first. It returns how many it recorded, or -1 when there are more than
// maxPrefixes.
func prefixHashes(s []byte, ns *[maxPrefixes]int32, hs *[maxPrefixes]uint64) int {
	k := 0
	var h uint64
	i := 0
	const slashes = ones * '/'
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		// Bytes equal to '/': zero bytes of w^slashes (exact, no false
		// positives: the carry-free form).
		z := w ^ slashes
		m := ^(((z & ^uint64(highs)) + ^uint64(highs)) | z | ^uint64(highs))
		for m != 0 {
			b := bits.TrailingZeros64(m) / 8
			m &= m - 1
			if n := i + b; n > 0 {
				if k == maxPrefixes {
					return -1
				}
				ns[k], hs[k] = int32(n), scopeFinish(h, w, n)
				k++
			}
		}
		h = scopeMix(h, w)
	}
	var w uint64
	for j := len(s) - 1; j >= i; j-- {
		w = w<<8 | uint64(s[j])
	}
	for j := i; j < len(s); j++ {
		if s[j] == '/' && j > 0 {
			if k == maxPrefixes {
				return -1
			}
			ns[k], hs[k] = int32(j), scopeFinish(h, w, j)
			k++
		}
	}
	if k == maxPrefixes {
		return -1
	}
	ns[k], hs[k] = int32(len(s)), scopeFinish(h, w, len(s))
	return k + 1
}

// find returns the slot of the interned scope equal to s whose hash is h.
func (t *scopeTable) find(s []byte, h uint64) (*scopeSlot, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.id1 == 0 {
			return nil, false
		}
		if sl.h == h && string(sl.name(t)) == string(s) {
			return sl, true
		}
	}
}
