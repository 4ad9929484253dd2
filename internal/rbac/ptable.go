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

// principalSlot is 32 bytes: two slots to a cache line. p1 is the
// principal id plus one; 0 marks an empty slot.
type principalSlot struct {
	k0, k1     uint64
	p1         int32
	start, end int32
	_          int32
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
		t.slots[i] = principalSlot{k0: k0, k1: k1, p1: p + 1, start: idx.off[p], end: idx.off[p+1]}
	}
	return t
}

// lookup finds the slot of a GUID principal id (either case) without
// allocating; ok is false for an id that is not a GUID or not interned.
func (t *principalTable) lookup(id string) (*principalSlot, bool, bool) {
	k0, k1, isGUID := parseGUIDWords(id)
	if !isGUID || len(t.slots) == 0 {
		return nil, isGUID, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(k0, k1); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.p1 == 0 {
			return nil, true, false
		}
		if s.k0 == k0 && s.k1 == k1 {
			return s, true, true
		}
	}
}

// hexTable maps an ASCII hex digit (either case) to its value and every
// other byte to 0xff.
var hexTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// parseGUIDWords reads the canonical 36-character GUID form, either case,
// as the big-endian words of its 16 bytes (the same as guidWords of
// parseGUIDKey's key).
func parseGUIDWords(s string) (k0, k1 uint64, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return 0, 0, false
	}
	var bad byte
	hex := func(from, to int, w uint64) uint64 {
		for i := from; i < to; i++ {
			v := hexTable[s[i]]
			bad |= v
			w = w<<4 | uint64(v&0xf)
		}
		return w
	}
	k0 = hex(0, 8, 0)
	k0 = hex(9, 13, k0)
	k0 = hex(14, 18, k0)
	k1 = hex(19, 23, 0)
	k1 = hex(24, 36, k1)
	return k0, k1, bad&0xf0 == 0
}
