package condition

import (
	"fmt"
	"strings"
)

const (
	// MaxLength is the longest condition accepted, in bytes, both as written
	// and in canonical form. Azure documents no limit; the longest built-in
	// role condition is about 1,300 bytes.
	MaxLength = 8192
	// MaxDepth bounds how deeply parentheses and '!' nest. Each "(" and each
	// '!' opens a level.
	MaxDepth = 32
	// MaxSetSize bounds the values of one set literal {…}.
	MaxSetSize = 256
)

// SyntaxError is a condition that does not parse, with the place and the
// reason.
type SyntaxError struct {
	Pos int    // 1-based byte offset of the offending token; 0 when the whole condition is at fault
	Msg string // what was found and what was expected
}

func (e *SyntaxError) Error() string {
	if e.Pos == 0 {
		return "condition: " + e.Msg
	}
	return fmt.Sprintf("condition: position %d: %s", e.Pos, e.Msg)
}

// errorAt returns a *SyntaxError at 0-based byte offset off.
func errorAt(off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: off + 1, Msg: fmt.Sprintf(format, args...)}
}

// Condition is a parsed, immutable condition. It is safe for concurrent use.
type Condition struct {
	root *node
}

type nodeKind uint8

const (
	nodeAnd nodeKind = iota
	nodeOr
	nodeNot
	nodeAction       // ActionMatches{'…'}
	nodeSubOperation // SubOperationMatches{'…'}
	nodeExists       // Exists @…[…]
	nodeNotExists    // NotExists @…[…]
	nodeCompare      // @…[…] [quantifier:]operator value
)

// node is one expression. Only the fields of its kind are set.
type node struct {
	kind    nodeKind
	kids    []*node // nodeAnd, nodeOr (two or more, none of the same kind), nodeNot (one)
	pattern string  // nodeAction, nodeSubOperation
	attr    attribute
	op      *operator
	quant   quantifier
	rhsAttr *attribute // the right-hand side is another attribute
	rhs     []Value    // the right-hand side literal(s), converted to op.kind
	rhsSet  bool       // the literal was written as a set {…}
}

// Parse compiles a condition of condition version "2.0", such as
//
//	((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'}))
//	 OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {ba92f5b4-2d11-453d-a403-e96b0029c9fe}))
//
// Grammar ('!' binds tighter than AND and OR, which may not be mixed
// without parentheses — "a AND b OR c" is an error, as the page requires
// parentheses around mixed AND/OR):
//
//	condition  = expr
//	expr       = unary { ("AND" | "&&") unary } | unary { ("OR" | "||") unary }
//	unary      = ("!" | "NOT") unary | primary
//	primary    = "(" expr ")"
//	           | "ActionMatches" "{" string "}" | "SubOperationMatches" "{" string "}"
//	           | ("Exists" | "NotExists") attribute
//	           | attribute [quantifier ":"] operator operand
//	operand    = literal | "{" literal { "," literal } "}" | attribute
//	attribute  = "@" ("Resource" | "Request" | "Principal" | "Environment") "[" name ["<$key_case_sensitive$>"] "]"
//	quantifier = "ForAnyOfAnyValues" | "ForAllOfAnyValues" | "ForAnyOfAllValues" | "ForAllOfAllValues"
//	literal    = string | integer | "true" | "false" | guid
//
// Keywords, operators, quantifiers and attribute sources match in any case.
// Strings are single quoted (see lexer.string for escapes). Each operator
// fixes the type of its operands, and literals are converted when the
// condition is parsed: String* operators take strings; Numeric* integers;
// Bool* true or false; DateTime* RFC 3339 date-times in quotes; Guid* GUIDs,
// quoted or not, with or without hyphens. A set is allowed only after a
// cross-product quantifier.
//
// Errors are *SyntaxError.
func Parse(expr string) (*Condition, error) {
	if len(expr) > MaxLength {
		return nil, &SyntaxError{Msg: fmt.Sprintf("condition is %d bytes long; the maximum is %d", len(expr), MaxLength)}
	}
	p := parser{lex: lexer{src: expr}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, &SyntaxError{Msg: "condition is empty"}
	}
	root, err := p.expr()
	if err != nil {
		return nil, err
	}
	switch {
	case p.tok.kind == tokRParen:
		return nil, errorAt(p.tok.pos, "')' without a matching '('")
	case p.tok.kind != tokEOF:
		return nil, errorAt(p.tok.pos, "expected AND, OR or the end of the condition, found %s", p.tok.describe())
	}
	c := &Condition{root: root}
	if n := len(c.String()); n > MaxLength {
		return nil, &SyntaxError{Msg: fmt.Sprintf("condition is %d bytes long in canonical form; the maximum is %d", n, MaxLength)}
	}
	return c, nil
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

// word reports whether the current token is the keyword w, in any case.
func (p *parser) word(w string) bool {
	return p.tok.kind == tokWord && strings.EqualFold(p.tok.text, w)
}

// logical returns nodeAnd or nodeOr when the current token is AND/&& or
// OR/||.
func (p *parser) logical() (nodeKind, bool) {
	switch {
	case p.tok.kind == tokAndAnd || p.word("AND"):
		return nodeAnd, true
	case p.tok.kind == tokOrOr || p.word("OR"):
		return nodeOr, true
	}
	return 0, false
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return errorAt(p.tok.pos, "condition nests parentheses and '!' deeper than %d levels", MaxDepth)
	}
	return nil
}

