package rbac

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/strictjson"
)

// TestBuiltinRolesParse reads the embedded export strictly, as a user's
// `az role definition list` output would be read, and checks the catalogue.
func TestBuiltinRolesParse(t *testing.T) {
	t.Parallel()
	defs, err := ParseRoleDefinitions(azureBuiltinJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 928 {
		t.Fatalf("parsed %d Azure built-in roles, want 928", len(defs))
	}
	verity, err := ParseRoleDefinitions(verityBuiltinJSON)
	if err != nil {
		t.Fatal(err)
	}
	all := BuiltinRoles()
	if len(all) != 928+len(verity) {
		t.Fatalf("BuiltinRoles: %d", len(all))
	}
	multi, conds := 0, 0
	for _, d := range defs {
		if len(d.Permissions) > 1 {
			multi++
		}
		for _, p := range d.Permissions {
			if p.Condition != "" {
				conds++
			}
		}
	}
	if multi != 16 || conds != 31 {
		t.Errorf("%d roles with several blocks (want 16), %d conditions (want 31)", multi, conds)
	}
	for _, v := range verity {
		v.RoleType = CustomRole // Validate's rules hold for Verity's roles too
		if err := v.Validate(); err != nil {
			t.Errorf("%s: %v", v.RoleName, err)
		}
		for _, p := range v.Permissions {
			for _, a := range append(p.Actions, p.NotActions...) {
				// Granting access uses Azure's own Microsoft.Authorization
				// actions, and just-in-time network access Defender's, so
				// that built-in roles keep their meaning.
				if !strings.HasPrefix(a, "Verity.") && !strings.HasPrefix(a, "Microsoft.Authorization/") &&
					!strings.HasPrefix(a, "Microsoft.Security/locations/jitNetworkAccessPolicies/") {
					t.Errorf("%s: action %q outside the Verity and Microsoft.Authorization namespaces", v.RoleName, a)
				}
			}
		}
	}
	// Every built-in role compiles; the engine holds them all.
	e, err := Compile(nil, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.roles) != len(all) {
		t.Errorf("engine has %d roles", len(e.roles))
	}
}

func TestLookupRole(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"Owner", "owner", OwnerID, "/providers/Microsoft.Authorization/roleDefinitions/" + OwnerID,
		"/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/" + strings.ToUpper(OwnerID)} {
		r, ok := LookupRole(ref)
		if !ok || r.Name != OwnerID || !IsOwner(ref) || IsReader(ref) {
			t.Errorf("LookupRole(%q) = %v, %v", ref, r.RoleName, ok)
		}
	}
	if r, ok := LookupRole("Reader"); !ok || r.Name != ReaderID || !IsReader("Reader") || IsOwner("Reader") {
		t.Errorf("Reader: %+v %v", r.Name, ok)
	}
	for _, name := range []string{"Storage Blob Data Contributor", "Verity Security Reader", "Key Vault Secrets User"} {
		if _, ok := LookupRole(name); !ok {
			t.Errorf("LookupRole(%q) not found", name)
		}
	}
	for _, other := range []string{"Contributor", "Storage Blob Data Reader", "User Access Administrator"} {
		if IsOwner(other) || IsReader(other) {
			t.Errorf("%s counts as Owner or Reader for the admin API", other)
		}
	}
	if _, ok := LookupRole("Nobody"); ok {
		t.Error("found Nobody")
	}
}

