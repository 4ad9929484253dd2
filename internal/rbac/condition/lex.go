package condition

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
	tokLBrace           // {
	tokRBrace           // }
	tokComma            // ,
	tokBang             // !
	tokAndAnd           // &&
	tokOrOr             // ||
	tokString           // '…'
	tokAttr             // @Source[name]
	tokWord             // AND, StringEquals, ForAnyOfAnyValues:GuidEquals, true, 42, a GUID
)

// token is one lexeme. pos is its 0-based byte offset in the condition.
type token struct {
	kind tokenKind
	pos  int
	text string    // the source text of the token
	val  string    // the decoded value of a tokString
	attr attribute // the reference of a tokAttr
}

// describe renders a token for "found …" in an error message.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of condition"
	case tokString:
		return "string " + quote(t.val)
	}
	return fmt.Sprintf("%q", t.text)
}

// lexer splits a condition into tokens. It is hand written: the grammar is
// small and error positions have to be exact.
type lexer struct {
	src string
	off int
}

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
	single := func(k tokenKind, n int) (token, error) {
		l.off += n
		return token{kind: k, pos: start, text: l.src[start:l.off]}, nil
	}
	switch {
	case c == '(':
		return single(tokLParen, 1)
	case c == ')':
		return single(tokRParen, 1)
	case c == '{':
		return single(tokLBrace, 1)
	case c == '}':
		return single(tokRBrace, 1)
	case c == ',':
		return single(tokComma, 1)
	case c == '!':
		return single(tokBang, 1)
	case c == '&' || c == '|':
		if start+1 < len(l.src) && l.src[start+1] == c {
			if c == '&' {
				return single(tokAndAnd, 2)
			}
			return single(tokOrOr, 2)
		}
		return token{}, errorAt(start, "unexpected %q; write %q or %s", c, string([]byte{c, c}), map[byte]string{'&': "AND", '|': "OR"}[c])
	case c == '\'':
		return l.string()
	case c == '@':
		return l.attribute()
	case isWordByte(c):
		for l.off < len(l.src) && isWordByte(l.src[l.off]) {
			l.off++
		}
		return token{kind: tokWord, pos: start, text: l.src[start:l.off]}, nil
	}
	r, n := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError && n == 1 {
		return token{}, errorAt(start, "invalid UTF-8")
	}
	switch r {
	case '"':
		return token{}, errorAt(start, "found '\"'; quote strings with single quotes, as in 'value'")
	case '\u2018', '\u2019', '\u201C', '\u201D':
		return token{}, errorAt(start, "found a typographic quote %q (U+%04X); quote strings with \"'\" (U+0027)", r, r)
	case '=', '<', '>':
		return token{}, errorAt(start, "unexpected %q; comparisons are written with named operators such as StringEquals or NumericLessThan", r)
	}
	return token{}, errorAt(start, "unexpected character %q", r)
}

// isWordByte reports the bytes of operator names, keywords, cross-product
// prefixes (':'), unquoted GUIDs ('-') and numbers ('+', '-').
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-' || c == '+'
}

// string reads a single-quoted string. A backslash escapes a single quote or
// another backslash; any other backslash is kept, so StringLike's \* and \?
// reach the pattern as written. The page does not say how to write a quote
// inside a string; this is Verity's choice, and String writes it back.
func (l *lexer) string() (token, error) {
	start := l.off
	l.off++
	var b strings.Builder
	from := l.off
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == '\\' && l.off+1 < len(l.src) && (l.src[l.off+1] == '\'' || l.src[l.off+1] == '\\'):
			b.WriteString(l.src[from:l.off])
			b.WriteByte(l.src[l.off+1])
			l.off += 2
			from = l.off
		case c == '\'':
			b.WriteString(l.src[from:l.off])
			l.off++
			return token{kind: tokString, pos: start, text: l.src[start:l.off], val: b.String()}, nil
		case c < utf8.RuneSelf:
			l.off++
		default:
			r, n := utf8.DecodeRuneInString(l.src[l.off:])
			if r == utf8.RuneError && n == 1 {
				return token{}, errorAt(l.off, "invalid UTF-8")
			}
			l.off += n
		}
	}
	return token{}, errorAt(start, "unterminated string")
}

// quote renders s as a condition string literal.
func quote(s string) string {
	if !strings.ContainsAny(s, `'\`) {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		// A backslash needs escaping only where the lexer would otherwise
		// read it as an escape or as escaping the closing quote; StringLike's
		// \* and \? stay as written.
		if s[i] == '\'' || s[i] == '\\' && (i+1 == len(s) || s[i+1] == '\'' || s[i+1] == '\\') {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// attribute reads @Source[name]. The source is case-insensitive. The name is
// the attribute's documented name — a resource type or namespace, ':' and
// the attribute, as in Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path,
// or a bare name such as isPrivateLink — optionally followed by
// <$key_case_sensitive$>. Verity accepts any printable characters except
// brackets, whitespace, '<', '$' and '>' in the name (the page defines no
// character set; tag keys and custom security attribute names vary).
func (l *lexer) attribute() (token, error) {
	start := l.off
	l.off++
	ws := l.off
	for l.off < len(l.src) && isLetter(l.src[l.off]) {
		l.off++
	}
	word := l.src[ws:l.off]
	src, ok := Source(0), false
	for i, n := range sourceNames {
		if strings.EqualFold(word, n) {
			src, ok = Source(i), true
		}
	}
	if !ok {
		return token{}, errorAt(start, "expected @Resource, @Request, @Principal or @Environment, found %q", l.src[start:l.off])
	}
	if l.off >= len(l.src) || l.src[l.off] != '[' {
		return token{}, errorAt(l.off, "expected '[' after @%s", src)
	}
	l.off++
	ns := l.off
	for l.off < len(l.src) {
		c := l.src[l.off]
		if c == ']' || c == '<' {
			break
		}
		r, n := utf8.DecodeRuneInString(l.src[l.off:])
		if r == utf8.RuneError && n == 1 {
			return token{}, errorAt(l.off, "invalid UTF-8")
		}
		if c == '[' || c == '$' || c == '>' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return token{}, errorAt(l.off, "unexpected %q in attribute name", r)
		}
		l.off += n
	}
	a := attribute{source: src, name: l.src[ns:l.off], pos: start}
	if a.name == "" {
		return token{}, errorAt(ns, "expected an attribute name after '@%s['", src)
	}
	if strings.HasPrefix(l.src[l.off:], "<") {
		if len(l.src)-l.off < len(keyCaseSuffix) || !strings.EqualFold(l.src[l.off:l.off+len(keyCaseSuffix)], keyCaseSuffix) {
			return token{}, errorAt(l.off, "expected %s or ']' after the attribute name", keyCaseSuffix)
		}
		a.keyCase = true
		l.off += len(keyCaseSuffix)
	}
	if l.off >= len(l.src) || l.src[l.off] != ']' {
		return token{}, errorAt(l.off, "expected ']' to close the attribute @%s[%s", src, a.name)
	}
	l.off++
	return token{kind: tokAttr, pos: start, text: l.src[start:l.off], attr: a}, nil
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
