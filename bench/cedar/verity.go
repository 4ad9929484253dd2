package cedarbench

import (
	"fmt"
	"iter"
	"maps"
	"strings"

	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/rbac/condition"
)

// Verity is the tenant compiled by Verity's RBAC engine, with the requests
// built beforehand as an enforcement point would build them.
type Verity struct {
	Engine  *rbac.Engine
	reqs    []rbac.Request
	Skipped int
}

// memberOf serves each principal's transitive groups from a precomputed
// table, as Verity's directory snapshot does (rbac.Principals).
type memberOf map[string][]string

func (m memberOf) TransitiveMemberOf(id string) []string {
	if g, ok := m[id]; ok {
		return g
	}
	return []string{}
}

// PrincipalIDs lists the users, so that the engine resolves each with its
// groups once, as it does with Verity's directory snapshot
// (rbac.PrincipalLister).
func (m memberOf) PrincipalIDs() iter.Seq[string] { return maps.Keys(m) }

// conditionAdapter evaluates a built-in role's ABAC condition with
// package rbac/condition. The generated requests carry no attributes.
type conditionAdapter struct{ c *condition.Condition }

func (a conditionAdapter) Evaluate(req *rbac.ConditionRequest) (bool, error) {
	return a.c.Evaluate(&condition.Request{Action: req.Action, SubOperation: req.SubOperation})
}

// NewVerity compiles ds with rbac.Compile: the built-in roles come from
// Verity's embedded catalogue, the custom roles, assignments and deny
// assignments in their Azure shapes.
func NewVerity(ds *Dataset) (*Verity, error) {
	var subs []string
	for _, s := range ds.Scopes {
		if s.Depth == 2 {
			subs = append(subs, s.Path)
		}
	}
	var defs []rbac.RoleDefinition
	for _, r := range ds.Roles {
		if !r.Custom {
			continue
		}
		d := rbac.RoleDefinition{Name: r.Name, RoleName: r.RoleName, RoleType: rbac.CustomRole, AssignableScopes: subs}
		for _, p := range r.Permissions {
			d.Permissions = append(d.Permissions, rbacPermission(p))
		}
		defs = append(defs, d)
	}
	as := make([]rbac.Assignment, len(ds.Assignments))
	for i, a := range ds.Assignments {
		pt := "User"
		if ds.Principals[a.Principal].Group {
			pt = "Group"
		}
		as[i] = rbac.Assignment{
			ID:               fmt.Sprintf("ra%d", i),
			PrincipalID:      a.PrincipalID,
			PrincipalType:    pt,
			RoleDefinitionID: "/providers/Microsoft.Authorization/roleDefinitions/" + ds.Roles[a.Role].Name,
			Scope:            ds.Scopes[a.Scope].Path,
		}
	}
	var denies []rbac.DenyAssignment
	for _, d := range ds.Denies {
		da := rbac.DenyAssignment{ID: d.ID, DenyAssignmentName: d.Name, Scope: ds.Scopes[d.Scope].Path,
			DoNotApplyToChildScopes: d.DoNotApplyToChildScopes, Permissions: []rbac.Permission{rbacPermission(d.Permission)}}
		if d.Everyone {
			da.Principals = []rbac.DenyPrincipal{{ID: rbac.EveryoneID, Type: "SystemDefined"}}
		}
		for _, p := range d.Principals {
			da.Principals = append(da.Principals, rbac.DenyPrincipal{ID: ds.Principals[p].ID, Type: "Group"})
		}
		for _, p := range d.Exclude {
			da.ExcludePrincipals = append(da.ExcludePrincipals, rbac.DenyPrincipal{ID: ds.Principals[p].ID, Type: "Group"})
		}
		denies = append(denies, da)
	}
	mo := memberOf{}
	for i, p := range ds.Principals {
		if p.Group {
			continue
		}
		cl := ds.closure(int32(i))[1:]
		gs := make([]string, len(cl))
		for j, g := range cl {
			gs[j] = ds.Principals[g].ID
		}
		mo[p.ID] = gs
	}
	e, err := rbac.Compile(defs, as, denies, rbac.Options{
		Principals: mo,
		CompileCondition: func(expr, version string) (rbac.Condition, error) {
			c, err := condition.Parse(expr)
			if err != nil {
				return nil, err
			}
			return conditionAdapter{c}, nil
		},
	})
	if err != nil {
		return nil, err
	}
	v := &Verity{Engine: e, Skipped: len(e.Skipped())}
	for _, q := range ds.Requests {
		v.reqs = append(v.reqs, rbac.Request{
			PrincipalID: ds.Principals[q.Principal].ID,
			Action:      q.Action,
			DataAction:  q.Data,
			Scope:       ds.Scopes[q.Scope].Path,
		})
	}
	return v, nil
}

func rbacPermission(p Permission) rbac.Permission {
	return rbac.Permission{Actions: p.Actions, NotActions: p.NotActions, DataActions: p.DataActions,
		NotDataActions: p.NotDataActions, Condition: p.Condition}
}

// Check decides request i into res.
func (v *Verity) Check(i int, res *rbac.Decision) {
	v.Engine.Check(&v.reqs[i], res)
}

// Describe names request i for failure messages.
func (ds *Dataset) Describe(i int) string {
	q := ds.Requests[i]
	plane := "action"
	if q.Data {
		plane = "dataAction"
	}
	var groups []string
	for _, g := range ds.closure(q.Principal)[1:] {
		groups = append(groups, ds.Principals[g].ID)
	}
	return fmt.Sprintf("principal %s (groups %s) %s %s at %s", ds.Principals[q.Principal].ID,
		strings.Join(groups, ", "), plane, q.Action, ds.Scopes[q.Scope].Path)
}
