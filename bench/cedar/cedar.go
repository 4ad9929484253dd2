package cedarbench

import (
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
)

// Entity types of the Cedar model.
const (
	userType   = types.EntityType("User")
	groupType  = types.EntityType("Group")
	scopeType  = types.EntityType("Scope")
	actionType = types.EntityType("Action")
)

// Cedar is the same tenant as Cedar entities and policies:
//
//   - User::"<guid>" and Group::"<guid>", parents = the groups they are
//     direct members of (so `principal in Group::"g"` is transitive
//     membership);
//   - Scope::"<lower-case scope path>", parent = the enclosing scope (so
//     `resource in Scope::"s"` is "s or below");
//   - Action::"<operation>" for control-plane operations and
//     Action::"data/<operation>" for data actions, parents = the action
//     groups Action::"role/<role guid>" of every role granting them and
//     Action::"deny/<deny id>" of every deny assignment denying them. Azure
//     wildcards and NotActions have no Cedar equivalent, so each role's
//     Actions − NotActions (and DataActions − NotDataActions), per
//     permission block, is expanded at load time against the operations
//     the requests use;
//   - one policy per role assignment, as a Cedar template link would give:
//     permit (principal == User::"u" | in Group::"g",
//     action in Action::"role/<guid>", resource in Scope::"s");
//   - one forbid per deny assignment: forbid (principal, action in
//     Action::"deny/<id>", resource in | == Scope::"s") when { principal in
//     [named groups] } unless { principal in [excluded] }.
//
// Evaluating 1M policies per request is what cedar.Authorize does with the
// whole set (measured by TestCedarUnsliced); a deployment at this size
// slices instead, as Cedar's documentation advises: the policy store hands
// Authorize only the policies whose principal scope is the principal or one
// of its groups, plus every forbid. Slice does that from an index built at
// load time.
type Cedar struct {
	ds       *Dataset
	Entities types.EntityMap
	// Policies is every policy, for unsliced evaluation.
	Policies *cedar.PolicySet
	forbids  []entry
	byPrinc  map[types.EntityUID][]entry
	reqs     []cedar.Request
	// Load times, for the summary.
	ExpandTime, EntityTime, PolicyTime time.Duration
	ActionParents                      int // total action → group edges
}

type entry struct {
	id cedar.PolicyID
	p  *cedar.Policy
}

func principalUID(ds *Dataset, p int32) types.EntityUID {
	pr := ds.Principals[p]
	if pr.Group {
		return types.NewEntityUID(groupType, types.String(pr.ID))
	}
	return types.NewEntityUID(userType, types.String(pr.ID))
}

func scopeUID(ds *Dataset, s int32) types.EntityUID {
	return types.NewEntityUID(scopeType, types.String(strings.ToLower(ds.Scopes[s].Path)))
}

func actionUID(action string, data bool) types.EntityUID {
	if data {
		action = "data/" + action
	}
	return types.NewEntityUID(actionType, types.String(action))
}

// NewCedar builds the entities and policies from ds.
func NewCedar(ds *Dataset) (*Cedar, error) {
	c := &Cedar{ds: ds, Entities: types.EntityMap{}, byPrinc: map[types.EntityUID][]entry{}}

	// Actions: expand roles and deny assignments against the operations.
	t0 := time.Now()
	parents := map[types.EntityUID][]types.EntityUID{}
	expand := func(group types.EntityUID, p Permission) {
		for _, a := range ds.Actions {
			if p.grants(a, false) {
				u := actionUID(a, false)
				parents[u] = append(parents[u], group)
			}
		}
		for _, a := range ds.DataActions {
			if p.grants(a, true) {
				u := actionUID(a, true)
				parents[u] = append(parents[u], group)
			}
		}
	}
	for _, r := range ds.Roles {
		g := types.NewEntityUID(actionType, types.String("role/"+r.Name))
		for _, p := range r.Permissions {
			if conditionGrants(p.Condition) {
				expand(g, p)
			}
		}
	}
	for _, d := range ds.Denies {
		expand(types.NewEntityUID(actionType, types.String("deny/"+d.ID)), d.Permission)
	}
	for _, a := range ds.Actions {
		c.addAction(actionUID(a, false), parents)
	}
	for _, a := range ds.DataActions {
		c.addAction(actionUID(a, true), parents)
	}
	c.ExpandTime = time.Since(t0)

	// Principals and scopes.
	t0 = time.Now()
	for i := range ds.Principals {
		uid := principalUID(ds, int32(i))
		ps := make([]types.EntityUID, len(ds.Principals[i].Parents))
		for j, q := range ds.Principals[i].Parents {
			ps[j] = principalUID(ds, q)
		}
		c.Entities[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(ps...)}
	}
	for i, s := range ds.Scopes {
		uid := scopeUID(ds, int32(i))
		e := types.Entity{UID: uid}
		if s.Parent >= 0 {
			e.Parents = types.NewEntityUIDSet(scopeUID(ds, s.Parent))
		}
		c.Entities[uid] = e
	}
	c.EntityTime = time.Since(t0)

	// Policies.
	t0 = time.Now()
	c.Policies = cedar.NewPolicySet()
	for i, a := range ds.Assignments {
		pu := principalUID(ds, a.Principal)
		pol := ast.Permit()
		if ds.Principals[a.Principal].Group {
			pol = pol.PrincipalIn(pu)
		} else {
			pol = pol.PrincipalEq(pu)
		}
		pol = pol.ActionIn(types.NewEntityUID(actionType, types.String("role/"+ds.Roles[a.Role].Name))).
			ResourceIn(scopeUID(ds, a.Scope))
		e := entry{id: cedar.PolicyID(fmt.Sprintf("ra%d", i)), p: cedar.NewPolicyFromAST(pol)}
		c.Policies.Add(e.id, e.p)
		c.byPrinc[pu] = append(c.byPrinc[pu], e)
	}
	for i, d := range ds.Denies {
		pol := ast.Forbid().ActionIn(types.NewEntityUID(actionType, types.String("deny/"+d.ID)))
		if d.DoNotApplyToChildScopes {
			pol = pol.ResourceEq(scopeUID(ds, d.Scope))
		} else {
			pol = pol.ResourceIn(scopeUID(ds, d.Scope))
		}
		if !d.Everyone {
			pol = pol.When(ast.Principal().In(c.setOf(d.Principals)))
		}
		if len(d.Exclude) > 0 {
			pol = pol.Unless(ast.Principal().In(c.setOf(d.Exclude)))
		}
		e := entry{id: cedar.PolicyID(fmt.Sprintf("deny%d", i)), p: cedar.NewPolicyFromAST(pol)}
		c.Policies.Add(e.id, e.p)
		c.forbids = append(c.forbids, e)
	}
	c.PolicyTime = time.Since(t0)

	for _, q := range ds.Requests {
		c.reqs = append(c.reqs, cedar.Request{
			Principal: principalUID(ds, q.Principal),
			Action:    actionUID(q.Action, q.Data),
			Resource:  scopeUID(ds, q.Scope),
			Context:   types.Record{},
		})
	}
	return c, nil
}

