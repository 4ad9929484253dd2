package devicefilter

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokenKind uint8

const (
	tokEOF    tokenKind = iota
	tokLParen           // (
	tokRParen           // )
	tokLBrack           // [
	tokRBrack           // ]
	tokComma            // ,
	tokString           // "…" or '…'
	tokWord             // device.trustType, True, null, and hyphen-less operators (eq, and)
	tokDash             // a hyphen-prefixed word: -eq, -and, -not
)

// token is one lexeme. pos is its 0-based byte offset in the rule.
type token struct {
	kind tokenKind
	pos  int
	text string // the source text of the token
	val  string // the decoded value of a tokString
}

// describe renders a token for "found …" in an error message.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of rule"
	case tokString:
		return fmt.Sprintf("string %s", quote(t.val))
	}
	return fmt.Sprintf("%q", t.text)
}

// lexer splits a rule into tokens. It is hand written: the grammar is small
// and error positions have to be exact.
type lexer struct {
	src string
	off int
}

// next returns the next token, or a *SyntaxError.
func (l *lexer) next() (token, error) {
	for l.off < len(l.src) {
		r, n := utf8.DecodeRuneInString(l.src[l.off:])
		if !unicode.IsSpace(r) {
			break
		}
		l.off += n
	}
	start := l.off
	if start == len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[start]
	single := func(k tokenKind) (token, error) {
		l.off++
		return token{kind: k, pos: start, text: l.src[start:l.off]}, nil
	}
	switch {
	case c == '(':
		return single(tokLParen)
	case c == ')':
		return single(tokRParen)
	case c == '[':
		return single(tokLBrack)
	case c == ']':
		return single(tokRBrack)
	case c == ',':
		return single(tokComma)
	case c == '"' || c == '\'':
		return l.string(c)
	case c == '-':
		l.off++
		w := l.word()
		if w == "" {
			return token{}, errorAt(start, "expected an operator after '-' (such as -eq or -and)")
		}
		return token{kind: tokDash, pos: start, text: l.src[start:l.off]}, nil
	case isWordByte(c):
		l.word()
		return token{kind: tokWord, pos: start, text: l.src[start:l.off]}, nil
	}
	r, n := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError && n == 1 {
		return token{}, errorAt(start, "invalid UTF-8")
	}
	switch r {
	case '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212':
		// Word processors and some of Microsoft's own pages turn "-eq" into "–eq".
		return token{}, errorAt(start, "found %q (U+%04X), not a hyphen; write operators with '-' (U+002D), as in -eq", r, r)
	case '\u201C', '\u201D', '\u2018', '\u2019':
		return token{}, errorAt(start, "found a typographic quote %q (U+%04X); quote strings with '\"' (U+0022)", r, r)
	case '=', '!', '<', '>', '&', '|':
		return token{}, errorAt(start, "unexpected character %q; operators are written -eq, -ne, -and, -or, -not", r)
	}
	return token{}, errorAt(start, "unexpected character %q", r)
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.'
}

// word consumes [A-Za-z0-9_.]* and returns it.
func (l *lexer) word() string {
	start := l.off
	for l.off < len(l.src) && isWordByte(l.src[l.off]) {
		l.off++
	}
	return l.src[start:l.off]
}

// string reads a quoted string. In a double-quoted string a backtick escapes
// the next character, which must be a double quote or another backtick (the
// dynamic-membership rules: "both quotes should be escaped using the `
// character"). In a single-quoted string two single quotes stand for one
// ("single quotes should be escaped by using two single quotes"); Graph's own
// examples quote filter values with single quotes.
func (l *lexer) string(q byte) (token, error) {
	start := l.off
	l.off++
	var b strings.Builder
	from := l.off // start of the run not yet copied into b
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case q == '"' && c == '`':
			if l.off+1 >= len(l.src) {
				return token{}, errorAt(start, "unterminated string")
			}
			e := l.src[l.off+1]
			if e != '"' && e != '`' {
				r, _ := utf8.DecodeRuneInString(l.src[l.off+1:])
				return token{}, errorAt(l.off, "invalid escape `%c in string (only `\" and `` are escapes)", r)
			}
			b.WriteString(l.src[from:l.off])
			b.WriteByte(e)
			l.off += 2
			from = l.off
		case c == q && q == '\'' && l.off+1 < len(l.src) && l.src[l.off+1] == '\'':
			b.WriteString(l.src[from : l.off+1])
			l.off += 2
			from = l.off
		case c == q:
			b.WriteString(l.src[from:l.off])
			l.off++
			return token{kind: tokString, pos: start, text: l.src[start:l.off], val: b.String()}, nil
		default:
			if c < utf8.RuneSelf {
				l.off++
				continue
			}
			r, n := utf8.DecodeRuneInString(l.src[l.off:])
			if r == utf8.RuneError && n == 1 {
				return token{}, errorAt(l.off, "invalid UTF-8")
			}
			l.off += n
		}
	}
	return token{}, errorAt(start, "unterminated string")
}