func TestParseRoleDefinitionShapes(t *testing.T) {
	t.Parallel()
	const flat = `{"roleName":"Ops","name":"11111111-1111-1111-1111-111111111111","permissions":[{"actions":["Microsoft.Compute/*/read"]}],"assignableScopes":["/subscriptions/s1"],"createdOn":"2024-01-01","updatedBy":"x"}`
	const arm = `{"id":"/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/11111111-1111-1111-1111-111111111111","name":"11111111-1111-1111-1111-111111111111","type":"Microsoft.Authorization/roleDefinitions",
	 "properties":{"roleName":"Ops","type":"CustomRole","description":"d","permissions":[{"actions":["Microsoft.Compute/*/read"],"notActions":[]}],"assignableScopes":["/subscriptions/s1"]}}`
	cases := []struct {
		name, doc string
		n         int
		errPath   string
	}{
		{"az list", "[" + flat + "]", 1, ""},
		{"az show", flat, 1, ""},
		{"arm object", arm, 1, ""},
		{"arm list", `{"value":[` + arm + `,` + flat + `]}`, 2, ""},
		{"unknown field", `[` + flat + `,{"roleName":"x","bogus":1}]`, 0, "[1].bogus"},
		{"wrong type in list", `{"value":[` + arm + `,{"roleName":"x","permissions":[{"actions":"*"}]}]}`, 0, "value[1].permissions[0].actions"},
		{"arm bad", `{"name":"x","properties":{"permissions":{}}}`, 0, "properties.permissions"},
		{"not json", `[`, 0, ""},
		{"scalar", `3`, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defs, err := ParseRoleDefinitions([]byte(c.doc))
			if c.n == 0 {
				if err == nil {
					t.Fatal("no error")
				}
				var fe *strictjson.FieldError
				if c.errPath != "" && (!errors.As(err, &fe) || fe.Path != c.errPath) {
					t.Fatalf("error %v, want path %s", err, c.errPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(defs) != c.n {
				t.Fatalf("%d definitions", len(defs))
			}
			for _, d := range defs {
				if err := d.Validate(); err != nil {
					t.Errorf("validate: %v", err)
				}
				if d.RoleType != CustomRole || d.RoleName != "Ops" {
					t.Errorf("%+v", d)
				}
			}
		})
	}
}

func TestRoleDefinitionValidate(t *testing.T) {
	t.Parallel()
	base := func() RoleDefinition {
		d := RoleDefinition{Name: "11111111-1111-1111-1111-111111111111", RoleName: "Ops",
			Permissions: []Permission{{Actions: []string{"Microsoft.Compute/virtualMachines/*"}}}, AssignableScopes: []string{"/subscriptions/s1"}}
		d.Normalize()
		return d
	}
	cases := []struct {
		name string
		edit func(*RoleDefinition)
		path string
	}{
		{"ok", func(*RoleDefinition) {}, ""},
		{"no scopes", func(d *RoleDefinition) { d.AssignableScopes = nil }, "assignableScopes"},
		{"bad scope", func(d *RoleDefinition) { d.AssignableScopes = []string{"subscriptions/s1"} }, "assignableScopes[0]"},
		{"two management groups", func(d *RoleDefinition) {
			d.AssignableScopes = []string{"/providers/Microsoft.Management/managementGroups/a", "/providers/Microsoft.Management/managementGroups/b"}
		}, "assignableScopes[1]"},
		{"no actions", func(d *RoleDefinition) { d.Permissions = []Permission{{NotActions: []string{"*"}}} }, "permissions[0]"},
		{"action without provider", func(d *RoleDefinition) { d.Permissions[0].Actions = []string{"read"} }, "permissions[0].actions[0]"},
		{"action with space", func(d *RoleDefinition) { d.Permissions[0].DataActions = []string{"Microsoft.Storage/a b"} }, "permissions[0].dataActions[0]"},
		{"no name", func(d *RoleDefinition) { d.RoleName = " " }, "roleName"},
		{"bad guid", func(d *RoleDefinition) { d.Name = "x"; d.ID = "x" }, "name"},
		{"version without condition", func(d *RoleDefinition) { d.Permissions[0].ConditionVersion = "2.0" }, "permissions[0].conditionVersion"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := base()
			c.edit(&d)
			err := d.Validate()
			var fe *strictjson.FieldError
			switch {
			case c.path == "" && err != nil:
				t.Fatal(err)
			case c.path != "" && (!errors.As(err, &fe) || fe.Path != c.path):
				t.Fatalf("error %v, want path %s", err, c.path)
			}
		})
	}
}

func TestDenyAssignmentValidate(t *testing.T) {
	t.Parallel()
	const g = "22222222-2222-2222-2222-222222222222"
	ok := `{"denyAssignmentName":"n","permissions":{"actions":["*/delete"]},"scope":"/subscriptions/s","principals":[{"id":"` + EveryoneID + `","type":"SystemDefined"}],"excludePrincipals":[{"id":"` + g + `","type":"User"}]}`
	d, err := ParseDenyAssignment([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	d.ExcludePrincipals = nil
	if err := d.Validate(); err == nil {
		t.Error("everyone without exclusions validated")
	}
	var arr DenyAssignment
	if err := json.Unmarshal([]byte(`{"permissions":[{"actions":["*"]}]}`), &arr); err != nil || len(arr.Permissions) != 1 {
		t.Errorf("list form: %v", err)
	}
	if _, err := ParseDenyAssignment([]byte(`{"denyAssignmentName":"n","permissions":{"actions":"*"}}`)); err == nil {
		t.Error("bad permissions parsed")
	}
}

func FuzzParseRoleDefinitions(f *testing.F) {
	f.Add([]byte(`[{"roleName":"a","name":"11111111-1111-1111-1111-111111111111","permissions":[{"actions":["*"]}],"assignableScopes":["/"]}]`))
	f.Add([]byte(`{"value":[{"name":"x","properties":{"roleName":"r","permissions":[{"actions":["a/*/b"]}]}}]}`))
	f.Add([]byte(`{"roleName":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := ParseRoleDefinitions(data)
		if err != nil {
			return
		}
		for i := range defs {
			_ = defs[i].Validate()
		}
		// Whatever parses compiles into an engine, or is refused cleanly.
		e, err := Compile(defs, nil, nil, Options{})
		if err != nil {
			return
		}
		var res Decision
		for _, d := range defs {
			for _, p := range d.Permissions {
				for _, a := range p.Actions {
					e.Check(&Request{PrincipalID: "p", Action: a, Scope: "/"}, &res)
				}
			}
		}
	})
}