func (c *Cedar) addAction(uid types.EntityUID, parents map[types.EntityUID][]types.EntityUID) {
	c.Entities[uid] = types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents[uid]...)}
	c.ActionParents += len(parents[uid])
}

func (c *Cedar) setOf(ps []int32) ast.Node {
	nodes := make([]ast.Node, len(ps))
	for i, p := range ps {
		nodes[i] = ast.Value(principalUID(c.ds, p))
	}
	return ast.Set(nodes...)
}

// Slice holds the policies for one request; reuse it across requests.
type Slice struct {
	entries []entry
	queue   []types.EntityUID
}

// All yields the slice's policies (cedar.PolicyIterator).
func (s *Slice) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range s.entries {
			if !yield(e.id, e.p) {
				return
			}
		}
	}
}

// Slice fills s with the policies that can apply to the request: every
// forbid, and the permits whose principal is the request's principal or a
// group it belongs to, found by walking the entity hierarchy.
func (c *Cedar) Slice(req *cedar.Request, s *Slice) {
	s.entries = append(s.entries[:0], c.forbids...)
	s.queue = append(s.queue[:0], req.Principal)
	for i := 0; i < len(s.queue); i++ {
		u := s.queue[i]
		s.entries = append(s.entries, c.byPrinc[u]...)
		e, ok := c.Entities[u]
		if !ok {
			continue
		}
		for p := range e.Parents.All() {
			seen := false
			for _, q := range s.queue {
				if q == p {
					seen = true
					break
				}
			}
			if !seen {
				s.queue = append(s.queue, p)
			}
		}
	}
}

// Allowed decides request i with the sliced policy set.
func (c *Cedar) Allowed(i int, s *Slice) (bool, error) {
	req := &c.reqs[i]
	c.Slice(req, s)
	d, diag := cedar.Authorize(s, c.Entities, *req)
	if len(diag.Errors) > 0 {
		return false, fmt.Errorf("cedar: %v", diag.Errors[0])
	}
	return d == cedar.Allow, nil
}

// AllowedUnsliced decides request i against every policy.
func (c *Cedar) AllowedUnsliced(i int) (bool, error) {
	d, diag := cedar.Authorize(c.Policies, c.Entities, c.reqs[i])
	if len(diag.Errors) > 0 {
		return false, fmt.Errorf("cedar: %v", diag.Errors[0])
	}
	return d == cedar.Allow, nil
}

// Explain renders, in Cedar syntax, the policies that decided request i
// (diagnostic reasons of the sliced evaluation), for failure messages.
func (c *Cedar) Explain(i int) string {
	var s Slice
	c.Slice(&c.reqs[i], &s)
	_, diag := cedar.Authorize(&s, c.Entities, c.reqs[i])
	var b strings.Builder
	fmt.Fprintf(&b, "  %d policies in the slice; deciding:\n", len(s.entries))
	for _, r := range diag.Reasons {
		for _, e := range s.entries {
			if e.id == r.PolicyID {
				fmt.Fprintf(&b, "  %s: %s\n", e.id, e.p.MarshalCedar())
			}
		}
	}
	return b.String()
}
