// Package cedarbench compares Verity's RBAC engine with the same Azure role
// model written in Cedar and evaluated by cedar-go, on one generated tenant:
// 100k principals (users and nested groups), a scope tree six levels deep,
// 1M role assignments over the 928 built-in roles plus custom roles, a few
// deny assignments, and a sample of check requests.
//
// It is its own Go module so that cedar-go never becomes a dependency of
// Verity itself.
package cedarbench

import (
	"strings"
)

// Permission is one permission block of a role or deny assignment, with
// the four action lists of `az role definition list`.
type Permission struct {
	Actions        []string
	NotActions     []string
	DataActions    []string
	NotDataActions []string
	Condition      string
}

// Role is a role definition: a built-in one (from Verity's embedded copy)
// or a generated custom role.
type Role struct {
	Name        string // GUID
	RoleName    string
	Custom      bool
	Permissions []Permission
}

// Assignment is one role assignment in the flat `az role assignment list`
// shape.
type Assignment struct {
	PrincipalID string
	Principal   int32 // index into Dataset.Principals
	Role        int32 // index into Dataset.Roles
	Scope       int32 // index into Dataset.Scopes
}

// Deny is one deny assignment.
type Deny struct {
	ID                      string
	Name                    string
	Permission              Permission
	Scope                   int32
	DoNotApplyToChildScopes bool
	Everyone                bool    // Principals = the zero GUID (SystemDefined): all principals
	Principals              []int32 // when not Everyone
	Exclude                 []int32
}

// Principal is a user or a group. Parents are the groups it is a direct
// member of.
type Principal struct {
	ID      string
	Group   bool
	Parents []int32
}

// Scope is one node of the scope tree. Parent is -1 for the root "/".
type Scope struct {
	Path   string
	Parent int32
	Depth  int    // "/" is 1, a subscription 2, ..., the deepest child resource 6
	Kind   string // resource kind for request actions: "", "storage", "vault", ...
}

// Request is one check: may Principal perform Action (a data action when
// Data) at Scope?
type Request struct {
	Principal int32
	Action    string
	Data      bool
	Scope     int32
}

// Dataset is a generated tenant and request sample.
type Dataset struct {
	Config      Config
	Principals  []Principal
	Scopes      []Scope
	Roles       []Role
	Assignments []Assignment
	Denies      []Deny
	Requests    []Request
	// Actions and DataActions are the concrete operation names requests
	// draw from (lower case), the universe the Cedar action groups are
	// expanded against.
	Actions     []string
	DataActions []string

	scopeIndex map[string]int32
}

// match reports whether the Azure action pattern p (with '*' meaning any
// run of characters, '/' included) matches the action a, ignoring case.
func match(p, a string) bool {
	// Iterative glob with single-star backtracking; both strings are
	// compared case-insensitively byte by byte (operation names are ASCII).
	pi, ai := 0, 0
	star, mark := -1, 0
	for ai < len(a) {
		if pi < len(p) && p[pi] == '*' {
			star, mark = pi, ai
			pi++
			continue
		}
		if pi < len(p) && lower(p[pi]) == lower(a[ai]) {
			pi++
			ai++
			continue
		}
		if star >= 0 {
			pi = star + 1
			mark++
			ai = mark
			continue
		}
		return false
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func matchAny(ps []string, a string) bool {
	for _, p := range ps {
		if match(p, a) {
			return true
		}
	}
	return false
}

// grants reports whether the permission block grants the action: it is
// in Actions (DataActions) and not in NotActions (NotDataActions). Blocks
// with a condition are handled by the caller (see conditionGrants).
func (p *Permission) grants(action string, data bool) bool {
	if data {
		return matchAny(p.DataActions, action) && !matchAny(p.NotDataActions, action)
	}
	return matchAny(p.Actions, action) && !matchAny(p.NotActions, action)
}

// conditionGrants says how a block's ABAC condition decides for the
// requests the generator makes. Requests carry no attributes and never use
// an action a condition targets with ActionMatches (see Generate), so a
// condition made of clauses "(!(ActionMatches{...})) OR (...)" is true for
// them, and a condition with no ActionMatches (it tests attributes for
// every action) is false: a missing attribute fails a comparison.
func conditionGrants(cond string) bool {
	return cond == "" || strings.Contains(cond, "ActionMatches")
}

// ancestorOrSelf reports whether scope a is s or one of its ancestors.
func (ds *Dataset) ancestorOrSelf(a, s int32) bool {
	for ; s >= 0; s = ds.Scopes[s].Parent {
		if s == a {
			return true
		}
	}
	return false
}
