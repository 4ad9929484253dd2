package devicefilter

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

const (
	// MaxRuleLength is the longest rule accepted, in characters as Entra
	// counts them (UTF-16 code units): "The maximum length for the filter
	// rule is 3072 characters".
	MaxRuleLength = 3072
	// MaxDepth bounds how deeply parentheses and -not nest. Each "(" and
	// each -not opens a level; "-not (" opens one, not two.
	MaxDepth = 32
)

// SyntaxError is a rule that does not parse, with the place and the reason.
type SyntaxError struct {
	Pos int    // 1-based byte offset in the rule of the offending token; 0 when the whole rule is at fault
	Msg string // what was found and what was expected
}

func (e *SyntaxError) Error() string {
	if e.Pos == 0 {
		return "rule: " + e.Msg
	}
	return fmt.Sprintf("rule: position %d: %s", e.Pos, e.Msg)
}

// errorAt returns a *SyntaxError at 0-based byte offset off.
func errorAt(off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: off + 1, Msg: fmt.Sprintf(format, args...)}
}

// Parse compiles a device filter rule such as
//
//	device.trustType -eq "ServerAD" -and device.isCompliant -eq True
//
// Grammar (precedence from high to low: comparisons, -not, -and, -or):
//
//	rule       = or
//	or         = and { "-or" and }
//	and        = unary { "-and" unary }
//	unary      = "-not" unary | "(" or ")" | comparison
//	comparison = "device." attribute operator value
//	value      = string | "[" string { "," string } "]" | True | False | null
//
// Operators, -and, -or and -not may be written with or without the hyphen
// and in any case; attribute names are case sensitive ("device.deviceId").
// Strings are double quoted, with a backtick before a double quote or a
// backtick inside, or single quoted, with a single quote inside doubled. True, False and null are unquoted (isCompliant also
// takes "True" and "False"); null goes with -eq and -ne only. Each attribute
// takes only the operators, and each enum attribute only the values, that
// Microsoft documents for filters for devices; -match and -notMatch (a
// regular expression, see compileMatch) are accepted where -contains is.
//
// Errors are *SyntaxError.
func Parse(rule string) (*Rule, error) {
	if n := ruleLength(rule); n > MaxRuleLength {
		return nil, &SyntaxError{Msg: fmt.Sprintf("rule is %d characters long; the maximum is %d", n, MaxRuleLength)}
	}
	p := parser{lex: lexer{src: rule}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, &SyntaxError{Msg: "rule is empty"}
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	switch {
	case p.tok.kind == tokRParen:
		return nil, errorAt(p.tok.pos, "')' without a matching '('")
	case p.tok.kind != tokEOF:
		return nil, errorAt(p.tok.pos, "expected -and, -or or the end of the rule, found %s", p.tok.describe())
	}
	r := &Rule{root: root}
	// The canonical form is what Verity compares, stores and exports, so it
	// must fit the limit too. It is rarely longer than the source: only
	// hyphen-less operators, missing spaces, "-not x" (written "-not (x)")
	// and quotes inside single-quoted strings make it grow.
	if n := ruleLength(r.String()); n > MaxRuleLength {
		return nil, &SyntaxError{Msg: fmt.Sprintf("rule is %d characters long in canonical form (hyphenated operators, single spaces, double-quoted strings); the maximum is %d", n, MaxRuleLength)}
	}
	return r, nil
}

// ruleLength counts UTF-16 code units, as .NET's String.Length does; an
// invalid byte counts as one.
func ruleLength(s string) int {
	n := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

type parser struct {
	lex   lexer
	tok   token // the current token
	depth int
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// keyword reports whether the current token is the logical operator w
// ("and", "or", "not"), hyphenated or not, in any case.
func (p *parser) keyword(w string) bool {
	switch p.tok.kind {
	case tokDash:
		return strings.EqualFold(p.tok.text[1:], w)
	case tokWord:
		return strings.EqualFold(p.tok.text, w)
	}
	return false
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return errorAt(p.tok.pos, "rule nests parentheses and -not deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) or() (node, error) {
	return p.chain(nodeOr, "or", p.and)
}

func (p *parser) and() (node, error) {
	return p.chain(nodeAnd, "and", p.unary)
}

// chain parses operand { keyword operand } into one n-ary node, flattening
// operands that are themselves chains of the same operator.
func (p *parser) chain(k nodeKind, keyword string, operand func() (node, error)) (node, error) {
	first, err := operand()
	if err != nil || !p.keyword(keyword) {
		return first, err
	}
	n := node{kind: k}
	n.kids = appendFlat(n.kids, k, first)
	for p.keyword(keyword) {
		if err := p.advance(); err != nil {
			return node{}, err
		}
		x, err := operand()
		if err != nil {
			return node{}, err
		}
		n.kids = appendFlat(n.kids, k, x)
	}
	return n, nil
}

func appendFlat(kids []node, k nodeKind, x node) []node {
	if x.kind == k {
		return append(kids, x.kids...)
	}
	return append(kids, x)
}

func (p *parser) unary() (node, error) {
	if !p.keyword("not") {
		return p.primary(true)
	}
	if err := p.enter(); err != nil {
		return node{}, err
	}
	if err := p.advance(); err != nil {
		return node{}, err
	}
	var x node
	var err error
	if p.tok.kind == tokLParen {
		x, err = p.primary(false) // "-not (" is one level
	} else {
		x, err = p.unary()
	}
	if err != nil {
		return node{}, err
	}
	p.depth--
	return node{kind: nodeNot, kids: []node{x}}, nil
}

// primary parses a parenthesised expression or a comparison. counted says
// whether a parenthesis opens a nesting level of its own.
func (p *parser) primary(counted bool) (node, error) {
	switch p.tok.kind {
	case tokLParen:
		open := p.tok.pos
		if counted {
			if err := p.enter(); err != nil {
				return node{}, err
			}
		}
		if err := p.advance(); err != nil {
			return node{}, err
		}
		x, err := p.or()
		if err != nil {
			return node{}, err
		}
		if p.tok.kind != tokRParen {
			return node{}, errorAt(p.tok.pos, "expected ')' to close the '(' at position %d, found %s", open+1, p.tok.describe())
		}
		if counted {
			p.depth--
		}
		return x, p.advance()
	case tokWord:
		if !p.keyword("and") && !p.keyword("or") {
			return p.comparison()
		}
	}
	return node{}, errorAt(p.tok.pos, "expected a device attribute such as device.trustType, '(' or -not, found %s", p.tok.describe())
}

func (p *parser) comparison() (node, error) {
	at := p.tok
	name, ok := strings.CutPrefix(at.text, "device.")
	if !ok {
		return node{}, p.notAnAttribute(at)
	}
	id, ok := lookupAttribute(name)
	if !ok {
		if s := suggestAttribute(name); s != "" {
			return node{}, errorAt(at.pos, "unknown attribute %s (did you mean device.%s? attribute names are case sensitive)", at.text, s)
		}
		return node{}, errorAt(at.pos, "unknown attribute %s", at.text)
	}
	a := &attributes[id]
	if err := p.advance(); err != nil {
		return node{}, err
	}

	ot := p.tok
	if ot.kind != tokDash && ot.kind != tokWord {
		return node{}, errorAt(ot.pos, "expected an operator after %s (allowed: %s), found %s", at.text, a.ops, ot.describe())
	}
	o, ok := lookupOp(ot.text)
	if !ok {
		w := "-" + strings.TrimPrefix(ot.text, "-")
		switch strings.ToLower(w) {
		case "-any", "-all":
			return node{}, errorAt(ot.pos, "operator %s is not supported in device filters; test device.physicalIds and device.systemLabels with -contains or -notContains", w)
		case "-le", "-ge", "-lt", "-gt":
			return node{}, errorAt(ot.pos, "operator %s is not supported in device filters", w)
		}
		return node{}, errorAt(ot.pos, "unknown operator %s (allowed for %s: %s)", ot.text, at.text, a.ops)
	}
	if !a.ops.has(o) {
		return node{}, errorAt(ot.pos, "operator %s is not supported for %s (allowed: %s)", o, at.text, a.ops)
	}
	if err := p.advance(); err != nil {
		return node{}, err
	}

	c := comparison{attr: id, kind: a.kind, op: o}
	vt := p.tok
	switch {
	case vt.kind == tokWord && strings.EqualFold(vt.text, "null"):
		if o != opEq && o != opNe {
			return node{}, errorAt(vt.pos, "null can only be compared with -eq or -ne")
		}
		c.null = true
	case o == opIn || o == opNotIn:
		list, err := p.list(o)
		if err != nil {
			return node{}, err
		}
		c.vals = list
	case a.kind == kindBool:
		b, ok := parseBool(vt)
		if !ok {
			return node{}, errorAt(vt.pos, "expected True or False for %s, found %s", at.text, vt.describe())
		}
		c.b = b
	case vt.kind != tokString:
		return node{}, errorAt(vt.pos, "expected a double-quoted string after %s %s, found %s", at.text, o, vt.describe())
	case a.kind == kindEnum:
		v, ok := a.canonicalEnum(vt.val)
		if !ok {
			return node{}, errorAt(vt.pos, "%s is not a valid value of %s (allowed: %s)", quote(vt.val), at.text, quoteAll(a.enum))
		}
		c.vals = []string{v}
	case o == opMatch || o == opNotMatch:
		re, err := compileMatch(vt.val)
		if err != nil {
			return node{}, errorAt(vt.pos, "regular expression %s: %v", quote(vt.val), err)
		}
		c.re = re
		c.vals = []string{vt.val}
	default:
		c.vals = []string{vt.val}
	}
	return node{kind: nodeCmp, cmp: c}, p.advance()
}

// notAnAttribute explains why a word where a comparison should start is not
// a device attribute.
func (p *parser) notAnAttribute(t token) error {
	prefix, _, dotted := strings.Cut(t.text, ".")
	switch {
	case dotted && strings.EqualFold(prefix, "device"):
		return errorAt(t.pos, "unknown attribute %s (write device. in lower case; attribute names are case sensitive)", t.text)
	case dotted:
		return errorAt(t.pos, "unknown attribute %s: device filters test device attributes only (device.<attribute>)", t.text)
	}
	return errorAt(t.pos, "expected a device attribute such as device.trustType, '(' or -not, found %s", t.describe())
}

// list parses the bracketed list of -in and -notIn.
func (p *parser) list(o op) ([]string, error) {
	if p.tok.kind != tokLBrack {
		return nil, errorAt(p.tok.pos, "expected a list such as [\"a\", \"b\"] after %s, found %s", o, p.tok.describe())
	}
	open := p.tok.pos
	var vals []string
	for {
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tokRBrack && len(vals) == 0 {
			return nil, errorAt(open, "empty list after %s", o)
		}
		if p.tok.kind != tokString {
			return nil, errorAt(p.tok.pos, "expected a double-quoted string in the list, found %s", p.tok.describe())
		}
		vals = append(vals, p.tok.val)
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch p.tok.kind {
		case tokComma:
			continue
		case tokRBrack:
			return vals, nil
		}
		return nil, errorAt(p.tok.pos, "expected ',' or ']' to continue the list opened at position %d, found %s", open+1, p.tok.describe())
	}
}

// parseBool reads True or False, quoted or not, in any case.
func parseBool(t token) (value, ok bool) {
	var s string
	switch t.kind {
	case tokWord:
		s = t.text
	case tokString:
		s = t.val
	default:
		return false, false
	}
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	return strings.Join(q, ", ")
}
