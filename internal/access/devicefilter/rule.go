package devicefilter

import (
	"regexp"
	"strings"

	"github.com/verityhq/verity/internal/textfold"
)

// Rule is a compiled device filter rule. It is immutable and safe for
// concurrent use; Match allocates nothing.
type Rule struct {
	root node
}

type nodeKind uint8

const (
	nodeOr  nodeKind = iota + 1 // lowest precedence
	nodeAnd                     //
	nodeNot                     //
	nodeCmp                     // highest precedence
)

// node is one node of the rule tree. -and and -or are n-ary: a chain of the
// same operator, parenthesised or not, is one node.
type node struct {
	kind nodeKind
	kids []node     // operands of nodeAnd, nodeOr; the one operand of nodeNot
	cmp  comparison // nodeCmp
}

// comparison is one "device.<attribute> <operator> <value>" test, with its
// value compiled at parse time.
type comparison struct {
	attr attrID
	kind kind
	op   op
	null bool           // the value is null (-eq null, -ne null)
	b    bool           // the value of a kindBool comparison
	vals []string       // the string value, or the list of -in / -notIn
	re   *regexp.Regexp // the compiled pattern of -match / -notMatch
}

// unregistered stands in for a device the directory does not know: every
// attribute is null. Never written.
var unregistered = &Device{}

// Match reports whether the rule matches the device. A nil or unregistered
// device has only null attributes, so a positive comparison (-eq,
// -startsWith, -endsWith, -contains, -in, -match) is false for it and a
// negative one (-ne, -notStartsWith, …) is true. Extension attributes read as
// null unless the device is managed, compliant or hybrid joined.
func (r *Rule) Match(d *Device) bool {
	if d == nil || !d.Registered {
		d = unregistered
	}
	return r.root.eval(d)
}

func (n *node) eval(d *Device) bool {
	switch n.kind {
	case nodeCmp:
		return n.cmp.holds(d) != n.cmp.op.negative()
	case nodeNot:
		return !n.kids[0].eval(d)
	case nodeAnd:
		for i := range n.kids {
			if !n.kids[i].eval(d) {
				return false
			}
		}
		return true
	case nodeOr:
		for i := range n.kids {
			if n.kids[i].eval(d) {
				return true
			}
		}
	}
	return false
}

// holds evaluates the positive form of the comparison: for -ne it says
// whether -eq holds. On a null attribute only "-eq null" holds.
func (c *comparison) holds(d *Device) bool {
	switch c.kind {
	case kindBool:
		if d.IsCompliant == nil {
			return c.null
		}
		return !c.null && *d.IsCompliant == c.b
	case kindCollection:
		// -contains on a collection matches a whole element, not a substring.
		for _, s := range d.list(c.attr) {
			if strings.EqualFold(s, c.vals[0]) {
				return true
			}
		}
		return false
	}
	s, ok := d.text(c.attr)
	if !ok || c.null {
		return !ok && c.null
	}
	switch c.op.positive() {
	case opEq:
		return strings.EqualFold(s, c.vals[0])
	case opStartsWith:
		return textfold.HasPrefix(s, c.vals[0])
	case opEndsWith:
		return textfold.HasSuffix(s, c.vals[0])
	case opContains:
		return textfold.Contains(s, c.vals[0])
	case opIn:
		for _, v := range c.vals {
			if strings.EqualFold(s, v) {
				return true
			}
		}
		return false
	case opMatch:
		return c.re.MatchString(s)
	}
	return false
}

// String returns the rule in canonical form: attribute names as Graph spells
// them, operators hyphenated in their documented case, enum values in their
// documented spelling, booleans as True and False, strings double quoted,
// lists without spaces, -and and -or chains flattened, and parentheses only
// where precedence needs them (and around the operand of -not).
// Parse(r.String()) gives a rule with the same String and the same results:
// Parse rejects a rule whose canonical form would exceed MaxRuleLength.
func (r *Rule) String() string {
	var b strings.Builder
	r.root.write(&b, 0)
	return b.String()
}

func (n *node) write(b *strings.Builder, outer nodeKind) {
	if n.kind < outer {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch n.kind {
	case nodeOr, nodeAnd:
		sep := " -or "
		if n.kind == nodeAnd {
			sep = " -and "
		}
		for i := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			n.kids[i].write(b, n.kind+1)
		}
	case nodeNot:
		b.WriteString("-not ")
		k := &n.kids[0]
		if k.kind == nodeNot {
			k.write(b, nodeNot)
			return
		}
		b.WriteByte('(')
		k.write(b, 0)
		b.WriteByte(')')
	case nodeCmp:
		n.cmp.write(b)
	}
}

func (c *comparison) write(b *strings.Builder) {
	b.WriteString("device.")
	b.WriteString(attributes[c.attr].name)
	b.WriteByte(' ')
	b.WriteString(c.op.String())
	b.WriteByte(' ')
	switch {
	case c.null:
		b.WriteString("null")
	case c.kind == kindBool && c.b:
		b.WriteString("True")
	case c.kind == kindBool:
		b.WriteString("False")
	case c.op.positive() == opIn:
		b.WriteByte('[')
		for i, v := range c.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quote(v))
		}
		b.WriteByte(']')
	default:
		b.WriteString(quote(c.vals[0]))
	}
}

// quote double-quotes s, escaping '"' and '`' with a backtick.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '`' {
			b.WriteByte('`')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
