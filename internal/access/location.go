package access

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/verityhq/verity/internal/directory"
)

// locKind says how a location token is decided for a request.
type locKind uint8

const (
	locIP          locKind = iota // by the client IP
	locCountry                    // by the country of the client IP
	locUnsupported                // cannot be decided (GPS country lookup): assumed
	locNever                      // contains no Verity sign-in (compliant networks)
)

// locToken is a location a policy names, or a pseudo-location (AllTrusted,
// the MFA trusted IPs).
type locToken struct {
	id   string
	kind locKind
}

// locationIndex answers which location tokens contain a request's IP and
// country, with one binary search and one map lookup.
type locationIndex struct {
	tokens []locToken
	words  int // words of a token mask

	v4, v6 segments

	countries      map[string][]uint64 // ISO code -> tokens listing it
	unknownCountry []uint64            // tokens with includeUnknownCountriesAndRegions
}

// segments is a set of disjoint address intervals, each carrying the
// tokens whose ranges cover it: starts[i] begins segment i, which ends
// where segment i+1 begins (or at the end of the address family).
type segments struct {
	starts []netip.Addr
	masks  []uint64 // words per segment
}

// lookup returns the token mask of the segment holding addr, or nil.
func (s *segments) lookup(addr netip.Addr, words int) []uint64 {
	i, found := slices.BinarySearchFunc(s.starts, addr, func(a, b netip.Addr) int { return a.Compare(b) })
	if !found {
		if i == 0 {
			return nil
		}
		i--
	}
	return s.masks[i*words : (i+1)*words]
}

// ipRange is an inclusive interval of one address family, with the token
// it belongs to.
type ipRange struct {
	first, last netip.Addr
	token       int
}

