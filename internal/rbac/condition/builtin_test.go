package condition

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

type builtinCondition struct {
	RoleName         string `json:"roleName"`
	Name             string `json:"name"`
	PermissionIndex  int    `json:"permissionIndex"`
	Condition        string `json:"condition"`
	ConditionVersion string `json:"conditionVersion"`
}

func loadBuiltins(t *testing.T) []builtinCondition {
	t.Helper()
	raw, err := os.ReadFile("testdata/builtin-role-conditions.json")
	if err != nil {
		t.Fatal(err)
	}
	var bs []builtinCondition
	if err := json.Unmarshal(raw, &bs); err != nil {
		t.Fatal(err)
	}
	return bs
}

func builtin(t *testing.T, role string) *Condition {
	t.Helper()
	for _, b := range loadBuiltins(t) {
		if b.RoleName == role {
			return mustParse(t, b.Condition)
		}
	}
	t.Fatalf("no built-in condition for %q", role)
	return nil
}

// TestBuiltinRoleConditionsParse parses every condition that a built-in role
// definition carries and checks the round trip through the canonical form.
func TestBuiltinRoleConditionsParse(t *testing.T) {
	t.Parallel()
	bs := loadBuiltins(t)
	if len(bs) != 31 {
		t.Fatalf("%d built-in role conditions, want 31", len(bs))
	}
	for _, b := range bs {
		c, err := Parse(b.Condition)
		if err != nil {
			t.Errorf("%s (%s) permissions[%d]: %v", b.RoleName, b.Name, b.PermissionIndex, err)
			continue
		}
		s := c.String()
		c2, err := Parse(s)
		if err != nil {
			t.Errorf("%s: canonical form %q: %v", b.RoleName, s, err)
			continue
		}
		if s2 := c2.String(); s2 != s {
			t.Errorf("%s: canonical form not stable:\n%s\n%s", b.RoleName, s, s2)
		}
	}
}

const (
	roleOwner      = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	roleUAA        = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	roleRBACAdmin  = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
	roleReader     = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	roleKVSecrets  = "4633458b-17de-408a-b874-0445c86b69e6" // Key Vault Secrets User
	roleBlobReader = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"

	actAssign   = "Microsoft.Authorization/roleAssignments/write"
	actUnassign = "Microsoft.Authorization/roleAssignments/delete"
	attrRoleDef = "Microsoft.Authorization/roleAssignments:RoleDefinitionId"
)

type evalCase struct {
	name string
	req  *Request
	want bool
}

