package rbac

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"testing"
)

// listed is a PrincipalLister over a fixed membership map.
type listed struct {
	ids    []string
	groups map[string][]string
}

func (l listed) TransitiveMemberOf(id string) []string { return l.groups[id] }
func (l listed) PrincipalIDs() iter.Seq[string]        { return slices.Values(l.ids) }

// TestSubjectsAgree: an engine that resolved its listed principals at
// compile time answers exactly as one asked with the groups on every
// request, allowed or not, with the same reason and deny, for random
// tenants with nested groups, deny assignments, unlisted principals and
// principals whose ids are not GUIDs.
func TestSubjectsAgree(t *testing.T) {
	t.Parallel()
	scopes := []string{"/", "/subscriptions/s1", "/subscriptions/s1/resourceGroups/rg1", "/subscriptions/s1/resourceGroups/rg1/providers/p/t/x",
		"/subscriptions/s1/resourceGroups/rg2", "/subscriptions/s2"}
	actions := []string{"Microsoft.Compute/virtualMachines/read", "Microsoft.Compute/virtualMachines/delete", "Microsoft.Authorization/roleAssignments/write",
		"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"}
	roles := []string{"Reader", "Contributor", "Owner", "Storage Blob Data Reader", "Virtual Machine Contributor"}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		guid := func(kind, i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, i) }
		var principals, groups []string
		for i := range 6 {
			principals = append(principals, guid(1, i))
		}
		principals = append(principals, "not-a-guid-user")
		for i := range 5 {
			groups = append(groups, guid(2, i))
		}
		l := listed{ids: principals[:5], groups: map[string][]string{}} // principals[5] and the non-GUID one are unlisted
		for _, p := range principals {
			var gs []string
			for _, g := range groups {
				if rng.IntN(3) == 0 {
					gs = append(gs, g)
				}
			}
			l.groups[p] = gs
		}
		everyone := append(slices.Clone(principals), groups...)
		var as []Assignment
		// Some spans long enough to be binary-searched.
		for i := range 80 {
			as = append(as, Assignment{ID: fmt.Sprintf("a%d", i), PrincipalID: everyone[rng.IntN(len(everyone))],
				RoleDefinitionID: roles[rng.IntN(len(roles))], Scope: scopes[rng.IntN(len(scopes))]})
		}
		denies := []DenyAssignment{{ID: "d1", Scope: scopes[1+rng.IntN(len(scopes)-1)], Permissions: []Permission{{Actions: []string{"*/delete"}}},
			Principals: []DenyPrincipal{{ID: groups[rng.IntN(len(groups))]}}, ExcludePrincipals: []DenyPrincipal{{ID: principals[rng.IntN(len(principals))]}}}}
		withSubjects, err := Compile(nil, as, denies, Options{Principals: l})
		if err != nil {
			t.Fatal(err)
		}
		if len(withSubjects.subjects.slots) == 0 {
			t.Fatal("no subjects were built from a PrincipalLister")
		}
		var got, want Decision
		for _, p := range principals {
			for _, a := range actions {
				for _, s := range scopes {
					data := a == actions[3]
					r := Request{PrincipalID: p, Action: a, DataAction: data, Scope: s + "/leaf", AllGrants: true}
					withSubjects.Check(&r, &got)
					r.Groups = l.groups[p]
					if r.Groups == nil {
						r.Groups = []string{}
					}
					withSubjects.Check(&r, &want)
					if got.Allowed != want.Allowed || got.Reason != want.Reason || got.DeniedBy != want.DeniedBy ||
						!sameGrants(got.GrantedBy(), want.GrantedBy()) {
						t.Fatalf("seed %d, %s %s at %s: subject %v %v %v, groups given %v %v %v", seed, p, a, s,
							got.Allowed, got.Reason, got.GrantedBy(), want.Allowed, want.Reason, want.GrantedBy())
					}
				}
			}
		}
	}
}

