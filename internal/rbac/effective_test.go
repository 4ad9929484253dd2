package rbac

import (
	"slices"
	"testing"
	"time"
)

func TestWhoCanAndPermissions(t *testing.T) {
	t.Parallel()
	const sub = "/subscriptions/s1"
	e, err := Compile(nil, []Assignment{
		{ID: "a1", PrincipalID: "G1", RoleDefinitionID: "Contributor", Scope: sub},
		{ID: "a2", PrincipalID: "u2", RoleDefinitionID: "Reader", Scope: sub + "/resourceGroups/rg"},
		{ID: "a3", PrincipalID: "u3", RoleDefinitionID: "Owner", Scope: "/subscriptions/s2"},
		{ID: "a4", PrincipalID: "u4", RoleDefinitionID: "Owner", Scope: sub},
	}, []DenyAssignment{{ID: "d1", DenyAssignmentName: "no deletes for u4", Scope: sub,
		Permissions: []Permission{{Actions: []string{"*/delete"}}}, Principals: []DenyPrincipal{{ID: "u4", Type: "User"}}}},
		Options{Principals: membership(map[string][]string{"u1": {"g1"}})})
	if err != nil {
		t.Fatal(err)
	}
	rg := sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
	cases := []struct {
		action string
		data   bool
		want   []string
	}{
		{"Microsoft.Compute/virtualMachines/read", false, []string{"g1", "u2", "u4"}},
		{"Microsoft.Compute/virtualMachines/delete", false, []string{"g1"}},
		{"Microsoft.Authorization/roleAssignments/write", false, []string{"u4"}},
		{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", true, []string{}},
	}
	for _, c := range cases {
		if got := e.WhoCan(c.action, rg, c.data, time.Time{}); !slices.Equal(got, c.want) {
			t.Errorf("WhoCan(%s) = %v, want %v", c.action, got, c.want)
		}
	}
	p := e.Permissions("u1", rg, time.Time{})
	if len(p) != 1 || p[0].RoleName != "Contributor" || p[0].PrincipalID != "g1" || len(p[0].Denies) != 0 {
		t.Errorf("Permissions(u1) = %+v", p)
	}
	p = e.Permissions("u4", rg, time.Time{})
	if len(p) != 1 || len(p[0].Denies) != 1 || p[0].Denies[0].ID != "d1" {
		t.Errorf("Permissions(u4) = %+v", p)
	}
	if p := e.Permissions("u3", rg, time.Time{}); len(p) != 0 {
		t.Errorf("Permissions(u3) = %+v", p)
	}
}
