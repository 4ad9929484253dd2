package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v2"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/strictjson"
)

// ManagedBy is the store.Object ManagedBy value of the objects an apply
// writes. Pruning deletes only objects that carry it.
const ManagedBy = "apply"

// Manifest is a tenant as code: the directory objects and role
// assignments an apply should make exist. Its JSON (and YAML) form is the
// manifest file format, which Export writes back. Ids are optional
// everywhere: without one an object is matched by its natural key (a
// user's userPrincipalName, a group's or named location's displayName, an
// application's or service principal's appId), and a new object gets a
// random id. Members and principals are named, not numbered.
type Manifest struct {
	// Users are Graph user objects, matched by id, else userPrincipalName.
	Users []directory.User `json:"users,omitempty"`
	// Groups are Graph groups with their members named, matched by id,
	// else displayName.
	Groups []Group `json:"groups,omitempty"`
	// Applications are Graph application registrations, matched by id,
	// else appId, which is required.
	Applications []directory.Application `json:"applications,omitempty"`
	// ServicePrincipals are Graph service principals (including managed
	// identities), matched by id, else appId.
	ServicePrincipals []directory.ServicePrincipal `json:"servicePrincipals,omitempty"`
	// NamedLocations are Graph named locations (ipNamedLocation,
	// countryNamedLocation, compliantNetworkNamedLocation, told apart by
	// "@odata.type"), matched by id, else displayName.
	NamedLocations []directory.NamedLocation `json:"namedLocations,omitempty"`
	// ConditionalAccessPolicies are Graph conditionalAccessPolicy objects
	// as Entra exports them (ids of users, groups, roles, applications and
	// named locations inside), matched by id, else displayName.
	ConditionalAccessPolicies []access.Policy `json:"conditionalAccessPolicies,omitempty"`
	// RoleDefinitions are custom roles in the shape of `az role definition
	// create`, matched by name (the GUID), else roleName. Role assignments
	// may name them by roleName.
	RoleDefinitions []rbac.RoleDefinition `json:"roleDefinitions,omitempty"`
	// DenyAssignments are Azure deny assignments, matched by id, else
	// denyAssignmentName. Principals are named by object id, as in Azure.
	DenyAssignments []rbac.DenyAssignment `json:"denyAssignments,omitempty"`
	// IdentityProviders are external OpenID Connect identity providers
	// (Graph's openIdConnectIdentityProvider), matched by id, else issuer.
	// Their client secrets never come from a manifest file: see
	// IdentityProvider.
	IdentityProviders []IdentityProvider `json:"identityProviders,omitempty"`
	// AppRoutes publish applications through the identity-aware proxy,
	// matched by id, else from (the external URL, normalised). appId names
	// the application whose conditional access policies and /apps/{appId}
	// role assignments decide each request.
	AppRoutes []directory.AppRoute `json:"appRoutes,omitempty"`
	// DirectoryRoleAssignments grant Entra's built-in directory roles.
	DirectoryRoleAssignments []DirectoryRoleAssignment `json:"directoryRoleAssignments,omitempty"`
	// RoleAssignments grant Verity's RBAC roles (Owner, Reader) at a scope.
	RoleAssignments []RoleAssignment `json:"roleAssignments,omitempty"`

	// origins says where each entry came from, per section, for errors;
	// nil for a manifest built in Go or by Export.
	origins map[string][]origin
}

// Group is a Graph group whose members are named: users by
// userPrincipalName, groups by displayName, service principals by appId.
type Group struct {
	directory.GraphGroup
	// Members lists the group's direct members; nil means none.
	Members *Members `json:"members,omitempty"`
}

// Members names a group's direct members by reference.
type Members struct {
	// Users are userPrincipalNames.
	Users []string `json:"users,omitempty"`
	// Groups are displayNames of nested groups.
	Groups []string `json:"groups,omitempty"`
	// ServicePrincipals are appIds.
	ServicePrincipals []string `json:"servicePrincipals,omitempty"`
}

// DirectoryRoleAssignment grants a built-in Entra directory role to
// exactly one of a user, a group (with isAssignableToRole) or a service
// principal. It has no natural key: it is matched by id, else by
// (principal, role, scope).
type DirectoryRoleAssignment struct {
	// ID is a GUID, or an opaque id as Graph gives role assignments.
	ID string `json:"id,omitempty"`
	// User is the principal's userPrincipalName.
	User string `json:"user,omitempty"`
	// Group is the principal's displayName.
	Group string `json:"group,omitempty"`
	// ServicePrincipal is the principal's appId.
	ServicePrincipal string `json:"servicePrincipal,omitempty"`
	// Role is the role's display name ("Global Administrator") or
	// template id.
	Role string `json:"role"`
	// DirectoryScopeID is "/" (the tenant, the default),
	// "/administrativeUnits/{id}" or "/{objectId}".
	DirectoryScopeID string `json:"directoryScopeId,omitempty"`
}

// RoleAssignment grants one of Verity's RBAC roles to exactly one of a
// user, a group or a service principal at a scope. It is matched by id,
// else by (principal, role, scope).
type RoleAssignment struct {
	// ID is a GUID.
	ID string `json:"id,omitempty"`
	// User is the principal's userPrincipalName.
	User string `json:"user,omitempty"`
	// Group is the principal's displayName.
	Group string `json:"group,omitempty"`
	// ServicePrincipal is the principal's appId.
	ServicePrincipal string `json:"servicePrincipal,omitempty"`
	// Role is "Owner", "Reader" or a role definition GUID.
	Role string `json:"role"`
	// Scope is a path such as "/" (the default) or "/apps/payroll".
	Scope string `json:"scope,omitempty"`
	// Description says why the assignment exists.
	Description string `json:"description,omitempty"`
}

