package condition

import (
	"errors"
	"fmt"
	"strings"

	"github.com/verityhq/verity/internal/textfold"
)

// Evaluation errors. Evaluate wraps them with the attribute concerned; a
// caller should treat any error as "condition not met".
var (
	// ErrType is an attribute value that does not convert to the type the
	// operator compares (a string that is not a GUID for GuidEquals, a
	// Number for StringEquals).
	ErrType = errors.New("attribute value has the wrong type for the operator")
	// ErrMultiValued is an attribute with several values compared by an
	// operator without a cross-product quantifier.
	ErrMultiValued = errors.New("attribute has several values; compare it with a cross-product quantifier such as ForAnyOfAnyValues")
)

var emptyRequest Request

// Evaluate decides c for req; a nil req has no action and no attributes.
//
// Actions: ActionMatches is true when req.Action matches its pattern (see
// actionMatches) and SubOperationMatches when req.SubOperation does; the
// condition has no special shape, so the documented
// "!(ActionMatches{…}) OR (…)" — true for actions the condition does not
// target — follows from ordinary evaluation, as does a condition with no
// ActionMatches at all, which applies to every action.
//
// Missing attributes: the page does not say what a comparison of an absent
// attribute yields, so Verity fails closed. An attribute that is absent from
// the request, or present with no values, makes every comparison that reads
// it false — including the negated operators (StringNotEquals,
// GuidNotEquals, …) and every cross-product quantifier — rather than true;
// Exists is false and NotExists true. Only an explicit '!' turns such a
// false into true, so write "NotExists @…[…] OR @…[…] StringNotEquals '…'"
// when absence should pass.
//
// Cross products compare each value on the left with the values on the
// right: ForAnyOfAnyValues — some left value matches some right value;
// ForAllOfAnyValues — every left value matches some right value;
// ForAnyOfAllValues — some left value matches every right value;
// ForAllOfAllValues — every left value matches every right value. Negated
// operators negate each pair, so "ForAnyOfAllValues:GuidNotEquals {a, b}"
// means "some value is neither a nor b".
//
// AND and OR stop at the first operand that decides them, so an error in an
// operand that is not reached is not reported. An error means the request
// did not fit the condition (ErrType, ErrMultiValued); the result is then
// false.
func (c *Condition) Evaluate(req *Request) (bool, error) {
	if c == nil || c.root == nil {
		return false, errors.New("condition: evaluating a condition that was not parsed")
	}
	if req == nil {
		req = &emptyRequest
	}
	return c.root.eval(req)
}

func (n *node) eval(req *Request) (bool, error) {
	switch n.kind {
	case nodeAnd:
		for _, k := range n.kids {
			if ok, err := k.eval(req); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	case nodeOr:
		for _, k := range n.kids {
			ok, err := k.eval(req)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	case nodeNot:
		ok, err := n.kids[0].eval(req)
		if err != nil {
			return false, err
		}
		return !ok, nil
	case nodeAction:
		return actionMatches(n.pattern, req.Action), nil
	case nodeSubOperation:
		return req.SubOperation != "" && actionMatches(n.pattern, req.SubOperation), nil
	case nodeExists:
		return len(req.source(n.attr.source).lookup(&n.attr)) > 0, nil
	case nodeNotExists:
		return len(req.source(n.attr.source).lookup(&n.attr)) == 0, nil
	}
	return n.compare(req)
}

func (n *node) compare(req *Request) (bool, error) {
	lhs := req.source(n.attr.source).lookup(&n.attr)
	if len(lhs) == 0 {
		return false, nil
	}
	rhs := n.rhs
	if n.rhsAttr != nil {
		if rhs = req.source(n.rhsAttr.source).lookup(n.rhsAttr); len(rhs) == 0 {
			return false, nil
		}
	}
	switch n.quant {
	case quantOne:
		if len(lhs) != 1 {
			return false, n.fail(&n.attr, ErrMultiValued, len(lhs))
		}
		if len(rhs) != 1 {
			return false, n.fail(n.rhsAttr, ErrMultiValued, len(rhs))
		}
		return n.row(&lhs[0], rhs, true)
	case quantAnyOfAny, quantAnyOfAll:
		all := n.quant == quantAnyOfAll
		for i := range lhs {
			ok, err := n.row(&lhs[i], rhs, all)
			if ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	default: // quantAllOfAny, quantAllOfAll
		all := n.quant == quantAllOfAll
		for i := range lhs {
			ok, err := n.row(&lhs[i], rhs, all)
			if !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	}
}

// row compares one left value with the right values: with every one when
// all is set, else with some one. Values of the operator's kind are compared
// in place; string attribute values are converted first.
func (n *node) row(l *Value, rhs []Value, all bool) (bool, error) {
	kind := n.op.kind
	if l.kind != kind {
		lv, ok := l.as(kind)
		if !ok {
			return false, n.mismatch(&n.attr, *l)
		}
		l = &lv
	}
	for i := range rhs {
		r := &rhs[i]
		if r.kind != kind {
			rv, ok := r.as(kind)
			if !ok {
				return false, n.mismatch(n.rhsAttr, *r)
			}
			r = &rv
		}
		if n.test(l, r) != all {
			return !all, nil
		}
	}
	return all, nil
}

// test applies the operator to one left and one right value, both of the
// operator's kind.
func (n *node) test(l, r *Value) bool {
	op := n.op
	var res bool
	switch op.cmp {
	case cmpEquals:
		switch op.kind {
		case KindString:
			res = l.str == r.str
		case KindNumber:
			res = l.num == r.num
		case KindBool:
			res = l.b == r.b
		case KindDateTime:
			res = l.t.Equal(r.t)
		case KindGUID:
			res = l.guid == r.guid
		}
	case cmpEqualsFold:
		res = strings.EqualFold(l.str, r.str)
	case cmpLike:
		res = like(r.str, l.str, false)
	case cmpLikeFold:
		res = like(r.str, l.str, true)
	case cmpStartsWith:
		res = strings.HasPrefix(l.str, r.str)
	case cmpStartsWithFold:
		res = textfold.HasPrefix(l.str, r.str)
	default:
		d := order(l, r)
		switch op.cmp {
		case cmpLess:
			res = d < 0
		case cmpLessEquals:
			res = d <= 0
		case cmpGreater:
			res = d > 0
		case cmpGreaterEquals:
			res = d >= 0
		}
	}
	return res != op.negate
}

// order compares two numbers or two date-times.
func order(a, b *Value) int {
	if a.kind == KindDateTime {
		return a.t.Compare(b.t)
	}
	switch {
	case a.num < b.num:
		return -1
	case a.num > b.num:
		return 1
	}
	return 0
}

func (n *node) mismatch(a *attribute, v Value) error {
	what := "a literal"
	if a != nil {
		what = a.String()
	}
	if v.kind == KindString {
		return fmt.Errorf("condition: %s %s: value %q is not a %s: %w", what, n.op.name, v.str, n.op.kind, ErrType)
	}
	return fmt.Errorf("condition: %s %s: value is a %s, not a %s: %w", what, n.op.name, v.kind, n.op.kind, ErrType)
}

func (n *node) fail(a *attribute, err error, count int) error {
	return fmt.Errorf("condition: %s %s: %d values: %w", a.String(), n.op.name, count, err)
}
