package directory

import (
	"net/netip"
	"slices"
)

// Location is a named location compiled for the hot path: its IP ranges
// merged into sorted, disjoint address intervals.
type Location struct {
	NamedLocation
	ranges []addrRange // sorted by first, disjoint, not adjacent
}

// addrRange is an inclusive interval of addresses of one family.
type addrRange struct{ first, last netip.Addr }

func compileLocation(n NamedLocation) Location {
	l := Location{NamedLocation: n}
	if n.ODataType != ODataIPNamedLocation {
		return l
	}
	for _, r := range n.IPRanges {
		p, err := netip.ParsePrefix(r.CIDRAddress)
		if err != nil {
			continue // stored locations were validated; never match garbage
		}
		l.ranges = append(l.ranges, prefixRange(p))
	}
	l.ranges = mergeRanges(l.ranges)
	return l
}

// prefixRange is the interval of addresses p covers.
func prefixRange(p netip.Prefix) addrRange {
	first, last := PrefixBounds(p)
	return addrRange{first, last}
}

// PrefixBounds returns the first and last address of a CIDR prefix
// (IPv4-mapped addresses unmapped), the inclusive interval it covers.
func PrefixBounds(p netip.Prefix) (first, last netip.Addr) {
	p = p.Masked()
	first = p.Addr().Unmap()
	b := first.As16()
	host := 128 - p.Bits()
	if first.Is4() {
		host = 32 - p.Bits()
	}
	for i := 15; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	last = netip.AddrFrom16(b)
	if first.Is4() {
		last = last.Unmap()
	}
	return first, last
}

// mergeRanges sorts ranges and joins those that overlap or touch.
func mergeRanges(rs []addrRange) []addrRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.first.Compare(b.first) })
	out := rs[:1]
	for _, r := range rs[1:] {
		cur := &out[len(out)-1]
		next := cur.last.Next() // invalid when cur ends its family's space
		if r.first.BitLen() == cur.first.BitLen() && (!next.IsValid() || r.first.Compare(next) <= 0) {
			if r.last.Compare(cur.last) > 0 {
				cur.last = r.last
			}
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// ContainsIP reports whether addr falls in one of the location's IP
// ranges (IPv4-mapped IPv6 addresses match IPv4 ranges). Only IP named
// locations contain addresses. It does not allocate.
func (l *Location) ContainsIP(addr netip.Addr) bool {
	return rangesContain(l.ranges, addr)
}

func rangesContain(rs []addrRange, addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	// The last range starting at or before addr is the only candidate.
	i, found := slices.BinarySearchFunc(rs, addr, func(r addrRange, a netip.Addr) int { return r.first.Compare(a) })
	if found {
		return true
	}
	if i == 0 {
		return false
	}
	r := rs[i-1]
	return r.first.BitLen() == addr.BitLen() && addr.Compare(r.last) <= 0
}

// ContainsCountry reports whether a country named location lists country
// (ISO 3166-1 alpha-2, upper case); country "" stands for an address that
// maps to no country, which matches when includeUnknownCountriesAndRegions
// is true.
func (l *Location) ContainsCountry(country string) bool {
	if l.ODataType != ODataCountryNamedLocation {
		return false
	}
	if country == "" {
		return l.IncludeUnknownCountriesAndRegions
	}
	return slices.Contains(l.CountriesAndRegions, country)
}