// principalRef returns which principal field is set, its value, and how many
// are set.
func principalRef(user, group, sp string) (field, ref string, n int) {
	for _, f := range []struct{ name, v string }{{"user", user}, {"group", group}, {"servicePrincipal", sp}} {
		if f.v != "" {
			if n == 0 {
				field, ref = f.name, f.v
			}
			n++
		}
	}
	return field, ref, n
}

// Sections of a manifest, in the order they are written and applied.
const (
	secUsers             = "users"
	secGroups            = "groups"
	secApplications      = "applications"
	secServicePrincipals = "servicePrincipals"
	secNamedLocations    = "namedLocations"
	secCAPolicies        = "conditionalAccessPolicies"
	secRoleDefinitions   = "roleDefinitions"
	secDenyAssignments   = "denyAssignments"
	secDirectoryRoles    = "directoryRoleAssignments"
	secRoleAssignments   = "roleAssignments"
	secIdentityProviders = "identityProviders"
	secAppRoutes         = "appRoutes"
)

// origin is where one manifest entry was read.
type origin struct {
	file  string // as given to ParseFiles
	doc   int    // 1-based document of a multi-document file, 0 otherwise
	index int    // index in that document's section
}

// Error is a problem at one place of a manifest: a value that does not
// decode, an invalid object, a reference to nothing. Plan and parse
// failures join one Error per problem (errors.Join), so errors.As finds
// the first.
type Error struct {
	// File is the manifest file, "" for a manifest built in Go.
	File string
	// Document is the 1-based document of a multi-document YAML file, 0
	// when the file holds one.
	Document int
	// Path is the JSON path in the document, e.g.
	// "groups[2].members.users[0]"; "" for the whole document.
	Path string
	// Message says what is wrong.
	Message string
	// Conflict marks a problem with the state the plan would leave rather
	// than with the manifest's text (the last Owner would go), which the
	// API answers with 409 Conflict like its own refusal.
	Conflict bool
}

// Error formats as "file: path: message", dropping empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Document > 0 {
			fmt.Fprintf(&b, " (document %d)", e.Document)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// where returns the file, document and path prefix of entry i of section.
func (m *Manifest) where(section string, i int) (file string, doc int, path string) {
	if o := m.origins[section]; i < len(o) {
		return o[i].file, o[i].doc, strictjson.Index(section, o[i].index)
	}
	return "", 0, strictjson.Index(section, i)
}

// Locate turns a JSON path into the merged manifest, as a server that
// received the manifest reports it ("groups[7].members.users[0]"), into
// where ParseFiles read that entry:
// "tenant/groups.yaml: groups[2].members.users[0]". A path that names no
// entry of a parsed file comes back unchanged.
func (m *Manifest) Locate(path string) string {
	section, rest, ok := strings.Cut(path, "[")
	if !ok {
		return path
	}
	digits, rest, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(digits)
	if !ok || err != nil || i < 0 || i >= len(m.origins[section]) {
		return path
	}
	file, doc, at := m.where(section, i)
	return (&Error{File: file, Document: doc, Message: at + rest}).Error()
}

// errorAt builds an Error at sub (a path inside the entry, may be "") of
// entry i of section. A *strictjson.FieldError cause contributes its path.
func (m *Manifest) errorAt(section string, i int, sub string, err error) *Error {
	file, doc, path := m.where(section, i)
	path = joinPath(path, sub)
	msg := err.Error()
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		path = joinPath(path, fe.Path)
		msg = fe.Message
	}
	return &Error{File: file, Document: doc, Path: path, Message: msg}
}

// errorf is errorAt with a formatted message.
func (m *Manifest) errorf(section string, i int, sub, format string, args ...any) *Error {
	return m.errorAt(section, i, sub, fmt.Errorf(format, args...))
}

// describe names entry i of section for messages: "users.yaml: users[0]".
func (m *Manifest) describe(section string, i int) string {
	file, doc, path := m.where(section, i)
	return (&Error{File: file, Document: doc, Message: path}).Error()
}

// joinPath appends a JSON path to a prefix, indexes without a dot.
func joinPath(prefix, path string) string {
	switch {
	case path == "":
		return prefix
	case prefix == "":
		return path
	case path[0] == '[':
		return prefix + path
	}
	return prefix + "." + path
}

// YAML encodes the manifest in the manifest file format: sections and
// fields in their documented order, as Export and ParseFiles expect.
func (m *Manifest) YAML() ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	// Decoding the JSON as ordered YAML keeps the Go field order; plain
	// maps would sort the keys.
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if len(doc) == 0 {
		return []byte("{}\n"), nil
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return out, nil
}

// Len is the number of entries in all sections.
func (m *Manifest) Len() int {
	return len(m.Users) + len(m.Groups) + len(m.Applications) + len(m.ServicePrincipals) +
		len(m.NamedLocations) + len(m.ConditionalAccessPolicies) + len(m.RoleDefinitions) + len(m.DenyAssignments) + len(m.DirectoryRoleAssignments) + len(m.RoleAssignments) +
		len(m.IdentityProviders) + len(m.AppRoutes)
}
