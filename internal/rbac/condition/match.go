package condition

import (
	"strings"
	"unicode/utf8"

	"github.com/verityhq/verity/internal/textfold"
)

// actionMatches reports whether action matches an ActionMatches pattern:
// case-insensitive, with '*' standing for any run of characters including
// '/' (the page's example Microsoft.Authorization/roleAssignments/* matches
// .../roleAssignments/write), the same reading Verity's role permissions
// use. No other character is special.
func actionMatches(pattern, action string) bool {
	if strings.IndexByte(pattern, '*') < 0 {
		return strings.EqualFold(pattern, action)
	}
	return glob(pattern, action, true, false)
}

// like reports whether s matches a StringLike pattern: '*' any run of
// characters, '?' exactly one, "\*" and "\?" a literal '*' and '?'. A
// backslash before anything else is itself literal.
func like(pattern, s string, fold bool) bool {
	return glob(pattern, s, fold, true)
}

// glob matches by runes with the usual single-backtrack algorithm: on a
// mismatch after a '*', the '*' absorbs one more rune and matching resumes.
// It does not allocate and takes O(len(pattern)·len(s)) time at worst.
func glob(p, s string, fold, likeSyntax bool) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			c := p[px]
			switch {
			case c == '*':
				px++
				starP, starS = px, sx
				continue
			case c == '?' && likeSyntax:
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				lit := px
				if likeSyntax && c == '\\' && px+1 < len(p) && (p[px+1] == '*' || p[px+1] == '?') {
					lit = px + 1
				}
				if sx < len(s) && p[lit] < utf8.RuneSelf && s[sx] < utf8.RuneSelf {
					// ASCII fast path: action names and most values.
					if a, b := p[lit], s[sx]; a == b || fold && lowerByte(a) == lowerByte(b) {
						px = lit + 1
						sx++
						continue
					}
				} else if sx < len(s) {
					pr, pn := utf8.DecodeRuneInString(p[lit:])
					sr, sn := utf8.DecodeRuneInString(s[sx:])
					if pr == sr || fold && textfold.EqualRune(pr, sr) {
						px = lit + pn
						sx += sn
						continue
					}
				}
			}
		}
		if starP >= 0 && starS < len(s) {
			_, n := utf8.DecodeRuneInString(s[starS:])
			starS += n
			px, sx = starP, starS
			continue
		}
		return false
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
