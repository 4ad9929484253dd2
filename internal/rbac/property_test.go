package rbac

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// propWorld is a small random tenant for property tests.
type propWorld struct {
	roles    []RoleDefinition
	assigns  []Assignment
	requests []Request
}

var (
	propActions = []string{"Microsoft.Compute/virtualMachines/read", "Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/delete",
		"Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Authorization/roleAssignments/write"}
	propPatterns = []string{"*", "*/read", "Microsoft.Compute/*", "Microsoft.Storage/*/read", "Microsoft.Compute/virtualMachines/write",
		"microsoft.authorization/*/WRITE", "*/action", "Microsoft.*/delete"}
	propScopes = []string{"/", "/subscriptions/s1", "/subscriptions/s1/resourceGroups/rg1", "/subscriptions/s1/resourceGroups/rg2", "/subscriptions/s2"}
	propUsers  = []string{"u1", "u2", "g1", "g2"}
)

func randomWorld(rng *rand.Rand) propWorld {
	pick := func(l []string, n int) []string {
		var out []string
		for range n {
			out = append(out, l[rng.IntN(len(l))])
		}
		return out
	}
	var w propWorld
	for i := range 4 {
		w.roles = append(w.roles, RoleDefinition{Name: fmt.Sprintf("00000000-0000-0000-0000-00000000000%d", i+1), RoleName: fmt.Sprintf("R%d", i),
			AssignableScopes: []string{"/"},
			Permissions:      []Permission{{Actions: pick(propPatterns, 1+rng.IntN(2)), NotActions: pick(propPatterns, rng.IntN(2)), DataActions: pick(propPatterns, rng.IntN(2))}}})
	}
	for i := range 6 {
		w.assigns = append(w.assigns, Assignment{ID: fmt.Sprintf("a%d", i), PrincipalID: propUsers[rng.IntN(len(propUsers))],
			RoleDefinitionID: fmt.Sprintf("R%d", rng.IntN(4)), Scope: propScopes[rng.IntN(len(propScopes))]})
	}
	for _, u := range []string{"u1", "u2"} {
		for _, a := range propActions {
			for _, s := range propScopes {
				w.requests = append(w.requests, Request{PrincipalID: u, Groups: []string{"g" + u[1:]}, Action: a, Scope: s + "/x", DataAction: rng.IntN(4) == 0})
			}
		}
	}
	return w
}

func allowedSet(t *testing.T, roles []RoleDefinition, as []Assignment, denies []DenyAssignment, reqs []Request) []bool {
	t.Helper()
	e, err := Compile(roles, as, denies, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(reqs))
	var res Decision
	for i := range reqs {
		e.Check(&reqs[i], &res)
		out[i] = res.Allowed
		if res.Allowed != (res.Reason == ReasonGranted) || res.Allowed != (len(res.GrantedBy()) > 0) {
			t.Fatalf("inconsistent decision %+v", res)
		}
	}
	return out
}

// moreThan reports a request that b allows and a does not.
func moreThan(a, b []bool) int {
	for i := range a {
		if b[i] && !a[i] {
			return i
		}
	}
	return -1
}

func TestPropertyRemovingAssignmentNeverGrantsMore(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	for range 30 {
		w := randomWorld(rng)
		base := allowedSet(t, w.roles, w.assigns, nil, w.requests)
		for i := range w.assigns {
			fewer := slices.Delete(slices.Clone(w.assigns), i, i+1)
			if j := moreThan(base, allowedSet(t, w.roles, fewer, nil, w.requests)); j >= 0 {
				t.Fatalf("removing %+v grants %+v", w.assigns[i], w.requests[j])
			}
		}
	}
}

func TestPropertyAddingNotActionsNeverGrantsMore(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(8, 8))
	for range 30 {
		w := randomWorld(rng)
		base := allowedSet(t, w.roles, w.assigns, nil, w.requests)
		roles := slices.Clone(w.roles)
		r := rng.IntN(len(roles))
		p := roles[r].Permissions[0]
		p.NotActions = append(slices.Clone(p.NotActions), propPatterns[rng.IntN(len(propPatterns))])
		p.NotDataActions = append(slices.Clone(p.NotDataActions), propPatterns[rng.IntN(len(propPatterns))])
		roles[r].Permissions = []Permission{p}
		if j := moreThan(base, allowedSet(t, roles, w.assigns, nil, w.requests)); j >= 0 {
			t.Fatalf("adding NotActions to %s grants %+v", roles[r].RoleName, w.requests[j])
		}
	}
}

func TestPropertyMatchingDenyAlwaysDenies(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 9))
	for range 30 {
		w := randomWorld(rng)
		pattern := propPatterns[rng.IntN(len(propPatterns))]
		scope := propScopes[rng.IntN(len(propScopes))]
		principal := propUsers[rng.IntN(len(propUsers))]
		deny := DenyAssignment{ID: "d", DenyAssignmentName: "d", Scope: scope,
			Permissions: []Permission{{Actions: []string{pattern}, DataActions: []string{pattern}}},
			Principals:  []DenyPrincipal{{ID: principal}}}
		got := allowedSet(t, w.roles, w.assigns, []DenyAssignment{deny}, w.requests)
		for i, r := range w.requests {
			covered := (r.PrincipalID == principal || slices.Contains(r.Groups, principal)) &&
				ScopeContains(scope, r.Scope) && ActionMatches(pattern, r.Action)
			if covered && got[i] {
				t.Fatalf("deny %s at %s for %s does not deny %+v", pattern, scope, principal, r)
			}
		}
		base := allowedSet(t, w.roles, w.assigns, nil, w.requests)
		if j := moreThan(base, got); j >= 0 {
			t.Fatalf("a deny grants %+v", w.requests[j])
		}
	}
}