func sameGrants(a, b []Grant) bool {
	key := func(g Grant) string { return g.AssignmentID + "#" + fmt.Sprint(g.Block) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// TestFirstGrantOnly: without AllGrants, Check stops at one grant; with
// it, it lists each granting assignment.
func TestFirstGrantOnly(t *testing.T) {
	t.Parallel()
	e, err := Compile(nil, []Assignment{
		{ID: "a1", PrincipalID: "u", RoleDefinitionID: "Reader", Scope: "/subscriptions/s"},
		{ID: "a2", PrincipalID: "g", RoleDefinitionID: "Contributor", Scope: "/"},
		{ID: "a3", PrincipalID: "u", RoleDefinitionID: "Owner", Scope: "/subscriptions/s/resourceGroups/rg"},
	}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := Request{PrincipalID: "u", Groups: []string{"g"}, Action: "Microsoft.Compute/virtualMachines/read", Scope: "/subscriptions/s/resourceGroups/rg/x"}
	var d Decision
	e.Check(&r, &d)
	if !d.Allowed || len(d.GrantedBy()) != 1 {
		t.Fatalf("first grant: %v %v", d.Allowed, d.GrantedBy())
	}
	r.AllGrants = true
	e.Check(&r, &d)
	var ids []string
	for _, g := range d.GrantedBy() {
		ids = append(ids, g.AssignmentID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a1", "a2", "a3"}) {
		t.Fatalf("all grants: %v", ids)
	}
	r.Action = "Microsoft.Authorization/roleAssignments/write"
	r.Scope = "/subscriptions/s/x"
	e.Check(&r, &d)
	if d.Allowed || d.GrantedBy() != nil {
		t.Fatalf("refused request lists grants: %v", d.GrantedBy())
	}
}

// TestActionCache: the cached answer for an action is the matchers'
// answer, on both planes; once the cache is full, new actions are matched
// directly and still answered right; concurrent first uses agree.
func TestActionCache(t *testing.T) {
	t.Parallel()
	e, err := Compile(nil, []Assignment{
		{ID: "a1", PrincipalID: "u", RoleDefinitionID: "Reader", Scope: "/"},
		{ID: "a2", PrincipalID: "u", RoleDefinitionID: "Storage Blob Data Reader", Scope: "/subscriptions/s"},
		{ID: "a3", PrincipalID: "u", RoleDefinitionID: "Virtual Machine Contributor", Scope: "/subscriptions/s"},
	}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		action string
		data   bool
		want   bool
	}{
		{"Microsoft.Compute/virtualMachines/read", false, true},
		{"Microsoft.Compute/virtualMachines/start/action", false, true},
		{"Microsoft.Compute/virtualMachines/delete", false, true},
		{"Microsoft.Authorization/roleAssignments/write", false, false},
		{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", true, true},
		{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", false, true}, // Reader: */read on the control plane
		{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write", true, false},
	}
	check := func(t *testing.T) {
		var d Decision
		for _, c := range cases {
			r := Request{PrincipalID: "u", Groups: []string{}, Action: c.action, DataAction: c.data, Scope: "/subscriptions/s/x"}
			e.Check(&r, &d)
			if d.Allowed != c.want {
				t.Errorf("%s (data %v): allowed %v, want %v (%v)", c.action, c.data, d.Allowed, c.want, d.Reason)
			}
		}
	}
	// Concurrent first uses.
	done := make(chan struct{})
	for range 4 {
		go func() { defer func() { done <- struct{}{} }(); check(t) }()
	}
	for range 4 {
		<-done
	}
	check(t) // cached
	if n := lenOf(e.actions.sets[0].Load()); n != 5 {
		t.Errorf("control-plane cache holds %d actions, want 5", n)
	}
	// Fill the cache with other actions, then ask new ones.
	var d Decision
	for i := range maxCachedActions + 10 {
		r := Request{PrincipalID: "u", Groups: []string{}, Action: fmt.Sprintf("Contoso.Widgets/w%d/read", i), Scope: "/x"}
		e.Check(&r, &d)
		if !d.Allowed {
			t.Fatalf("%s: Reader must grant */read", r.Action)
		}
	}
	if n := lenOf(e.actions.sets[0].Load()); n != maxCachedActions {
		t.Errorf("cache grew to %d, bound %d", n, maxCachedActions)
	}
	r := Request{PrincipalID: "u", Groups: []string{}, Action: "Microsoft.Compute/virtualMachines/restart/action", Scope: "/subscriptions/s/vm"}
	e.Check(&r, &d)
	if !d.Allowed || d.GrantedBy()[0].AssignmentID != "a3" {
		t.Errorf("uncached action: %v %v", d.Allowed, d.GrantedBy())
	}
	r.Action = "Microsoft.Network/virtualNetworks/write"
	e.Check(&r, &d)
	if d.Allowed {
		t.Error("uncached action granted without a role that permits it")
	}
}

// TestLongSpans: a principal with hundreds of assignments (found through
// the span's fences rather than read in full) gets every grant on the
// request's chain and no other, at every depth, directly and as a group.
func TestLongSpans(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	var pool []string
	for s := range 4 {
		sub := fmt.Sprintf("/subscriptions/s%d", s)
		pool = append(pool, sub)
		for g := range 5 {
			rg := fmt.Sprintf("%s/resourceGroups/rg%d", sub, g)
			pool = append(pool, rg)
			for v := range 4 {
				pool = append(pool, fmt.Sprintf("%s/providers/Microsoft.Compute/virtualMachines/vm%d", rg, v))
			}
		}
	}
	const user, group = "11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002"
	var as []Assignment
	for i := range 400 {
		who := user
		if i%2 == 1 {
			who = group
		}
		as = append(as, Assignment{ID: fmt.Sprintf("a%03d", i), PrincipalID: who, RoleDefinitionID: "Reader", Scope: pool[rng.IntN(len(pool))]})
	}
	l := listed{ids: []string{user}, groups: map[string][]string{user: {group}}}
	for _, opts := range []Options{{}, {Principals: l}} {
		e, err := Compile(nil, as, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		var d Decision
		for _, s := range append(pool, "/subscriptions/s9") {
			r := Request{PrincipalID: user, Action: "Microsoft.Compute/virtualMachines/read", Scope: s + "/x", AllGrants: true}
			if opts.Principals == nil {
				r.Groups = []string{group}
			}
			e.Check(&r, &d)
			var got, want []string
			for _, g := range d.GrantedBy() {
				got = append(got, g.AssignmentID)
			}
			for _, a := range as {
				if ScopeContains(a.Scope, r.Scope) {
					want = append(want, a.ID)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("at %s (lister %v): granted by %v, want %v", r.Scope, opts.Principals != nil, got, want)
			}
			if d.Allowed != (len(want) > 0) {
				t.Fatalf("at %s: allowed %v with %d grants", r.Scope, d.Allowed, len(want))
			}
		}
	}
}
