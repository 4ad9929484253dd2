package authn

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestSmartLockoutBuckets(t *testing.T) {
	t.Parallel()
	const (
		home  = true
		away  = false
		limit = 3
		lock  = time.Minute
	)
	type step struct {
		op       string // "fail", "succeed", "locked", "wait"
		name     string
		familiar bool
		wait     time.Duration
		want     bool // for "fail": now locked; for "locked": locked
	}
	fail := func(familiar, want bool) step { return step{op: "fail", name: "alice", familiar: familiar, want: want} }
	locked := func(familiar, want bool) step {
		return step{op: "locked", name: "alice", familiar: familiar, want: want}
	}
	succeed := func(familiar bool) step { return step{op: "succeed", name: "alice", familiar: familiar} }
	wait := func(d time.Duration) step { return step{op: "wait", wait: d} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"an attacker elsewhere cannot lock the user out at home", []step{
			fail(away, false), fail(away, false), fail(away, true),
			locked(away, true), locked(home, false),
			fail(home, false), fail(home, false), locked(home, false),
		}},
		{"failures at home lock home only", []step{
			fail(home, false), fail(home, false), fail(home, true),
			locked(home, true), locked(away, false),
		}},
		{"success at home does not reset the attacker's count", []step{
			fail(away, false), fail(away, false), succeed(home), fail(away, true), locked(away, true),
		}},
		{"success from elsewhere resets that bucket", []step{
			fail(away, false), fail(away, false), succeed(away), fail(away, false), locked(away, false),
		}},
		{"success at home resets home", []step{
			fail(home, false), fail(home, false), succeed(home), fail(home, false), locked(home, false),
		}},
		{"a lock expires", []step{
			fail(away, false), fail(away, false), fail(away, true),
			wait(lock - time.Second), locked(away, true),
			wait(time.Second), locked(away, false),
		}},
		{"failures further apart than the lock period do not add up", []step{
			fail(away, false), wait(2 * lock), fail(away, false), wait(2 * lock), fail(away, false), locked(away, false),
		}},
		{"another name is not locked", []step{
			fail(away, false), fail(away, false), fail(away, true),
			{op: "locked", name: "bob", familiar: away, want: false},
			{op: "fail", name: "bob", familiar: away, want: false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := time.Unix(1000, 0)
			l := NewSmartLockout(limit, lock, func() time.Time { return now })
			for i, s := range tt.steps {
				switch s.op {
				case "fail":
					if got := l.Fail(s.name, s.familiar); got != s.want {
						t.Fatalf("step %d: Fail(%s, familiar %v) = %v; want %v", i, s.name, s.familiar, got, s.want)
					}
				case "locked":
					got, until := l.Locked(s.name, s.familiar)
					if got != s.want || got && !until.After(now) {
						t.Fatalf("step %d: Locked(%s, familiar %v) = %v, %v; want %v", i, s.name, s.familiar, got, until, s.want)
					}
				case "succeed":
					l.Succeed(s.name, s.familiar)
				case "wait":
					now = now.Add(s.wait)
				}
			}
		})
	}
}

func TestSmartLockoutDefaultClock(t *testing.T) {
	t.Parallel()
	l := NewSmartLockout(1, time.Hour, nil)
	if !l.Fail("alice", false) {
		t.Fatal("not locked at the limit")
	}
	if locked, until := l.Locked("alice", false); !locked || time.Until(until) < 59*time.Minute {
		t.Fatalf("Locked = %v until %v", locked, until)
	}
}

func TestSmartLockoutWithFamiliarSources(t *testing.T) {
	t.Parallel()
	// The sign-in flow the SmartLockout doc describes: a user who signed in
	// from home keeps signing in from home while a spray from another
	// network has locked the unfamiliar bucket.
	l := NewSmartLockout(5, time.Minute, nil)
	sources := NewFamiliarSources(8)
	homeIP, attackerIP := netip.MustParseAddr("198.51.100.23"), netip.MustParseAddr("203.0.113.9")
	signIn := func(ip netip.Addr, rightPassword bool) (allowed bool) {
		familiar := sources.Seen("alice", NetworkKey(ip))
		if locked, _ := l.Locked("alice", familiar); locked {
			return false
		}
		if !rightPassword {
			l.Fail("alice", familiar)
			return false
		}
		l.Succeed("alice", familiar)
		sources.Remember("alice", NetworkKey(ip))
		return true
	}
	if !signIn(homeIP, true) {
		t.Fatal("first sign-in refused")
	}
	for range 20 {
		signIn(attackerIP, false)
	}
	if signIn(attackerIP, true) {
		t.Fatal("the attacker's network is not locked")
	}
	// A new address in the same /24 at home is still familiar.
	if !signIn(netip.MustParseAddr("198.51.100.200"), true) {
		t.Fatal("the user was locked out at home")
	}
}

func TestLockoutSprayDoesNotUnlock(t *testing.T) {
	t.Parallel()
	l := NewSmartLockout(3, time.Hour, nil)
	for range 3 {
		l.Fail("alice", false)
	}
	for i := range maxTracked + 10 {
		l.Fail(fmt.Sprintf("spray-%d", i), false)
	}
	if n := len(l.entries); n > maxTracked {
		t.Fatalf("%d entries tracked", n)
	}
	if locked, _ := l.Locked("alice", false); !locked {
		t.Fatal("spraying names pushed a locked account out of the table")
	}
}

func TestLockoutLocksAloneFillTheTable(t *testing.T) {
	t.Parallel()
	// When every entry is a lock, the table still stays bounded.
	l := NewLockout(1, time.Hour)
	for i := range maxTracked + 10 {
		l.Fail(fmt.Sprintf("lock-%d", i))
	}
	if n := len(l.entries); n > maxTracked {
		t.Fatalf("%d entries tracked", n)
	}
	if locked, _ := l.Locked(fmt.Sprintf("lock-%d", maxTracked+9)); !locked {
		t.Fatal("the newest lock was forgotten")
	}
}

func TestSmartLockoutConcurrent(t *testing.T) {
	t.Parallel()
	l := NewSmartLockout(1000, time.Minute, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("user-%d", i%10)
				l.Fail(name, g%2 == 0)
				l.Locked(name, g%2 == 1)
				if i%50 == 0 {
					l.Succeed(name, g%2 == 0)
				}
			}
		})
	}
	wg.Wait()
}
