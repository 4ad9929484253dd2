package apply

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// timeBound is a hand-made (not the manifest's) role assignment of role to
// principal at scope, in force for the next hour: what an activation of
// Privileged Identity Management leaves.
func timeBound(t *testing.T, principal, role, scope string) store.Object {
	t.Helper()
	start := time.Now().UTC().Add(-time.Minute)
	end := start.Add(time.Hour)
	a := rbac.Assignment{ID: directory.NewID(), PrincipalID: principal, RoleDefinitionID: role, Scope: scope,
		Schedule: schedule.Schedule{StartDateTime: &start, EndDateTime: &end, AssignmentType: schedule.Activated}}
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return store.Object{Kind: rbac.Kind, ID: a.ID, Body: b}
}

// TestTimeBoundAssignments: a manifest lists standing assignments, so it
// never claims an activation of the same role (which would make it
// permanent); and an Owner that ends does not keep the tenant
// administrable.
func TestTimeBoundAssignments(t *testing.T) {
	st := storetest.OpenSQLite(t)
	ctx := context.Background()
	apply(t, st, parse(t, exampleTenant), Options{})
	s := snapshot(t, st)
	alice, _ := s.UserByUPN("alice@contoso.com")
	erin, _ := s.UserByUPN("erin@contoso.com")
	activated := timeBound(t, alice.ID, "Reader", "/apps/payroll")
	handMade(t, st, activated, timeBound(t, erin.ID, "Owner", "/apps/payroll"))

	// erin's standing Owner matches the manifest as before; the activation
	// beside it is not the manifest's business.
	if p, _ := apply(t, st, parse(t, exampleTenant), Options{Prune: true}); !p.Empty() {
		t.Errorf("apply with activations beside standing assignments:\n%s", p)
	}

	// A standing assignment of the role alice holds only through an
	// activation is created; the activation is left as it is.
	m := parse(t, exampleTenant)
	m.RoleAssignments = append(m.RoleAssignments, RoleAssignment{User: "alice@contoso.com", Role: "Reader", Scope: "/apps/payroll"})
	m.origins = nil
	p, _ := apply(t, st, m, Options{Prune: true})
	if want := "+ create roleAssignment Reader for user alice@contoso.com at /apps/payroll\n\nPlan: 1 to create, 0 to update, 0 to delete."; p.String() != want {
		t.Errorf("plan:\n%s\nwant:\n%s", p, want)
	}
	o, err := st.Get(ctx, rbac.Kind, activated.ID)
	if err != nil || string(o.Body) != string(activated.Body) {
		t.Errorf("the activation changed: %v\n%s\nwas\n%s", err, o.Body, activated.Body)
	}

	// With only a time-bound Owner at "/" left, pruning the standing one
	// is refused: the tenant would lose its last Owner within the hour.
	handMade(t, st, timeBound(t, alice.ID, "Owner", "/"))
	m = parse(t, exampleTenant)
	m.RoleAssignments = removeWhere(m.RoleAssignments, func(a RoleAssignment) bool { return a.Role == "Owner" && a.Scope == "/" })
	want := "the plan would leave no enabled user with the Owner role at scope /, directly or through a group, " +
		"locking everyone out of the admin API; keep one in the manifest"
	if _, err := Diff(ctx, st, m, Options{Prune: true}); err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
