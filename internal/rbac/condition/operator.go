package condition

import "strings"

// compare is the base comparison an operator performs on one pair of
// values; the "Not" operators are the negation of another one's.
type compare uint8

const (
	cmpEquals compare = iota
	cmpEqualsFold
	cmpLike
	cmpLikeFold
	cmpStartsWith
	cmpStartsWithFold
	cmpLess
	cmpLessEquals
	cmpGreater
	cmpGreaterEquals
)

// operator is one comparison operator of the documented set.
type operator struct {
	name   string // canonical spelling
	kind   Kind   // the type both operands are converted to
	cmp    compare
	negate bool
}

// operators lists every documented comparison operator. Names match in any
// case ("boolequals" appears in a built-in role's condition).
var operators = []operator{
	{"StringEquals", KindString, cmpEquals, false},
	{"StringNotEquals", KindString, cmpEquals, true},
	{"StringEqualsIgnoreCase", KindString, cmpEqualsFold, false},
	{"StringNotEqualsIgnoreCase", KindString, cmpEqualsFold, true},
	{"StringLike", KindString, cmpLike, false},
	{"StringNotLike", KindString, cmpLike, true},
	{"StringLikeIgnoreCase", KindString, cmpLikeFold, false},
	{"StringNotLikeIgnoreCase", KindString, cmpLikeFold, true},
	{"StringStartsWith", KindString, cmpStartsWith, false},
	{"StringNotStartsWith", KindString, cmpStartsWith, true},
	{"StringStartsWithIgnoreCase", KindString, cmpStartsWithFold, false},
	{"StringNotStartsWithIgnoreCase", KindString, cmpStartsWithFold, true},
	{"NumericEquals", KindNumber, cmpEquals, false},
	{"NumericNotEquals", KindNumber, cmpEquals, true},
	{"NumericLessThan", KindNumber, cmpLess, false},
	{"NumericLessThanEquals", KindNumber, cmpLessEquals, false},
	{"NumericGreaterThan", KindNumber, cmpGreater, false},
	{"NumericGreaterThanEquals", KindNumber, cmpGreaterEquals, false},
	{"BoolEquals", KindBool, cmpEquals, false},
	{"BoolNotEquals", KindBool, cmpEquals, true},
	{"DateTimeEquals", KindDateTime, cmpEquals, false},
	{"DateTimeNotEquals", KindDateTime, cmpEquals, true},
	{"DateTimeLessThan", KindDateTime, cmpLess, false},
	{"DateTimeLessThanEquals", KindDateTime, cmpLessEquals, false},
	{"DateTimeGreaterThan", KindDateTime, cmpGreater, false},
	{"DateTimeGreaterThanEquals", KindDateTime, cmpGreaterEquals, false},
	{"GuidEquals", KindGUID, cmpEquals, false},
	{"GuidNotEquals", KindGUID, cmpEquals, true},
}

func lookupOperator(name string) (int, bool) {
	for i := range operators {
		if strings.EqualFold(operators[i].name, name) {
			return i, true
		}
	}
	return 0, false
}

// quantifier is a cross-product prefix; quantOne is a plain operator, which
// compares one value with one value.
type quantifier uint8

const (
	quantOne quantifier = iota
	quantAnyOfAny
	quantAllOfAny
	quantAnyOfAll
	quantAllOfAll
)

var quantNames = [...]string{"", "ForAnyOfAnyValues", "ForAllOfAnyValues", "ForAnyOfAllValues", "ForAllOfAllValues"}

func lookupQuantifier(name string) (quantifier, bool) {
	for i := quantAnyOfAny; i <= quantAllOfAll; i++ {
		if strings.EqualFold(quantNames[i], name) {
			return i, true
		}
	}
	return quantOne, false
}
