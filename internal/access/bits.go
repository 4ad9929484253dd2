package access

// Policy sets on the hot path are bit masks over the engine's policies,
// one bit per policy, in []uint64 words; every mask of an engine has the
// same length. These helpers do not allocate.

func orInto(dst, src []uint64) {
	for i := range min(len(dst), len(src)) {
		dst[i] |= src[i]
	}
}

func andNotInto(dst, src []uint64) {
	for i := range min(len(dst), len(src)) {
		dst[i] &^= src[i]
	}
}

func setBit(m []uint64, i int) { m[i/64] |= 1 << (i % 64) }

func hasBit(m []uint64, i int) bool { return m[i/64]&(1<<(i%64)) != 0 }

// table is a set of masks, one row per token, in one flat slice.
type table struct {
	words int
	rows  []uint64
}

func (t *table) row(i int) []uint64 { return t.rows[i*t.words : (i+1)*t.words] }

// add appends an empty row and returns its index.
func (t *table) add() int {
	t.rows = append(t.rows, make([]uint64, t.words)...)
	return len(t.rows)/t.words - 1
}

// idFilter is a 4096-bit Bloom filter (one hash) over the ids policies
// name: most of a user's groups are named by no policy, and the filter
// rules them out without hashing the whole id for a map lookup.
type idFilter [64]uint64

// idHash mixes the first eight bytes of an id (32 random bits of a GUID)
// into 12 bits.
func idHash(s string) uint32 {
	var v uint64
	for i := range min(len(s), 8) {
		v |= uint64(s[i]) << (8 * i)
	}
	return uint32((v * 0x9E3779B97F4A7C15) >> 52)
}

func (f *idFilter) add(s string) { h := idHash(s); f[h>>6] |= 1 << (h & 63) }

func (f *idFilter) mayHave(s string) bool { h := idHash(s); return f[h>>6]&(1<<(h&63)) != 0 }
