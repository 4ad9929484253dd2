package devicefilter

import "strings"

// op is a comparison operator. Every negative operator is its positive
// partner with the low bit set, and evaluates to the exact opposite of it,
// including on null attributes: that is what makes the documented table for
// unregistered devices (positive operators never apply, negative ones always
// do) hold.
type op uint8

const (
	opEq op = iota
	opNe
	opStartsWith
	opNotStartsWith
	opEndsWith
	opNotEndsWith
	opContains
	opNotContains
	opIn
	opNotIn
	opMatch
	opNotMatch
	opCount
)

// opNames holds the canonical spelling of each operator.
var opNames = [opCount]string{
	opEq:            "-eq",
	opNe:            "-ne",
	opStartsWith:    "-startsWith",
	opNotStartsWith: "-notStartsWith",
	opEndsWith:      "-endsWith",
	opNotEndsWith:   "-notEndsWith",
	opContains:      "-contains",
	opNotContains:   "-notContains",
	opIn:            "-in",
	opNotIn:         "-notIn",
	opMatch:         "-match",
	opNotMatch:      "-notMatch",
}

func (o op) String() string { return opNames[o] }

func (o op) negative() bool { return o&1 == 1 }

// positive returns the operator o negates, or o itself.
func (o op) positive() op { return o &^ 1 }

// lookupOp finds an operator written with or without its leading hyphen, in
// any case ("-startswith", "EndsWith").
func lookupOp(word string) (op, bool) {
	word = strings.TrimPrefix(word, "-")
	for i, n := range opNames {
		if strings.EqualFold(n[1:], word) {
			return op(i), true
		}
	}
	return 0, false
}

// opSet is a set of operators, one bit per op.
type opSet uint16

func (s opSet) has(o op) bool { return s&(1<<o) != 0 }

// String lists the set as an error message does: "-eq, -ne".
func (s opSet) String() string {
	var b strings.Builder
	for o := range opCount {
		if s.has(o) {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(opNames[o])
		}
	}
	return b.String()
}
