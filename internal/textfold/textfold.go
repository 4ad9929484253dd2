// Package textfold compares text ignoring case the way the policy
// languages Verity reads expect: rune by rune under simple Unicode case
// folding (as strings.EqualFold), with an ASCII fast path, and without
// allocating — unlike strings.ToLower, it never builds a string. Device
// filters and ABAC conditions both use it on their hot paths. It imports
// nothing from Verity.
package textfold

import (
	"unicode"
	"unicode/utf8"
)

// EqualRune reports whether a and b are equal under simple case folding.
func EqualRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return LowerASCII(a) == LowerASCII(b)
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// LowerASCII lower-cases an ASCII letter and leaves any other rune alone.
func LowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// HasPrefix reports whether s begins with prefix, ignoring case. It
// compares runes, so it never cuts a multi-byte character in half (the
// KELVIN SIGN is three bytes and folds to the one-byte "k").
func HasPrefix(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		if c, p := s[0], prefix[0]; c < utf8.RuneSelf && p < utf8.RuneSelf {
			if c != p && LowerASCII(rune(c)) != LowerASCII(rune(p)) {
				return false
			}
			s, prefix = s[1:], prefix[1:]
			continue
		}
		r, n := utf8.DecodeRuneInString(s)
		q, m := utf8.DecodeRuneInString(prefix)
		if !EqualRune(r, q) {
			return false
		}
		s, prefix = s[n:], prefix[m:]
	}
	return true
}

// HasSuffix reports whether s ends with suffix, ignoring case.
func HasSuffix(s, suffix string) bool {
	for suffix != "" {
		if s == "" {
			return false
		}
		if c, p := s[len(s)-1], suffix[len(suffix)-1]; c < utf8.RuneSelf && p < utf8.RuneSelf {
			if c != p && LowerASCII(rune(c)) != LowerASCII(rune(p)) {
				return false
			}
			s, suffix = s[:len(s)-1], suffix[:len(suffix)-1]
			continue
		}
		r, n := utf8.DecodeLastRuneInString(s)
		q, m := utf8.DecodeLastRuneInString(suffix)
		if !EqualRune(r, q) {
			return false
		}
		s, suffix = s[:len(s)-n], suffix[:len(suffix)-m]
	}
	return true
}

// Contains reports whether sub occurs in s, ignoring case.
func Contains(s, sub string) bool {
	for {
		if HasPrefix(s, sub) {
			return true
		}
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		s = s[n:]
	}
}
