package authn

import (
	"sync"
	"time"
)

// Lockout slows password guessing: after max consecutive failures for one
// account name, sign-in for that name is refused until the lock expires.
// It is per node; a cluster of n nodes allows at most n×max guesses per
// lock period.
type Lockout struct {
	lockTable[string]
}

// NewLockout returns a Lockout that locks after max failures for duration.
func NewLockout(max int, duration time.Duration) *Lockout {
	return &Lockout{newLockTable[string](max, duration, time.Now)}
}

// Locked reports whether name is locked and until when.
func (l *Lockout) Locked(name string) (bool, time.Time) { return l.locked(name) }

// Fail records a failed attempt and reports whether name is now locked.
func (l *Lockout) Fail(name string) bool { return l.fail(name) }

// Succeed clears the failures of name.
func (l *Lockout) Succeed(name string) { l.succeed(name) }

// SmartLockout is a Lockout that counts failures from familiar and
// unfamiliar sources in separate buckets, as Entra's smart lockout does: a
// password-spraying attacker elsewhere locks only the unfamiliar bucket, and
// the user keeps signing in from home. The caller decides what familiar
// means, typically with FamiliarSources:
//
//	familiar := sources.Seen(user, NetworkKey(ip))
//	if locked, until := lockout.Locked(user, familiar); locked { refuse until then }
//	on a wrong password: lockout.Fail(user, familiar)
//	on success:          lockout.Succeed(user, familiar); sources.Remember(user, NetworkKey(ip))
type SmartLockout struct {
	lockTable[smartKey]
}

type smartKey struct {
	name     string
	familiar bool
}

// NewSmartLockout returns a SmartLockout that locks a bucket after max
// failures for duration, reading the time from now (time.Now when nil).
func NewSmartLockout(max int, duration time.Duration, now func() time.Time) *SmartLockout {
	if now == nil {
		now = time.Now
	}
	return &SmartLockout{newLockTable[smartKey](max, duration, now)}
}

// Locked reports whether sign-in to name from a source of this familiarity
// is locked, and until when.
func (l *SmartLockout) Locked(name string, familiar bool) (bool, time.Time) {
	return l.locked(smartKey{name, familiar})
}

// Fail records a failed attempt from a source of this familiarity and
// reports whether that bucket is now locked.
func (l *SmartLockout) Fail(name string, familiar bool) bool {
	return l.fail(smartKey{name, familiar})
}

// Succeed clears the failures of name from sources of this familiarity only:
// the user signing in at home says nothing about an attacker's guesses from
// elsewhere, and must not give the attacker a fresh count.
func (l *SmartLockout) Succeed(name string, familiar bool) {
	l.succeed(smartKey{name, familiar})
}

// lockTable counts consecutive failures per key and locks a key for
// duration once they reach max.
type lockTable[K comparable] struct {
	max      int
	duration time.Duration
	now      func() time.Time

	mu      sync.Mutex
	entries map[K]*lockEntry
}

type lockEntry struct {
	failures int
	until    time.Time
	last     time.Time
}

// maxTracked bounds the memory an attacker spraying names can make us use.
const maxTracked = 100_000

func newLockTable[K comparable](max int, duration time.Duration, now func() time.Time) lockTable[K] {
	return lockTable[K]{max: max, duration: duration, now: now, entries: map[K]*lockEntry{}}
}

func (l *lockTable[K]) locked(k K) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[k]
	if e == nil || !l.now().Before(e.until) {
		return false, time.Time{}
	}
	return true, e.until
}

func (l *lockTable[K]) fail(k K) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.entries) >= maxTracked {
		l.prune(now)
	}
	e := l.entries[k]
	if e == nil {
		e = &lockEntry{}
		l.entries[k] = e
	}
	if now.Sub(e.last) > l.duration {
		e.failures = 0 // old failures expire
	}
	e.failures++
	e.last = now
	if e.failures >= l.max {
		e.until = now.Add(l.duration)
		e.failures = 0
		return true
	}
	return false
}

func (l *lockTable[K]) succeed(k K) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, k)
}

// prune forgets expired entries and, if the table is still full, forgets
// down to half: failure counts first, so that spraying fresh names cannot
// push a locked account out of the table and unlock it; locks themselves
// only when locks alone fill it.
func (l *lockTable[K]) prune(now time.Time) {
	for k, e := range l.entries {
		if now.After(e.until) && now.Sub(e.last) > l.duration {
			delete(l.entries, k)
		}
	}
	for _, keepLocks := range []bool{true, false} {
		if len(l.entries) < maxTracked {
			return
		}
		for k, e := range l.entries {
			if keepLocks && now.Before(e.until) {
				continue
			}
			delete(l.entries, k)
			if len(l.entries) < maxTracked/2 {
				break
			}
		}
	}
}
