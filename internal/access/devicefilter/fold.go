package devicefilter

import (
	"unicode"
	"unicode/utf8"
)

// String operators compare case-insensitively. These helpers do so rune by
// rune under Unicode simple case folding — the relation strings.EqualFold
// uses — so they never allocate and never cut a multi-byte character in
// half (a byte-length prefix test would: "K" KELVIN SIGN is three bytes and
// folds to the one-byte "k").

// equalFoldRune reports whether a and b are equal under simple case folding.
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return lowerASCII(a) == lowerASCII(b)
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func lowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// hasPrefixFold reports whether s begins with prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		if c, p := s[0], prefix[0]; c < utf8.RuneSelf && p < utf8.RuneSelf {
			if c != p && lowerASCII(rune(c)) != lowerASCII(rune(p)) {
				return false
			}
			s, prefix = s[1:], prefix[1:]
			continue
		}
		r, n := utf8.DecodeRuneInString(s)
		q, m := utf8.DecodeRuneInString(prefix)
		if !equalFoldRune(r, q) {
			return false
		}
		s, prefix = s[n:], prefix[m:]
	}
	return true
}

// hasSuffixFold reports whether s ends with suffix, ignoring case.
func hasSuffixFold(s, suffix string) bool {
	for suffix != "" {
		if s == "" {
			return false
		}
		if c, p := s[len(s)-1], suffix[len(suffix)-1]; c < utf8.RuneSelf && p < utf8.RuneSelf {
			if c != p && lowerASCII(rune(c)) != lowerASCII(rune(p)) {
				return false
			}
			s, suffix = s[:len(s)-1], suffix[:len(suffix)-1]
			continue
		}
		r, n := utf8.DecodeLastRuneInString(s)
		q, m := utf8.DecodeLastRuneInString(suffix)
		if !equalFoldRune(r, q) {
			return false
		}
		s, suffix = s[:len(s)-n], suffix[:len(suffix)-m]
	}
	return true
}

// containsFold reports whether sub occurs in s, ignoring case.
func containsFold(s, sub string) bool {
	for {
		if hasPrefixFold(s, sub) {
			return true
		}
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		s = s[n:]
	}
}
