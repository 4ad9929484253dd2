package rbac

import (
	"iter"
	"math/bits"
)

// PrincipalLister is an Options.Principals that can also list every
// principal it knows (users, service principals, managed identities).
// Given one, Compile resolves each listed principal against the engine
// once — the principal and its transitive groups, reduced to those the
// engine knows, with where their assignments sit — so that Check, asked
// about a listed principal without Request.Groups, reads one small record
// instead of resolving the groups again on every request.
// *directory.Snapshot serves it.
type PrincipalLister interface {
	Principals
	PrincipalIDs() iter.Seq[string]
}

// subjectTable maps a listed principal's GUID to its subject: the spans of
// the principal and of its groups that the engine knows, back to back in
// one array. Like principalTable it holds no pointers.
type subjectTable struct {
	shift uint8
	slots []subjectSlot
	spans []subjectSpan
}

// subjectSlot is 32 bytes; n1 is the number of spans plus one (0: empty).
type subjectSlot struct {
	k0, k1 uint64
	off    int32
	n1     int32
	_      [2]int32
}

// subjectSpan is one principal of a subject: its id and its range in
// byPrincipal.entries, with the 64-bit fold of its scope filter (bit
// scopeBit8&63 for each scope of its assignments).
type subjectSpan struct {
	pid        int32
	start, end int32
	fence      int32 // see byPrincipalIndex.fences
	scopes     [2]uint64
}

// fold128 folds a 256-bit scope filter to the 128 bits a subjectSpan keeps.
func (f *scopeFilter) fold128() [2]uint64 { return [2]uint64{f[0] | f[2], f[1] | f[3]} }

func (t *subjectTable) home(k0, k1 uint64) uint64 {
	h := (k1 ^ bits.RotateLeft64(k0*0x9e3779b97f4a7c15, 31)) * 0xbf58476d1ce4e5b9
	return h >> t.shift
}

// buildSubjects resolves every principal the lister lists. Principals
// whose id is not a GUID are left to Check's general path.
func (e *Engine) buildSubjects(l PrincipalLister) subjectTable {
	type subject struct {
		k0, k1 uint64
		off, n int32
	}
	var subs []subject
	var spans []subjectSpan
	add := func(id string) {
		p, _, ok := e.lookupPrincipal(id, nil)
		if !ok {
			return
		}
		sp := subjectSpan{pid: p, start: e.byPrincipal.off[p], end: e.byPrincipal.off[p+1], fence: e.byPrincipal.fenceAt[p]}
		var f scopeFilter
		for _, pe := range e.byPrincipal.entries[sp.start:sp.end] {
			f.add(pe.bit)
		}
		sp.scopes = f.fold128()
		spans = append(spans, sp)
	}
	for id := range l.PrincipalIDs() {
		k0, k1, ok := parseGUIDWords(id)
		if !ok {
			continue
		}
		off := int32(len(spans))
		add(id)
		for _, g := range l.TransitiveMemberOf(id) {
			add(g)
		}
		subs = append(subs, subject{k0, k1, off, int32(len(spans)) - off})
	}
	if len(subs) == 0 {
		return subjectTable{}
	}
	n := 16
	for n < 2*len(subs) {
		n <<= 1
	}
	t := subjectTable{shift: uint8(64 - bits.TrailingZeros(uint(n))), slots: make([]subjectSlot, n), spans: spans}
	mask := uint64(n - 1)
	for _, s := range subs {
		i := t.home(s.k0, s.k1)
		for ; t.slots[i].n1 != 0; i = (i + 1) & mask {
			if t.slots[i].k0 == s.k0 && t.slots[i].k1 == s.k1 {
				break // listed twice: the first resolution stands
			}
		}
		if t.slots[i].n1 == 0 {
			t.slots[i] = subjectSlot{k0: s.k0, k1: s.k1, off: s.off, n1: s.n + 1}
		}
	}
	return t
}

// findFrom returns the subject slot of the GUID k0, k1 probing from home.
func (t *subjectTable) findFrom(k0, k1, home uint64) *subjectSlot {
	mask := uint64(len(t.slots) - 1)
	for i := home; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.n1 == 0 {
			return nil
		}
		if s.k0 == k0 && s.k1 == k1 {
			return s
		}
	}
}

func (t *subjectTable) of(s *subjectSlot) []subjectSpan { return t.spans[s.off : s.off+s.n1-1] }
