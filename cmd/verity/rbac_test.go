package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRBACCheckOnAzExports runs the offline RBAC commands on files shaped
// exactly like `az role assignment list` and `az role definition list`
// output.
func TestRBACCheckOnAzExports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const (
		sub   = "/subscriptions/4f8d2a1c-0000-4000-8000-000000000001"
		rg    = sub + "/resourceGroups/web"
		vm    = rg + "/providers/Microsoft.Compute/virtualMachines/vm1"
		alice = "a0000000-0000-4000-8000-00000000000a"
		bob   = "b0000000-0000-4000-8000-00000000000b"
		ops   = "c0000000-0000-4000-8000-00000000000c"
	)
	assignments := write("assignments.json", `[
	  {"canDelegate": null, "condition": null, "conditionVersion": null, "description": null,
	   "id": "`+sub+`/providers/Microsoft.Authorization/roleAssignments/11111111-0000-4000-8000-000000000001",
	   "name": "11111111-0000-4000-8000-000000000001", "principalId": "`+ops+`", "principalName": "Operators",
	   "principalType": "Group", "roleDefinitionId": "`+sub+`/providers/Microsoft.Authorization/roleDefinitions/9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
	   "roleDefinitionName": "Virtual Machine Contributor", "scope": "`+rg+`", "type": "Microsoft.Authorization/roleAssignments"},
	  {"id": "`+sub+`/providers/Microsoft.Authorization/roleAssignments/11111111-0000-4000-8000-000000000002",
	   "name": "11111111-0000-4000-8000-000000000002", "principalId": "`+bob+`", "principalName": "bob@contoso.com",
	   "principalType": "User", "roleDefinitionId": "`+sub+`/providers/Microsoft.Authorization/roleDefinitions/22222222-0000-4000-8000-000000000001",
	   "roleDefinitionName": "VM Restarter", "scope": "`+sub+`", "type": "Microsoft.Authorization/roleAssignments"}]`)
	definitions := write("definitions.json", `[{"assignableScopes": ["`+sub+`"], "description": "Restart virtual machines",
	  "id": "`+sub+`/providers/Microsoft.Authorization/roleDefinitions/22222222-0000-4000-8000-000000000001",
	  "name": "22222222-0000-4000-8000-000000000001", "permissions": [{"actions": ["Microsoft.Compute/virtualMachines/restart/action",
	  "Microsoft.Compute/virtualMachines/read"], "notActions": [], "dataActions": [], "notDataActions": []}],
	  "roleName": "VM Restarter", "roleType": "CustomRole", "type": "Microsoft.Authorization/roleDefinitions"}]`)
	directory := write("directory.json", `{"users": [{"id": "`+alice+`", "memberOf": ["`+ops+`"]}, {"id": "`+bob+`"}], "groups": []}`)
	check := func(principal, action string) (bool, string, []string) {
		t.Helper()
		stdout, stderr, err := run(t, baseEnv(), "", "rbac", "check", "--definitions", definitions, "--assignments", assignments,
			"--directory", directory, "--principal", principal, "--action", action, "--scope", vm)
		if err != nil {
			t.Fatalf("check: %v\n%s", err, stderr)
		}
		var out struct {
			Allowed   bool
			Reason    string
			GrantedBy []struct{ RoleDefinitionName string }
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		var roles []string
		for _, g := range out.GrantedBy {
			roles = append(roles, g.RoleDefinitionName)
		}
		return out.Allowed, out.Reason, roles
	}
	// Alice holds Virtual Machine Contributor through the Operators group, at the resource group.
	if ok, _, roles := check(alice, "Microsoft.Compute/virtualMachines/start/action"); !ok || strings.Join(roles, ",") != "Virtual Machine Contributor" {
		t.Fatalf("alice start: %v %v", ok, roles)
	}
	// Virtual Machine Contributor cannot read blobs (data plane).
	if ok, reason, _ := check(alice, "Microsoft.Authorization/roleAssignments/write"); ok || reason == "" {
		t.Fatalf("alice role assignment write: %v %q", ok, reason)
	}
	// Bob's custom role at the subscription reaches the VM.
	if ok, _, roles := check(bob, "Microsoft.Compute/virtualMachines/restart/action"); !ok || strings.Join(roles, ",") != "VM Restarter" {
		t.Fatalf("bob restart: %v %v", ok, roles)
	}
	if ok, _, _ := check(bob, "Microsoft.Compute/virtualMachines/delete"); ok {
		t.Fatal("bob may delete")
	}
	stdout, _, err := run(t, baseEnv(), "", "rbac", "who-can", "--definitions", definitions, "--assignments", assignments,
		"--action", "Microsoft.Compute/virtualMachines/restart/action", "--scope", vm)
	if err != nil || !strings.Contains(stdout, ops) || !strings.Contains(stdout, bob) {
		t.Fatalf("who-can: %v\n%s", err, stdout)
	}
	stdout, _, err = run(t, baseEnv(), "", "rbac", "permissions", "--definitions", definitions, "--assignments", assignments,
		"--directory", directory, "--principal", alice, "--scope", vm)
	if err != nil || !strings.Contains(stdout, "Virtual Machine Contributor") {
		t.Fatalf("permissions: %v\n%s", err, stdout)
	}
	// Bad input: exit status 2, with where.
	bad := write("bad.json", `[{"principalId": "`+bob+`", "scope": "`+sub+`"}]`)
	_, stderr, err := run(t, baseEnv(), "", "rbac", "check", "--assignments", bad, "--principal", bob, "--action", "x/read", "--scope", sub)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr, "[0].roleDefinitionId") {
		t.Fatalf("bad assignments: %v\n%s", err, stderr)
	}
}
