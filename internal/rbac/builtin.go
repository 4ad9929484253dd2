package rbac

import (
	_ "embed"
	"encoding/json"
	"strings"
	"sync"
)

// Azure's built-in role definition GUIDs, identical in every tenant.
const (
	OwnerID  = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	ReaderID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
)

const definitionPrefix = "/providers/Microsoft.Authorization/roleDefinitions/"

//go:embed builtin/builtin-role-definitions.json
var azureBuiltinJSON []byte

//go:embed builtin/verity-role-definitions.json
var verityBuiltinJSON []byte

// catalog is the read-only index of the built-in roles, built once on
// first use from the embedded files.
type catalog struct {
	roles  []RoleDefinition
	byName map[string]int // lower-case GUID and lower-case roleName
}

var builtinCatalog = sync.OnceValue(func() *catalog {
	var roles []RoleDefinition
	for _, data := range [][]byte{azureBuiltinJSON, verityBuiltinJSON} {
		var part []RoleDefinition
		// The embedded files are checked strictly by TestBuiltinRolesParse;
		// encoding/json keeps start-up fast.
		if err := json.Unmarshal(data, &part); err != nil {
			panic("rbac: embedded built-in roles: " + err.Error())
		}
		roles = append(roles, part...)
	}
	c := &catalog{roles: roles, byName: make(map[string]int, 2*len(roles))}
	for i := range c.roles {
		c.roles[i].Normalize()
		c.roles[i].RoleType = BuiltInRole
		c.byName[strings.ToLower(c.roles[i].Name)] = i
		c.byName[strings.ToLower(c.roles[i].RoleName)] = i
	}
	return c
})

// BuiltinRoles lists the built-in role definitions: Azure's 928 (as `az role
// definition list` prints them) followed by Verity's own over the Verity.*
// namespace. The slice is shared: callers must not modify it.
func BuiltinRoles() []RoleDefinition { return builtinCatalog().roles }

// LookupRole finds a built-in role by GUID, ARM id (with or without a
// subscription prefix) or role name, case-insensitively.
func LookupRole(ref string) (RoleDefinition, bool) {
	c := builtinCatalog()
	if i, ok := c.byName[strings.ToLower(roleRef(ref))]; ok {
		return c.roles[i], true
	}
	return RoleDefinition{}, false
}

// roleRef strips an ARM role definition id down to its GUID:
// "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/{guid}" → "{guid}".
func roleRef(ref string) string {
	const marker = "/providers/microsoft.authorization/roledefinitions/"
	if len(ref) > len(marker) {
		if i := strings.LastIndex(strings.ToLower(ref), marker); i >= 0 {
			return ref[i+len(marker):]
		}
	}
	return ref
}
