package apply

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// TestCustomRolesAndDenyAssignments: a manifest defines a custom role,
// assigns it by name, and adds a deny assignment; applying it twice
// changes nothing the second time, and the export applies unchanged.
func TestCustomRolesAndDenyAssignments(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	m, err := Parse("rbac.yaml", []byte(`
users:
  - userPrincipalName: alice@contoso.com
    displayName: Alice
    id: a0000000-0000-4000-8000-00000000000a
roleDefinitions:
  - roleName: Payroll operator
    description: Runs payroll
    assignableScopes: [/apps/payroll]
    permissions:
      - actions: [Verity.Payroll/runs/*]
        notActions: []
        dataActions: []
        notDataActions: []
roleAssignments:
  - user: alice@contoso.com
    role: Payroll operator
    scope: /apps/payroll
denyAssignments:
  - denyAssignmentName: No payroll deletes
    scope: /apps/payroll
    permissions:
      - actions: [Verity.Payroll/runs/delete]
    principals:
      - id: a0000000-0000-4000-8000-00000000000a
        type: User
`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := apply(t, st, m, Options{})
	if c, _, _ := p.Counts(); c != 4 || !strings.Contains(p.String(), `+ create roleDefinition "Payroll operator"`) {
		t.Fatalf("first apply:\n%s", p)
	}
	if p, _ = apply(t, st, m, Options{}); !p.Empty() {
		t.Fatalf("second apply:\n%s", p)
	}
	ctx := context.Background()
	defs, _ := st.List(ctx, rbac.DefinitionKind, storeAll)
	denies, _ := st.List(ctx, rbac.DenyKind, storeAll)
	if len(defs) != 1 || len(denies) != 1 {
		t.Fatalf("stored %d roles, %d denies", len(defs), len(denies))
	}
	// The engine sees the role: alice may run payroll but not delete runs.
	exported, err := Export(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(exported.RoleDefinitions) != 1 || len(exported.DenyAssignments) != 1 {
		t.Fatalf("export: %d roles, %d denies", len(exported.RoleDefinitions), len(exported.DenyAssignments))
	}
	// The assignment names its custom role as the manifest did, so the
	// export applies unchanged.
	if len(exported.RoleAssignments) != 1 || exported.RoleAssignments[0].Role != "Payroll operator" {
		t.Fatalf("exported assignments %+v", exported.RoleAssignments)
	}
	if p, _ := apply(t, st, exported, Options{}); !p.Empty() {
		t.Fatalf("applying the export:\n%s", p)
	}
	e, err := rbac.Compile(exported.RoleDefinitions, mustAssignments(t, st), exported.DenyAssignments, rbac.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d rbac.Decision
	e.Check(&rbac.Request{PrincipalID: "a0000000-0000-4000-8000-00000000000a", Groups: []string{}, Action: "Verity.Payroll/runs/start", Scope: "/apps/payroll/2026"}, &d)
	if !d.Allowed {
		t.Fatalf("custom role does not grant: %v", d.Reason)
	}
	e.Check(&rbac.Request{PrincipalID: "a0000000-0000-4000-8000-00000000000a", Groups: []string{}, Action: "Verity.Payroll/runs/delete", Scope: "/apps/payroll/2026"}, &d)
	if d.Allowed || d.DeniedBy == nil {
		t.Fatalf("deny assignment does not deny: %v", d.Reason)
	}
	// A role assignment naming an unknown role fails with its path.
	bad, _ := Parse("bad.yaml", []byte("roleAssignments:\n  - user: alice@contoso.com\n    role: Payroll operater\n    scope: /apps/payroll\n"))
	if _, _, err := Apply(ctx, st, bad, Options{}); err == nil || !strings.Contains(err.Error(), "roleAssignments[0].role") {
		t.Fatalf("unknown role: %v", err)
	}
}

var storeAll = store.ListOptions{}

// mustAssignments decodes the stored role assignments.
func mustAssignments(t *testing.T, st store.Reader) []rbac.Assignment {
	t.Helper()
	objs, err := st.List(context.Background(), rbac.Kind, storeAll)
	if err != nil {
		t.Fatal(err)
	}
	var out []rbac.Assignment
	for _, o := range objs {
		var a rbac.Assignment
		if err := json.Unmarshal(o.Body, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}
