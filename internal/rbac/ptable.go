package rbac

import (
	"encoding/binary"
	"math/bits"
)

// principalTable is the hot path's principal lookup: an open-addressing
// table keyed by a GUID's 16 bytes (as two words) whose slot also holds
// the principal's range in byPrincipal.entries, so that one probe (one
// cache line in the common case) turns a group id into its assignments.
// It holds no pointers, so the GC does not scan it. Principals whose ids
// are not GUIDs stay in Engine.principalIndex.
type principalTable struct {
	shift uint8
	slots []principalSlot
}

// principalSlot is 64 bytes, one cache line. p1 is the principal id plus
// one; 0 marks an empty slot. scopes is a 256-bit filter of the scopes of
// the principal's assignments (scopeBit8), so that Check skips the
// assignments of a principal none of whose scopes can be in the request's
// chain without reading them.
type principalSlot struct {
	k0, k1     uint64
	p1         int32
	start, end int32
	fence      int32 // see byPrincipalIndex.fences
	scopes     scopeFilter
}

// scopeFilter is a 256-bit set of scopeBit8 values.
type scopeFilter [4]uint64

// scopeBit8 is the scope's bit in a scopeFilter.
func scopeBit8(scope int32) uint8 {
	return uint8(uint32(scope) * 0x9e3779b1 >> 24)
}

func (f *scopeFilter) add(b uint8) { f[b>>6] |= 1 << (b & 63) }

func (f *scopeFilter) has(b uint8) bool { return f[b>>6]&(1<<(b&63)) != 0 }

func (f *scopeFilter) meets(g *scopeFilter) bool {
	return f[0]&g[0]|f[1]&g[1]|f[2]&g[2]|f[3]&g[3] != 0
}

func guidWords(k guidKey) (uint64, uint64) {
	return binary.BigEndian.Uint64(k[:8]), binary.BigEndian.Uint64(k[8:])
}

func (t *principalTable) home(k0, k1 uint64) uint64 {
	h := (k0 ^ bits.RotateLeft64(k1*0x9e3779b97f4a7c15, 29)) * 0xbf58476d1ce4e5b9
	return h >> t.shift
}

func buildPrincipalTable(guids map[guidKey]int32, idx *byPrincipalIndex) principalTable {
	n := 16
	for n < 2*len(guids) {
		n <<= 1
	}
	t := principalTable{shift: uint8(64 - bits.TrailingZeros(uint(n))), slots: make([]principalSlot, n)}
	mask := uint64(n - 1)
	for k, p := range guids {
		k0, k1 := guidWords(k)
		i := t.home(k0, k1)
		for t.slots[i].p1 != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = principalSlot{k0: k0, k1: k1, p1: p + 1, start: idx.off[p], end: idx.off[p+1], fence: idx.fenceAt[p]}
		for _, pe := range idx.entries[idx.off[p]:idx.off[p+1]] {
			t.slots[i].scopes.add(pe.bit)
		}
	}
	return t
}

// findFrom is lookup for a GUID already parsed into its words, whose home
// slot is home.
func (t *principalTable) findFrom(k0, k1, home uint64) *principalSlot {
	if len(t.slots) == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := home; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.p1 == 0 {
			return nil
		}
		if s.k0 == k0 && s.k1 == k1 {
			return s
		}
	}
}

// parseGUIDWords reads the canonical 36-character GUID form, either case,
// as the big-endian words of its 16 bytes (the same as guidWords of
// parseGUIDKey's key). It converts eight hex digits at a time.
func parseGUIDWords(s string) (k0, k1 uint64, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return 0, 0, false
	}
	a, ok1 := hex8(load8(s, 0))
	b, ok2 := hex8(load4(s, 9) | load4(s, 14)<<32)
	c, ok3 := hex8(load4(s, 19) | load4(s, 24)<<32)
	d, ok4 := hex8(load8(s, 28))
	return a<<32 | b, c<<32 | d, ok1 && ok2 && ok3 && ok4
}

func load8(s string, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

func load4(s string, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// between sets the high bit of each byte of x (all bytes < 0x80) that is
// strictly between m and n.
func between(x uint64, m, n uint64) uint64 {
	return (ones*(127+n) - x) & ^x & (x + ones*(127-m)) & highs
}

// hex8 converts eight ASCII hex digits (the first in the low byte) to
// their 32-bit value; ok is false unless every byte is a hex digit.
func hex8(x uint64) (uint64, bool) {
	if x&highs != 0 {
		return 0, false
	}
	digit := between(x, '0'-1, '9'+1)
	letter := between(x|ones*0x20, 'a'-1, 'f'+1)
	if digit|letter != highs {
		return 0, false
	}
	v := x&(ones*0x0f) + (letter>>7)*9
	u := (v&0x0f000f000f000f00)>>8 | (v&0x000f000f000f000f)<<4
	return uint64(byte(u))<<24 | uint64(byte(u>>16))<<16 | uint64(byte(u>>32))<<8 | uint64(byte(u>>48)), true
}
