package rbac

import (
	"fmt"

	"github.com/verityhq/verity/internal/rbac/condition"
)

// CompileCondition compiles an Azure ABAC condition (version 2.0; "1.0"
// conditions of the catalogue use the same grammar) with package
// condition, for Options.CompileCondition. Evaluation fetches only the
// attributes the condition reads; when a request carries attributes it
// allocates for them, so conditional grants are not on the zero-allocation
// path.
func CompileCondition(expr, version string) (Condition, error) {
	switch version {
	case "", "2.0", "1.0":
	default:
		return nil, fmt.Errorf("condition version %q is not supported (want 2.0)", version)
	}
	c, err := condition.Parse(expr)
	if err != nil {
		return nil, err
	}
	return &abacCondition{c: c, refs: c.Attributes()}, nil
}

type abacCondition struct {
	c    *condition.Condition
	refs []condition.AttributeRef
}

// Evaluate implements Condition.
func (a *abacCondition) Evaluate(req *ConditionRequest) (bool, error) {
	creq := condition.Request{Action: req.Action, SubOperation: req.SubOperation}
	if req.Attributes != nil {
		for _, ref := range a.refs {
			vals, ok := req.Attributes.Attribute(ref.Source.String(), ref.Name)
			if !ok {
				continue
			}
			m := sourceMap(&creq, ref.Source)
			if *m == nil {
				*m = condition.Attributes{}
			}
			(*m)[ref.Name] = condition.Strings(vals...)
		}
	}
	return a.c.Evaluate(&creq)
}

func sourceMap(r *condition.Request, s condition.Source) *condition.Attributes {
	switch s {
	case condition.SourceResource:
		return &r.Resource
	case condition.SourceRequest:
		return &r.Request
	case condition.SourcePrincipal:
		return &r.Principal
	default:
		return &r.Environment
	}
}
