package detect

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// LoadAddressList reads a list of addresses — a Tor exit list, an
// anonymising proxy or VPN list, VPN egress ranges: one address or CIDR
// per line; blank lines and what follows a '#' are ignored. Errors name
// the line.
func LoadAddressList(r io.Reader) ([]netip.Prefix, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<10)
	var out []netip.Prefix
	line := 0
	for sc.Scan() {
		line++
		p, ok, err := parseListEntry(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("address list: line %d: %w", line, err)
		}
		if ok {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("address list: after line %d: %w", line, err)
	}
	return out, nil
}

// parseListEntry reads one entry of an address list; ok is false for a
// blank or comment line. A bare address is a /32 or /128; a CIDR's host
// bits are dropped; an IPv4-mapped IPv6 entry is its IPv4 one (sign-in
// addresses are unmapped).
func parseListEntry(s string) (netip.Prefix, bool, error) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, false, nil
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, false, fmt.Errorf("%q is not an address or CIDR", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, false, fmt.Errorf("%q is not an address or CIDR", s)
		}
		a = a.WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true, nil
}

// parseAddressList reads the entries of a configured list; errors name
// the entry.
func parseAddressList(name string, entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for i, e := range entries {
		p, ok, err := parseListEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// addrList is a configured list of addresses and CIDRs, parsed on first
// use and then only read (safe for concurrent use). Entries that do not
// parse are left out; the detectors' Validate names them.
type addrList struct {
	once sync.Once
	set  *prefixSet
}

func (l *addrList) get(entries []string) *prefixSet {
	l.once.Do(func() {
		ps := make([]netip.Prefix, 0, len(entries))
		for _, e := range entries {
			if p, ok, err := parseListEntry(e); ok && err == nil {
				ps = append(ps, p)
			}
		}
		l.set = newPrefixSet(ps)
	})
	return l.set
}

// prefixSet answers whether an address is in any of a set of prefixes:
// the prefixes merged into sorted, disjoint ranges, found by bisection —
// a few dozen nanoseconds for thousands of prefixes, and no allocation.
type prefixSet struct {
	v4 []span[uint32]
	v6 []span[u128]
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

type span[T any] struct{ lo, hi T }

func newPrefixSet(ps []netip.Prefix) *prefixSet {
	set := &prefixSet{}
	for _, p := range ps {
		p = p.Masked()
		a := p.Addr()
		if a.Is4() {
			lo := binary.BigEndian.Uint32(a.AsSlice())
			set.v4 = append(set.v4, span[uint32]{lo, lo | uint32(1<<(32-p.Bits())-1)})
			continue
		}
		b := a.As16()
		lo := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
		hi := lo
		host := 128 - p.Bits()
		switch {
		case host >= 64:
			hi.lo = ^uint64(0)
			hi.hi |= uint64(1)<<(host-64) - 1 // all ones for ::/0
		default:
			hi.lo |= uint64(1)<<host - 1
		}
		set.v6 = append(set.v6, span[u128]{lo, hi})
	}
	set.v4 = merge(set.v4, func(a, b uint32) bool { return a < b }, func(a uint32) (uint32, bool) { return a + 1, a != ^uint32(0) })
	set.v6 = merge(set.v6, u128.less, func(a u128) (u128, bool) {
		if a.lo != ^uint64(0) {
			return u128{a.hi, a.lo + 1}, true
		}
		return u128{a.hi + 1, 0}, a.hi != ^uint64(0)
	})
	return set
}

// merge sorts spans and joins those that overlap or touch.
func merge[T any](s []span[T], less func(a, b T) bool, next func(T) (T, bool)) []span[T] {
	slices.SortFunc(s, func(a, b span[T]) int {
		switch {
		case less(a.lo, b.lo):
			return -1
		case less(b.lo, a.lo):
			return 1
		}
		return 0
	})
	out := s[:0]
	for _, sp := range s {
		if n := len(out); n > 0 {
			last := &out[n-1]
			after, ok := next(last.hi)
			if !ok || !less(after, sp.lo) { // sp starts within or right after last
				if less(last.hi, sp.hi) {
					last.hi = sp.hi
				}
				continue
			}
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}

// contains reports whether a is in the set; an IPv4-mapped address is
// its IPv4 one.
func (s *prefixSet) contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		i, _ := slices.BinarySearchFunc(s.v4, x, func(sp span[uint32], x uint32) int {
			if sp.lo <= x {
				return -1
			}
			return 1
		})
		return i > 0 && x <= s.v4[i-1].hi
	}
	b := a.As16()
	x := u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	i, _ := slices.BinarySearchFunc(s.v6, x, func(sp span[u128], x u128) int {
		if !x.less(sp.lo) {
			return -1
		}
		return 1
	})
	return i > 0 && !s.v6[i-1].hi.less(x)
}