// expr parses a chain of operands joined by one logical operator into one
// n-ary node, flattening operands that are chains of the same operator.
func (p *parser) expr() (*node, error) {
	first, err := p.unary()
	if err != nil {
		return nil, err
	}
	k, ok := p.logical()
	if !ok {
		return first, nil
	}
	n := &node{kind: k}
	n.kids = appendFlat(n.kids, k, first)
	for {
		k2, ok := p.logical()
		if !ok {
			return n, nil
		}
		if k2 != k {
			return nil, errorAt(p.tok.pos, "%s after %s: mixing AND and OR needs parentheses, as in (a AND b) OR c", name(k2), name(k))
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		n.kids = appendFlat(n.kids, k, x)
	}
}

func name(k nodeKind) string {
	if k == nodeAnd {
		return "AND"
	}
	return "OR"
}

func appendFlat(kids []*node, k nodeKind, x *node) []*node {
	if x.kind == k {
		return append(kids, x.kids...)
	}
	return append(kids, x)
}

func (p *parser) unary() (*node, error) {
	if p.tok.kind != tokBang && !p.word("NOT") {
		return p.primary()
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	p.depth--
	return &node{kind: nodeNot, kids: []*node{x}}, nil
}

func (p *parser) primary() (*node, error) {
	switch {
	case p.tok.kind == tokLParen:
		open := p.tok.pos
		if err := p.enter(); err != nil {
			return nil, err
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tokRParen {
			return nil, errorAt(p.tok.pos, "expected an expression inside '()'")
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			if p.tok.kind == tokEOF {
				return nil, errorAt(open, "'(' is never closed")
			}
			return nil, errorAt(p.tok.pos, "expected AND, OR or ')', found %s", p.tok.describe())
		}
		p.depth--
		return x, p.advance()
	case p.word("ActionMatches"):
		return p.matches(nodeAction, "ActionMatches")
	case p.word("SubOperationMatches"):
		return p.matches(nodeSubOperation, "SubOperationMatches")
	case p.word("Exists") || p.word("NotExists"):
		k, kw := nodeExists, "Exists"
		if p.word("NotExists") {
			k, kw = nodeNotExists, "NotExists"
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokAttr {
			return nil, errorAt(p.tok.pos, "expected an attribute such as @Resource[…] after %s, found %s", kw, p.tok.describe())
		}
		n := &node{kind: k, attr: p.tok.attr}
		return n, p.advance()
	case p.tok.kind == tokAttr:
		return p.comparison()
	case p.tok.kind == tokEOF:
		return nil, errorAt(p.tok.pos, "expected an expression, found end of condition")
	}
	return nil, errorAt(p.tok.pos, "expected '(', '!', ActionMatches, SubOperationMatches, Exists or an attribute such as @Resource[…], found %s", p.tok.describe())
}

// matches parses ActionMatches{'…'} or SubOperationMatches{'…'}.
func (p *parser) matches(k nodeKind, kw string) (*node, error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokLBrace {
		return nil, errorAt(p.tok.pos, "expected '{' after %s, found %s", kw, p.tok.describe())
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokString || p.tok.val == "" {
		return nil, errorAt(p.tok.pos, "expected a quoted, non-empty pattern in %s{…}, found %s", kw, p.tok.describe())
	}
	n := &node{kind: k, pattern: p.tok.val}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokRBrace {
		return nil, errorAt(p.tok.pos, "expected '}' to close %s{…}, found %s", kw, p.tok.describe())
	}
	return n, p.advance()
}

// comparison parses attribute [quantifier:]operator operand.
func (p *parser) comparison() (*node, error) {
	n := &node{kind: nodeCompare, attr: p.tok.attr}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokWord {
		return nil, errorAt(p.tok.pos, "expected an operator such as StringEquals after %s, found %s", n.attr.String(), p.tok.describe())
	}
	opName, opPos := p.tok.text, p.tok.pos
	if q, rest, ok := strings.Cut(opName, ":"); ok {
		quant, ok := lookupQuantifier(q)
		if !ok {
			return nil, errorAt(opPos, "unknown cross-product quantifier %q; expected ForAnyOfAnyValues, ForAllOfAnyValues, ForAnyOfAllValues or ForAllOfAllValues", q)
		}
		n.quant = quant
		opName, opPos = rest, opPos+len(q)+1
	}
	i, ok := lookupOperator(opName)
	if !ok {
		if opName == "" {
			return nil, errorAt(opPos, "expected an operator after %s:", quantNames[n.quant])
		}
		return nil, errorAt(opPos, "unknown operator %q", opName)
	}
	n.op = &operators[i]
	if err := p.advance(); err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokAttr:
		a := p.tok.attr
		n.rhsAttr = &a
		return n, p.advance()
	case tokLBrace:
		if n.quant == quantOne {
			return nil, errorAt(p.tok.pos, "a set {…} needs a cross-product operator such as ForAnyOfAnyValues:%s", n.op.name)
		}
		n.rhsSet = true
		for {
			if err := p.advance(); err != nil {
				return nil, err
			}
			if len(n.rhs) == MaxSetSize {
				return nil, errorAt(p.tok.pos, "set has more than %d values", MaxSetSize)
			}
			v, err := p.literal(n.op)
			if err != nil {
				return nil, err
			}
			n.rhs = append(n.rhs, v)
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind == tokRBrace {
				return n, p.advance()
			}
			if p.tok.kind != tokComma {
				return nil, errorAt(p.tok.pos, "expected ',' or '}' in set, found %s", p.tok.describe())
			}
		}
	}
	v, err := p.literal(n.op)
	if err != nil {
		return nil, err
	}
	n.rhs = []Value{v}
	return n, p.advance()
}

// literal converts the current token to a value of the operator's kind. It
// does not advance.
func (p *parser) literal(op *operator) (Value, error) {
	t := p.tok
	var text string
	switch t.kind {
	case tokString:
		text = t.val
	case tokWord:
		if op.kind == KindString || op.kind == KindDateTime {
			return Value{}, errorAt(t.pos, "%s compares %ss; expected a quoted value such as '…', found %s", op.name, op.kind, t.describe())
		}
		text = t.text
	default:
		return Value{}, errorAt(t.pos, "expected a %s value for %s, found %s", op.kind, op.name, t.describe())
	}
	v, ok := parseLiteral(op.kind, text)
	if !ok {
		return Value{}, errorAt(t.pos, "%s compares %ss; %s is not a %s%s", op.name, op.kind, t.describe(), op.kind, kindHint[op.kind])
	}
	return v, nil
}

var kindHint = [...]string{
	KindNumber:   " (integers only)",
	KindBool:     " (true or false)",
	KindDateTime: " (RFC 3339, as in '2024-05-01T13:00:00.000Z')",
	KindGUID:     " (32 hexadecimal digits, hyphens optional)",
	KindString:   "",
}

// String returns the canonical form of c: keywords and operators in their
// documented spelling, AND and OR written out, one space around them,
// parentheses only where needed and always after '!', GUIDs lower-case and
// hyphenated, date-times in UTC. Parse(c.String()) gives an equal condition.
func (c *Condition) String() string {
	if c == nil || c.root == nil {
		return ""
	}
	var b strings.Builder
	c.root.write(&b)
	return b.String()
}

func (n *node) write(b *strings.Builder) {
	switch n.kind {
	case nodeAnd, nodeOr:
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(" " + name(n.kind) + " ")
			}
			if k.kind == nodeAnd || k.kind == nodeOr {
				b.WriteByte('(')
				k.write(b)
				b.WriteByte(')')
			} else {
				k.write(b)
			}
		}
	case nodeNot:
		b.WriteString("!(")
		n.kids[0].write(b)
		b.WriteByte(')')
	case nodeAction:
		b.WriteString("ActionMatches{" + quote(n.pattern) + "}")
	case nodeSubOperation:
		b.WriteString("SubOperationMatches{" + quote(n.pattern) + "}")
	case nodeExists:
		b.WriteString("Exists " + n.attr.String())
	case nodeNotExists:
		b.WriteString("NotExists " + n.attr.String())
	case nodeCompare:
		b.WriteString(n.attr.String())
		b.WriteByte(' ')
		if n.quant != quantOne {
			b.WriteString(quantNames[n.quant] + ":")
		}
		b.WriteString(n.op.name)
		b.WriteByte(' ')
		switch {
		case n.rhsAttr != nil:
			b.WriteString(n.rhsAttr.String())
		case n.rhsSet:
			b.WriteByte('{')
			for i, v := range n.rhs {
				if i > 0 {
					b.WriteString(", ")
				}
				writeLiteral(b, v)
			}
			b.WriteByte('}')
		default:
			writeLiteral(b, n.rhs[0])
		}
	}
}

func writeLiteral(b *strings.Builder, v Value) {
	switch v.kind {
	case KindString, KindDateTime:
		b.WriteString(quote(v.String()))
	default:
		b.WriteString(v.String())
	}
}
