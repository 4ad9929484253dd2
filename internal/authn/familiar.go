package authn

import (
	"net/netip"
	"slices"
	"sync"
)

// FamiliarSources remembers, per user, the sources of recent successful
// sign-ins (network prefixes from NetworkKey, country codes, or any other
// string the caller chooses), so SmartLockout can tell a user at home from
// an attacker elsewhere. It holds at most perUser sources per user, the most
// recently remembered, and at most maxTracked users. It is per node and in
// memory: after a restart every source is unfamiliar until the user signs in
// from it again, which errs on the side of the stricter bucket.
type FamiliarSources struct {
	perUser int

	mu    sync.Mutex
	seq   uint64
	users map[string]*familiarUser
}

type familiarUser struct {
	keys []string // oldest first
	last uint64   // seq of the latest Remember, to forget idle users first
}

// NewFamiliarSources returns a FamiliarSources that keeps up to perUser
// sources per user (at least 1).
func NewFamiliarSources(perUser int) *FamiliarSources {
	return &FamiliarSources{perUser: max(perUser, 1), users: map[string]*familiarUser{}}
}

// Seen reports whether user has signed in successfully from key. The empty
// key (an unknown source) is never familiar.
func (f *FamiliarSources) Seen(user, key string) bool {
	if key == "" {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[user]
	return u != nil && slices.Contains(u.keys, key)
}

// Remember records a successful sign-in of user from key, forgetting the
// user's least recently remembered source when the user has perUser already.
func (f *FamiliarSources) Remember(user, key string) {
	if key == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	u := f.users[user]
	if u == nil {
		if len(f.users) >= maxTracked {
			f.forgetIdleHalf()
		}
		u = &familiarUser{}
		f.users[user] = u
	}
	u.last = f.seq
	if i := slices.Index(u.keys, key); i >= 0 {
		u.keys = slices.Delete(u.keys, i, i+1)
	} else if len(u.keys) >= f.perUser {
		u.keys = slices.Delete(u.keys, 0, len(u.keys)-f.perUser+1)
	}
	u.keys = append(u.keys, key)
}

// forgetIdleHalf forgets the half of the users who signed in least recently.
// Only successful sign-ins add users, so this runs once per maxTracked/2 new
// users at most.
func (f *FamiliarSources) forgetIdleHalf() {
	seqs := make([]uint64, 0, len(f.users))
	for _, u := range f.users {
		seqs = append(seqs, u.last)
	}
	slices.Sort(seqs)
	median := seqs[len(seqs)/2]
	for name, u := range f.users {
		if u.last < median {
			delete(f.users, name)
		}
	}
}

// NetworkKey returns the network a sign-in came from as a FamiliarSources
// key: the /24 of an IPv4 address (or IPv4-mapped IPv6 one), the /48 of an
// IPv6 address, the sizes a home or office connection keeps across address
// changes. It returns "" for an invalid address.
func NetworkKey(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
