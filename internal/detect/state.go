package detect

import (
	"hash/maphash"
	"time"
)

// userTable holds the per-user state of the detectors that follow each
// user over time — impossibleTravel's last place and unfamiliarFeatures'
// profile — in one map. At a million users every look-up is a trip to
// main memory; detectors that share a table make one per sign-in, not
// one each (one sign-in's detectors look its user up in turn, and the
// table remembers the last). DefaultDetectors gives its two one table; a
// detector made on its own makes its own. Not safe for concurrent use.
//
// Users are kept by a 64-bit hash of their name, with the table's own
// seed: the map compares keys in its own memory instead of reading each
// name from elsewhere in the heap, and keeps no copy of the names. Two of
// a million names collide once in tens of millions of years of tenants;
// the seed keeps anyone from choosing names that do.
type userTable struct {
	seed maphash.Seed
	m    map[uint64]*userState
	// key and state are the last look-up.
	key   uint64
	state *userState
	// profiled is set once unfamiliarFeatures observes: its sweep is then
	// the table's, keeping a travel state for travelSpan.
	profiled   bool
	travelSpan time.Duration
}

// userState is what the table keeps of a user: 192 bytes.
type userState struct {
	travel  travelState // zero: none
	profile profile     // count 0: none
}

// get returns user's state, made when there is none.
func (t *userTable) get(user string) *userState {
	if t.m == nil {
		t.seed, t.m = maphash.MakeSeed(), map[uint64]*userState{}
	}
	k := maphash.String(t.seed, user)
	if t.state != nil && t.key == k {
		return t.state
	}
	st := t.m[k]
	if st == nil {
		st = &userState{}
		t.m[k] = st
	}
	t.key, t.state = k, st
	return st
}

// sweep calls keep with each user's state, and forgets the users for which
// it returns false.
func (t *userTable) sweep(keep func(st *userState) bool) {
	for k, st := range t.m {
		if !keep(st) {
			delete(t.m, k)
			if k == t.key {
				t.state = nil
			}
		}
	}
}

// fixedWindow is a window of event time, counted from the Unix epoch:
// the n-th of its length, starting at start (Unix seconds).
type fixedWindow struct{ n, start int64 }

// windowOf is the fixed window of length w that t falls in. Detectors
// raise once per entity and fixed window, and key the alert by it: a
// replay after a restart, which may lack the sign-ins before it that
// raised an alert the first time, raises that alert's key again and
// nothing new.
func windowOf(t time.Time, w time.Duration) fixedWindow {
	w = max(w, time.Second)
	n := t.UnixNano() / int64(w)
	if t.UnixNano() < 0 && t.UnixNano()%int64(w) != 0 {
		n--
	}
	return fixedWindow{n, n * int64(w) / int64(time.Second)}
}

// recordID is a sign-in's id as a detector keeps it for evidence: a
// canonical lower-case UUID (Verity's ids and Entra's) in its 16 bytes,
// anything else as it is — half the memory of the string it was read as.
type recordID struct {
	uuid  [16]byte
	other string
}

func idOf(s string) recordID {
	var id recordID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return recordID{other: s}
	}
	n := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		c := s[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		default:
			return recordID{other: s}
		}
		id.uuid[n/2] |= v << (4 * (1 - n%2))
		n++
	}
	if id.uuid == [16]byte{} {
		return recordID{other: s} // the nil UUID is kept as text: the zero recordID is ""
	}
	return id
}

func (id recordID) String() string {
	if id.uuid == [16]byte{} {
		return id.other
	}
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 36)
	for i, x := range id.uuid {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[x>>4], hex[x&15])
	}
	return string(b)
}
