package rbac

import (
	"encoding/binary"
	"strings"
)

// matcher is a compiled list of action patterns. Patterns are lower-case;
// the action matched against them must be too (Check lowers it once into
// the Decision's buffer). "*" stands for any run of characters, "/"
// included, as "*/read" and "Microsoft.Compute/virtualMachines/*" need.
// The common shapes get their own lists so that a match is a map lookup
// and a few prefix or suffix compares: exact names, a trailing "*"
// (prefix), a leading "*" (suffix), one "*" inside (prefix and suffix);
// patterns with more stars fall to a general glob.
type matcher struct {
	all      bool
	exact    map[string]struct{}
	prefixes []string
	suffixes []string
	infixes  []infix
	globs    []string
}

type infix struct{ prefix, suffix string }

func compileMatcher(patterns []string) matcher {
	var m matcher
	for _, p := range patterns {
		p = lowerString(p)
		switch n := strings.Count(p, "*"); {
		case p == "*" || (n > 0 && strings.Trim(p, "*") == ""):
			m.all = true
		case n == 0:
			if m.exact == nil {
				m.exact = map[string]struct{}{}
			}
			m.exact[p] = struct{}{}
		case n == 1 && strings.HasSuffix(p, "*"):
			m.prefixes = append(m.prefixes, p[:len(p)-1])
		case n == 1 && strings.HasPrefix(p, "*"):
			m.suffixes = append(m.suffixes, p[1:])
		case n == 1:
			i := strings.IndexByte(p, '*')
			m.infixes = append(m.infixes, infix{p[:i], p[i+1:]})
		default:
			m.globs = append(m.globs, p)
		}
	}
	return m
}

// match reports whether the lower-case action a matches a pattern. It does
// not allocate: the map lookup with string(a) and the compares of
// string(a[...]) are done in place by the compiler.
func (m *matcher) match(a []byte) bool {
	if m.all {
		return true
	}
	if m.exact != nil {
		if _, ok := m.exact[string(a)]; ok {
			return true
		}
	}
	for _, p := range m.prefixes {
		if len(a) >= len(p) && string(a[:len(p)]) == p {
			return true
		}
	}
	for _, s := range m.suffixes {
		if len(a) >= len(s) && string(a[len(a)-len(s):]) == s {
			return true
		}
	}
	for _, x := range m.infixes {
		if len(a) >= len(x.prefix)+len(x.suffix) && string(a[:len(x.prefix)]) == x.prefix && string(a[len(a)-len(x.suffix):]) == x.suffix {
			return true
		}
	}
	for _, g := range m.globs {
		if glob(g, a) {
			return true
		}
	}
	return false
}

// glob matches s against pattern p in which "*" is any run of characters,
// with the usual single-backtrack algorithm: linear in practice, no
// allocation.
func glob(p string, s []byte) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// ActionMatches reports whether action matches pattern under Azure's
// wildcard rules: "*" is any run of characters ("/" included), compared
// case-insensitively. It is the off-hot-path form of the compiled matcher.
func ActionMatches(pattern, action string) bool {
	m := compileMatcher([]string{pattern})
	return m.match(lower(nil, action))
}

// lower appends the ASCII lower-case form of s to dst[:0]. Action names and
// scopes are ASCII in practice; other bytes are kept as they are, so a
// non-ASCII letter compares case-sensitively.
func lower(dst []byte, s string) []byte {
	dst = append(dst[:0], s...)
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		x := binary.LittleEndian.Uint64(dst[i:])
		if x&highs != 0 {
			lowerBytes(dst[i : i+8])
			continue
		}
		binary.LittleEndian.PutUint64(dst[i:], x|between(x, 'A'-1, 'Z'+1)>>2)
	}
	lowerBytes(dst[i:])
	return dst
}

func lowerBytes(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// lowerString is lower for compile time; it keeps s when it has no
// upper-case ASCII letter.
func lowerString(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return string(lower(make([]byte, 0, len(s)), s))
		}
	}
	return s
}
