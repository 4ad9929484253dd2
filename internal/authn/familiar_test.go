package authn

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestFamiliarSources(t *testing.T) {
	t.Parallel()
	f := NewFamiliarSources(3)
	if f.Seen("alice", "198.51.100.0/24") {
		t.Fatal("seen before any sign-in")
	}
	f.Remember("alice", "198.51.100.0/24")
	f.Remember("alice", "NZ")
	tests := []struct {
		name, user, key string
		want            bool
	}{
		{"remembered network", "alice", "198.51.100.0/24", true},
		{"remembered country", "alice", "NZ", true},
		{"other network", "alice", "203.0.113.0/24", false},
		{"keys are exact", "alice", "nz", false},
		{"other user", "bob", "NZ", false},
		{"empty key", "alice", "", false},
	}
	for _, tt := range tests {
		if got := f.Seen(tt.user, tt.key); got != tt.want {
			t.Errorf("%s: Seen(%q, %q) = %v; want %v", tt.name, tt.user, tt.key, got, tt.want)
		}
	}
	f.Remember("alice", "")
	if f.Seen("alice", "") {
		t.Fatal("the empty key was remembered")
	}
}

func TestFamiliarSourcesPerUserBound(t *testing.T) {
	t.Parallel()
	f := NewFamiliarSources(3)
	for _, k := range []string{"a", "b", "c"} {
		f.Remember("alice", k)
	}
	f.Remember("alice", "a") // "a" is now the most recent; "b" the oldest
	f.Remember("alice", "d")
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if got := f.Seen("alice", k); got != want {
			t.Errorf("Seen(%q) = %v; want %v", k, got, want)
		}
	}
	if n := len(f.users["alice"].keys); n != 3 {
		t.Fatalf("%d keys kept", n)
	}
	one := NewFamiliarSources(0)
	one.Remember("bob", "x")
	one.Remember("bob", "y")
	if one.Seen("bob", "x") || !one.Seen("bob", "y") {
		t.Fatal("a bound below 1 did not keep exactly the latest source")
	}
}

func TestFamiliarSourcesUserBound(t *testing.T) {
	t.Parallel()
	f := NewFamiliarSources(2)
	for i := range maxTracked {
		f.Remember(fmt.Sprintf("user-%d", i), "NZ")
	}
	f.Remember("user-0", "AU") // known already: no eviction, and now recent
	f.Remember("latest", "NZ") // the table is full: the idle half goes
	if n := len(f.users); n > maxTracked/2+2 {
		t.Fatalf("%d users tracked", n)
	}
	for user, want := range map[string]bool{"latest": true, "user-0": true, fmt.Sprintf("user-%d", maxTracked-1): true, "user-1": false} {
		if got := f.Seen(user, "NZ"); got != want {
			t.Errorf("Seen(%s) = %v; want %v", user, got, want)
		}
	}
}

func TestNetworkKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr netip.Addr
		want string
	}{
		{netip.MustParseAddr("198.51.100.23"), "198.51.100.0/24"},
		{netip.MustParseAddr("198.51.100.255"), "198.51.100.0/24"},
		{netip.MustParseAddr("::ffff:198.51.100.23"), "198.51.100.0/24"},
		{netip.MustParseAddr("2001:db8:1234:5678::1"), "2001:db8:1234::/48"},
		{netip.MustParseAddr("fe80::1%eth0"), "fe80::/48"},
		{netip.Addr{}, ""},
	}
	for _, tt := range tests {
		if got := NetworkKey(tt.addr); got != tt.want {
			t.Errorf("NetworkKey(%v) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}
