package pim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// TestFindings: standing privileged assignments (RBAC and directory)
// are found, PIM's time-bound ones are not; four Owners at / and five
// Global Administrators are too many; an eligibility never activated for
// 90 days is reported, one that was activated is not.
func TestFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	owner, _ := rbac.LookupRole("Owner")
	reader, _ := rbac.LookupRole("Reader")
	var objs []store.Object
	put := func(a rbac.Assignment) {
		b, _ := json.Marshal(a)
		objs = append(objs, store.Object{Kind: rbac.Kind, ID: a.ID, Body: b})
	}
	for i := range 4 {
		put(rbac.Assignment{ID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), PrincipalID: fmt.Sprint("owner", i), RoleDefinitionID: owner.ID, Scope: "/"})
	}
	put(rbac.Assignment{ID: "00000000-0000-4000-8000-000000000010", PrincipalID: "reader", RoleDefinitionID: reader.ID, Scope: "/"})
	end := c.Now().Add(time.Hour)
	start := c.Now()
	put(rbac.Assignment{ID: "00000000-0000-4000-8000-000000000011", PrincipalID: "jit", RoleDefinitionID: owner.ID, Scope: "/apps/x",
		Schedule: schedule.Schedule{StartDateTime: &start, EndDateTime: &end, AssignmentType: "Activated"}})
	for i := range 5 {
		a := &directory.RoleAssignment{ID: fmt.Sprintf("ga-%d", i), PrincipalID: fmt.Sprint("admin", i), RoleDefinitionID: "62e90394-69f5-4237-9190-012177145e10", DirectoryScopeID: "/"}
		a.Normalize()
		o, err := directory.RoleAssignments.Object(a)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Create(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eligible(t, s, "idle", 365)
	eligible(t, s, "alice", 365)
	c.Add(100 * 24 * time.Hour)
	if _, err := activate(s, alice, time.Hour, "used"); err != nil {
		t.Fatal(err)
	}
	fs, err := pim.Findings(ctx, st, c.Now(), pim.DefaultFindingsOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range fs {
		got[f.Kind+" "+f.RoleKind]++
		if f.PrincipalID == "jit" || f.PrincipalID == "reader" || f.PrincipalID == "alice" {
			t.Errorf("not a finding: %+v", f)
		}
	}
	want := map[string]int{"standingPrivilegedAssignment rbac": 4, "standingPrivilegedAssignment directory": 5, "tooManyOwners ": 1,
		"tooManyGlobalAdministrators ": 1, "eligibleNeverActivated rbac": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	if fs[0].Severity != "high" || fs[len(fs)-1].Kind != "eligibleNeverActivated" {
		t.Errorf("order: %+v ... %+v", fs[0], fs[len(fs)-1])
	}
}