// buildSegments sweeps the ranges of one family into disjoint segments.
func buildSegments(rs []ipRange, words int) segments {
	type event struct {
		at    netip.Addr
		token int
		delta int
	}
	var evs []event
	for _, r := range rs {
		evs = append(evs, event{r.first, r.token, +1})
		if next := r.last.Next(); next.IsValid() && next.BitLen() == r.first.BitLen() {
			evs = append(evs, event{next, r.token, -1})
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	var s segments
	count := make([]int, words*64)
	for i := 0; i < len(evs); {
		at := evs[i].at
		for ; i < len(evs) && evs[i].at == at; i++ {
			count[evs[i].token] += evs[i].delta
		}
		mask := make([]uint64, words)
		for t, c := range count {
			if c > 0 {
				mask[t/64] |= 1 << (t % 64)
			}
		}
		if n := len(s.starts); n > 0 && slices.Equal(s.masks[(n-1)*words:n*words], mask) {
			continue // same tokens as the segment before: extend it
		}
		s.starts = append(s.starts, at)
		s.masks = append(s.masks, mask...)
	}
	return s
}

// locationState is what a request says about the location tokens.
type locationState struct {
	in      []uint64 // tokens that contain the sign-in
	ipKnown bool     // the request carries an IP
	ctKnown bool     // the request carries a country, or an IP whose country is unknown
}

// match fills st.in for a request. scratch has idx.words words.
func (idx *locationIndex) match(ip netip.Addr, country string, scratch []uint64) locationState {
	clear(scratch)
	st := locationState{in: scratch, ipKnown: ip.IsValid()}
	if st.ipKnown {
		ip = ip.Unmap().WithZone("")
		segs := &idx.v6
		if ip.Is4() {
			segs = &idx.v4
		}
		if m := segs.lookup(ip, idx.words); m != nil {
			orInto(scratch, m)
		}
	}
	switch {
	case country != "":
		st.ctKnown = true
		if m, ok := idx.countries[country]; ok {
			orInto(scratch, m)
		}
	case st.ipKnown:
		// An IP that maps to no country: only locations that include
		// unknown countries and regions contain it.
		st.ctKnown = true
		orInto(scratch, idx.unknownCountry)
	}
	return st
}

// locationCompiler collects the tokens policies reference and builds the
// index.
type locationCompiler struct {
	byID     map[string]directory.NamedLocation
	mfaIPs   []netip.Prefix
	tokens   []locToken
	tokIndex map[string]int
}

func newLocationCompiler(locs []directory.NamedLocation, mfaIPs []netip.Prefix) *locationCompiler {
	c := &locationCompiler{byID: make(map[string]directory.NamedLocation, len(locs)), mfaIPs: mfaIPs, tokIndex: map[string]int{}}
	for _, l := range locs {
		c.byID[strings.ToLower(l.ID)] = l
	}
	return c
}

// token returns the token of a location a policy names, adding it on first
// use; ok is false for an id that names no location.
func (c *locationCompiler) token(id string) (int, bool) {
	key := id
	if id != AllTrusted {
		key = strings.ToLower(id)
	}
	if t, ok := c.tokIndex[key]; ok {
		return t, true
	}
	var kind locKind
	switch key {
	case AllTrusted, MFATrustedIPsLocation:
		kind = locIP
	default:
		l, ok := c.byID[key]
		if !ok {
			return 0, false
		}
		switch l.ODataType {
		case directory.ODataIPNamedLocation:
			kind = locIP
		case directory.ODataCountryNamedLocation:
			kind = locCountry
			if l.CountryLookupMethod == directory.CountryLookupAuthenticatorAppGPS {
				kind = locUnsupported
			}
		default:
			kind = locNever
		}
	}
	t := len(c.tokens)
	c.tokens = append(c.tokens, locToken{id: key, kind: kind})
	c.tokIndex[key] = t
	return t, true
}

// build makes the index for the tokens collected so far.
func (c *locationCompiler) build() *locationIndex {
	idx := &locationIndex{tokens: c.tokens, words: max(1, (len(c.tokens)+63)/64), countries: map[string][]uint64{}}
	idx.unknownCountry = make([]uint64, idx.words)
	var v4, v6 []ipRange
	addPrefix := func(p netip.Prefix, t int) {
		first, last := directory.PrefixBounds(p)
		if first.Is4() {
			v4 = append(v4, ipRange{first, last, t})
		} else {
			v6 = append(v6, ipRange{first, last, t})
		}
	}
	addLocation := func(l directory.NamedLocation, t int) {
		for _, r := range l.IPRanges {
			if p, err := netip.ParsePrefix(r.CIDRAddress); err == nil {
				addPrefix(p, t)
			}
		}
	}
	for t, tok := range c.tokens {
		switch tok.id {
		case AllTrusted:
			// "All trusted networks and locations": every IP named
			// location marked trusted, plus the MFA trusted IPs.
			// Trusted compliant-network locations hold no Verity sign-in.
			for _, l := range c.byID {
				if l.IsTrusted && l.ODataType == directory.ODataIPNamedLocation {
					addLocation(l, t)
				}
			}
			for _, p := range c.mfaIPs {
				addPrefix(p, t)
			}
			continue
		case MFATrustedIPsLocation:
			for _, p := range c.mfaIPs {
				addPrefix(p, t)
			}
			continue
		}
		if tok.kind == locNever || tok.kind == locUnsupported {
			continue
		}
		l := c.byID[tok.id]
		if tok.kind == locIP {
			addLocation(l, t)
			continue
		}
		for _, code := range l.CountriesAndRegions {
			m, ok := idx.countries[code]
			if !ok {
				m = make([]uint64, idx.words)
				idx.countries[code] = m
			}
			m[t/64] |= 1 << (t % 64)
		}
		if l.IncludeUnknownCountriesAndRegions {
			idx.unknownCountry[t/64] |= 1 << (t % 64)
		}
	}
	idx.v4 = buildSegments(v4, idx.words)
	idx.v6 = buildSegments(v6, idx.words)
	return idx
}
