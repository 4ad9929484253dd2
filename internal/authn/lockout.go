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
	max      int
	duration time.Duration
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*lockEntry
}

type lockEntry struct {
	failures int
	until    time.Time
	last     time.Time
}

// maxTracked bounds the memory an attacker spraying names can make us use.
const maxTracked = 100_000

// NewLockout returns a Lockout that locks after max failures for duration.
func NewLockout(max int, duration time.Duration) *Lockout {
	return &Lockout{max: max, duration: duration, now: time.Now, entries: map[string]*lockEntry{}}
}

// Locked reports whether name is locked and until when.
func (l *Lockout) Locked(name string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[name]
	if e == nil || !l.now().Before(e.until) {
		return false, time.Time{}
	}
	return true, e.until
}

// Fail records a failed attempt and reports whether name is now locked.
func (l *Lockout) Fail(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.entries) >= maxTracked {
		l.prune(now)
	}
	e := l.entries[name]
	if e == nil {
		e = &lockEntry{}
		l.entries[name] = e
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

// Succeed clears the failures of name.
func (l *Lockout) Succeed(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, name)
}

func (l *Lockout) prune(now time.Time) {
	for k, e := range l.entries {
		if now.After(e.until) && now.Sub(e.last) > l.duration {
			delete(l.entries, k)
		}
	}
	if len(l.entries) >= maxTracked { // still full: forget the oldest half
		for k := range l.entries {
			delete(l.entries, k)
			if len(l.entries) < maxTracked/2 {
				break
			}
		}
	}
}
