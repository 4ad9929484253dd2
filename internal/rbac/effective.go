package rbac

import (
	"slices"
	"time"
)

// PermissionGrant is one permission block that a principal holds at a
// scope through one role assignment: what Permissions reports. Its
// Grant.EndDateTime says when the assignment stops being in force.
type PermissionGrant struct {
	Grant
	Permission Permission
	// Condition is the assignment's ABAC condition, if any; the block's own
	// is in Permission.Condition. Either must hold for the block to grant.
	Condition string
	// Denies are the deny assignments that apply to the principal at the
	// scope; what they deny is subtracted from every grant.
	Denies []DenyRef
}

// Permissions lists what principal (with its transitive groups, from
// Options.Principals) holds at scope at time now: every permission block
// of every role assigned to it or its groups at the scope or above whose
// assignment is in force at now, each with the deny assignments that
// apply there. Assignments left out by Compile are not listed. A zero now
// is the current time, as in Request. It allocates; it is for
// explanations, not the hot path.
func (e *Engine) Permissions(principal, scope string, now time.Time) []PermissionGrant {
	var groups []string
	if e.opts.Principals != nil {
		groups = e.opts.Principals.TransitiveMemberOf(principal)
	}
	return e.PermissionsOf(principal, groups, scope, now)
}

// PermissionsOf is Permissions with the principal's transitive groups
// given by the caller.
func (e *Engine) PermissionsOf(principal string, groups []string, scope string, now time.Time) []PermissionGrant {
	if len(scope) == 0 || scope[0] != '/' {
		return nil
	}
	at := requestTime(now)
	chain, exact := e.resolveScope(lower(nil, scope))
	pids := e.principalIDs(principal, groups)
	var denies []DenyRef
	for i, sc := range chain {
		for _, di := range e.deniesAt[sc] {
			d := &e.denies[di]
			if d.childless && (i != 0 || !exact) {
				continue
			}
			if d.appliesTo(pids) {
				denies = append(denies, e.denyRefs[di])
			}
		}
	}
	var out []PermissionGrant
	for _, p := range pids {
		for _, pe := range e.byPrincipal.of(p) {
			a := &e.assignments[pe.assignment]
			if !slices.Contains(chain, a.scope) || !e.inForceAt(a, at) {
				continue
			}
			role := &e.roles[a.role]
			for b, perm := range role.def.Permissions {
				out = append(out, PermissionGrant{
					Grant: Grant{AssignmentID: a.src.ID, PrincipalID: e.principalNames[a.principal],
						RoleDefinitionID: role.def.ID, RoleName: role.def.RoleName, Scope: a.src.Scope, Block: b, EndDateTime: endOf(a)},
					Permission: perm, Condition: a.src.Condition, Denies: denies,
				})
			}
		}
	}
	return out
}

func (e *Engine) principalIDs(principal string, groups []string) []int32 {
	var pids []int32
	for _, id := range append([]string{principal}, groups...) {
		if p, _, ok := e.lookupPrincipal(id, nil); ok {
			pids = append(pids, p)
		}
	}
	return pids
}

// WhoCan lists the principal ids (lower-case, sorted, each once) holding a
// role assignment that grants action (a data action when dataAction) at
// scope at time now (zero: the current time): assigned at the scope or
// above, in force at now, with a role whose permissions contain the
// action. These are assignment principals: a group stands for
// its members, which the caller expands. Assignments with a condition are
// included when the condition can be evaluated (it may still fail for a
// given request); those whose condition cannot be evaluated are not.
// Principals named directly (or as "everyone") by a deny assignment that
// applies at the scope and covers the action are removed; a user denied
// through a group membership is not, since the engine does not know group
// members: run Check for each expanded user to be exact.
func (e *Engine) WhoCan(action, scope string, dataAction bool, now time.Time) []string {
	if action == "" || len(scope) == 0 || scope[0] != '/' {
		return nil
	}
	at := requestTime(now)
	a := lower(nil, action)
	chain, exact := e.resolveScope(lower(nil, scope))

	everyoneDenied := false
	var excepted, denied []int32 // when everyone is denied: only these pass
	for i, sc := range chain {
		for _, di := range e.deniesAt[sc] {
			d := &e.denies[di]
			if d.childless && (i != 0 || !exact) {
				continue
			}
			covers := false
			for b := range d.blocks {
				covers = covers || d.blocks[b].permits(a, dataAction)
			}
			if !covers {
				continue
			}
			if d.everyone {
				if everyoneDenied {
					excepted = intersectSorted(excepted, d.excludes)
				} else {
					excepted = slices.Clone(d.excludes)
				}
				everyoneDenied = true
				continue
			}
			for _, p := range d.principals {
				if _, ex := slices.BinarySearch(d.excludes, p); !ex {
					denied = append(denied, p)
				}
			}
		}
	}
	slices.Sort(denied)

	// Per role: 0 unknown, 1 grants, 2 does not.
	memo := make([]uint8, len(e.roles))
	seen := make(map[int32]struct{})
	for _, sc := range chain {
		for _, ai := range e.byScope[sc] {
			as := &e.assignments[ai]
			if as.condUnevaluable || !e.inForceAt(as, at) {
				continue
			}
			if _, dup := seen[as.principal]; dup {
				continue
			}
			m := memo[as.role]
			if m == 0 {
				m = 2
				for _, blk := range e.roles[as.role].blocks {
					if !blk.condUnevaluable && blk.permits(a, dataAction) {
						m = 1
						break
					}
				}
				memo[as.role] = m
			}
			if m != 1 {
				continue
			}
			if _, d := slices.BinarySearch(denied, as.principal); d {
				continue
			}
			if everyoneDenied {
				if _, ok := slices.BinarySearch(excepted, as.principal); !ok {
					continue
				}
			}
			seen[as.principal] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, e.principalNames[p])
	}
	slices.Sort(out)
	return out
}

func intersectSorted(a, b []int32) []int32 {
	var out []int32
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); ok {
			out = append(out, x)
		}
	}
	return out
}