func runEval(t *testing.T, c *Condition, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		got, err := c.Evaluate(tc.req)
		if err != nil || got != tc.want {
			t.Errorf("%s: Evaluate = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestBuiltinKeyVaultDataAccessAdministrator(t *testing.T) {
	t.Parallel()
	c := builtin(t, "Key Vault Data Access Administrator")
	runEval(t, c, []evalCase{
		{"assign a Key Vault data role", &Request{Action: actAssign, Request: Attributes{attrRoleDef: Strings(roleKVSecrets)}}, true},
		{"assign upper-case GUID", &Request{Action: actAssign, Request: Attributes{attrRoleDef: Strings("4633458B-17DE-408A-B874-0445C86B69E6")}}, true},
		{"assign Owner", &Request{Action: actAssign, Request: Attributes{attrRoleDef: Strings(roleOwner)}}, false},
		{"assign without the attribute", &Request{Action: actAssign}, false},
		{"delete a Key Vault data role assignment", &Request{Action: actUnassign, Resource: Attributes{attrRoleDef: Strings(roleKVSecrets)}}, true},
		{"delete an Owner assignment", &Request{Action: actUnassign, Resource: Attributes{attrRoleDef: Strings(roleOwner)}}, false},
		{"read is not targeted", &Request{Action: "Microsoft.Authorization/roleAssignments/read"}, true},
		{"action case differs", &Request{Action: "microsoft.authorization/roleassignments/WRITE", Request: Attributes{attrRoleDef: Strings(roleOwner)}}, false},
	})
	// A malformed role ID is an error, never a grant.
	got, err := c.Evaluate(&Request{Action: actAssign, Request: Attributes{attrRoleDef: Strings("not-a-guid")}})
	if got || !errors.Is(err, ErrType) {
		t.Errorf("malformed GUID: Evaluate = %v, %v; want false, ErrType", got, err)
	}
}

// TestRBACAdministratorCannotAssignOwner evaluates the condition the Azure
// portal proposes for Role Based Access Control Administrator ("allow user to
// assign all roles except privileged administrator roles Owner, UAA, RBAC";
// the built-in definition itself carries no condition, the assignment does).
// Constructed from the documented delegation example.
func TestRBACAdministratorCannotAssignOwner(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, f58310d9-a9f6-439a-9e8d-f62e7b41a168}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, f58310d9-a9f6-439a-9e8d-f62e7b41a168}
 )
)`)
	g := func(s string) []Value { v, _ := ParseGUID(s); return []Value{GUIDValue(v)} }
	runEval(t, c, []evalCase{
		{"assign Reader", &Request{Action: actAssign, Request: Attributes{attrRoleDef: g(roleReader)}}, true},
		{"assign Owner", &Request{Action: actAssign, Request: Attributes{attrRoleDef: g(roleOwner)}}, false},
		{"assign User Access Administrator", &Request{Action: actAssign, Request: Attributes{attrRoleDef: Strings(roleUAA)}}, false},
		{"assign RBAC Administrator, GUID without hyphens", &Request{Action: actAssign, Request: Attributes{attrRoleDef: Strings("F58310D9A9F6439A9E8DF62E7B41A168")}}, false},
		{"remove a Reader assignment", &Request{Action: actUnassign, Resource: Attributes{attrRoleDef: g(roleReader)}}, true},
		{"remove an Owner assignment", &Request{Action: actUnassign, Resource: Attributes{attrRoleDef: g(roleOwner)}}, false},
		{"assign with no role ID (fail closed)", &Request{Action: actAssign}, false},
		{"list role assignments", &Request{Action: "Microsoft.Authorization/roleAssignments/read"}, true},
	})
}

// TestBlobPathCondition is the shape of the documented Storage Blob Data
// Reader conditions: reads (other than listing) only below a path prefix.
func TestBlobPathCondition(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'
  AND
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'audit/2026/*'
 )
)`)
	const read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
	blob := func(container, path string) Attributes {
		return Attributes{
			"Microsoft.Storage/storageAccounts/blobServices/containers:name":       Strings(container),
			"Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path": Strings(path),
		}
	}
	runEval(t, c, []evalCase{
		{"read under the prefix", &Request{Action: read, Resource: blob("logs", "audit/2026/05/01.json")}, true},
		{"read outside the prefix", &Request{Action: read, Resource: blob("logs", "secrets/key.pem")}, false},
		{"read in another container", &Request{Action: read, Resource: blob("backups", "audit/2026/x")}, false},
		{"list blobs is not targeted", &Request{Action: read, SubOperation: "Blob.List"}, true},
		{"write is not targeted", &Request{Action: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"}, true},
		{"read with no path (fail closed)", &Request{Action: read, Resource: Attributes{"Microsoft.Storage/storageAccounts/blobServices/containers:name": Strings("logs")}}, false},
	})
}

func TestBuiltinWithoutActionMatches(t *testing.T) {
	t.Parallel()
	// "@Resource[HasObotoken] boolequals true && (… ForAnyOfAnyValues:GuidEquals {…})":
	// no ActionMatches, so it applies to every action.
	c := builtin(t, "Azure Resilience Management Goals Administrator")
	runEval(t, c, []evalCase{
		{"OBO token, allowed role", &Request{Action: actAssign, Resource: Attributes{"HasObotoken": []Value{Bool(true)}}, Request: Attributes{attrRoleDef: Strings(roleReader)}}, true},
		{"OBO token as text", &Request{Action: actAssign, Resource: Attributes{"hasobotoken": Strings("True")}, Request: Attributes{attrRoleDef: Strings(roleReader)}}, true},
		{"no OBO token", &Request{Action: actAssign, Resource: Attributes{"HasObotoken": []Value{Bool(false)}}, Request: Attributes{attrRoleDef: Strings(roleReader)}}, false},
		{"OBO token, Owner", &Request{Action: actAssign, Resource: Attributes{"HasObotoken": []Value{Bool(true)}}, Request: Attributes{attrRoleDef: Strings(roleOwner)}}, false},
		{"read, no attributes", &Request{Action: "Microsoft.Resources/subscriptions/read"}, false},
	})
}

func TestBuiltinPrivilegedMonitoringDataReader(t *testing.T) {
	t.Parallel()
	c := builtin(t, "Privileged Monitoring Data Reader")
	const read = "Microsoft.OperationalInsights/workspaces/tables/data/read"
	level := func(vs ...string) Attributes {
		return Attributes{"Microsoft.OperationalInsights/workspaces/tables:protectionLevel": Strings(vs...)}
	}
	runEval(t, c, []evalCase{
		{"general table", &Request{Action: read, Resource: level("General")}, true},
		{"general and protected", &Request{Action: read, Resource: level("General", "Protected")}, true},
		{"restricted table", &Request{Action: read, Resource: level("General", "Restricted")}, false},
		{"level differs in case", &Request{Action: read, Resource: level("general")}, false},
		{"other action", &Request{Action: "Microsoft.OperationalInsights/workspaces/read"}, true},
	})
}

func TestBuiltinFileSyncAdministrator(t *testing.T) {
	t.Parallel()
	c := builtin(t, "Azure File Sync Administrator")
	req := func(role, typ string) *Request {
		return &Request{Action: actAssign, Request: Attributes{
			attrRoleDef: Strings(role),
			"Microsoft.Authorization/roleAssignments:PrincipalType": Strings(typ),
		}}
	}
	runEval(t, c, []evalCase{
		{"allowed role to a service principal", req("c12c1c16-33a1-487b-954d-41c89c60f349", "serviceprincipal"), true},
		{"allowed role to a user", req("c12c1c16-33a1-487b-954d-41c89c60f349", "User"), false},
		{"other role to a service principal", req(roleBlobReader, "ServicePrincipal"), false},
	})
}

func TestEnvironmentUtcNow(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `@Environment[UtcNow] DateTimeGreaterThan '2026-05-01T13:00:00.000Z' && @Environment[UtcNow] DateTimeLessThan '2026-05-01T17:00:00.0000000Z'`)
	at := func(s string) *Request {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &Request{Environment: Attributes{"UtcNow": []Value{DateTime(ts)}}}
	}
	runEval(t, c, []evalCase{
		{"inside", at("2026-05-01T14:00:00Z"), true},
		{"inside, other zone", at("2026-05-01T18:00:00+02:00"), true},
		{"before", at("2026-05-01T12:59:59Z"), false},
		{"as text", &Request{Environment: Attributes{"UtcNow": Strings("2026-05-01T15:00:00Z")}}, true},
		{"absent", &Request{}, false},
	})
}
