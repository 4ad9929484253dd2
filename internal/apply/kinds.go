package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// The store kinds an apply manages, in the order it writes them (objects
// that others refer to first).
var managedKinds = []string{
	directory.KindUser, directory.KindApplication, directory.KindServicePrincipal, directory.KindGroup,
	directory.KindNamedLocation, directory.KindIdentityProvider, directory.KindAppRoute, access.Kind, rbac.DefinitionKind, directory.KindRoleAssignment, rbac.Kind, rbac.DenyKind,
}

// codec is the part of directory.Descriptor that a plan needs, so that
// Verity's role assignments (not a directory kind) can provide it too.
type codec interface {
	// New returns a new zero resource of the kind.
	New() directory.Resource
	// KeyOf is the store key of r ("" when the kind has none).
	KeyOf(r directory.Resource) string
	// ObjectOf encodes r as a store object of the kind.
	ObjectOf(r directory.Resource) (store.Object, error)
}

// descriptor returns the codec of a managed kind.
func descriptor(kind string) codec {
	switch kind {
	case rbac.Kind:
		return rbacKind{}
	case access.Kind:
		return caKind{}
	case rbac.DefinitionKind:
		return roleDefKind{}
	case rbac.DenyKind:
		return denyCodec{}
	}
	d, _ := directory.Lookup(kind)
	return d
}

// keyField is the JSON property holding a kind's natural key.
var keyField = map[string]string{
	directory.KindUser:             "userPrincipalName",
	directory.KindGroup:            "displayName",
	directory.KindApplication:      "appId",
	directory.KindServicePrincipal: "appId",
	directory.KindNamedLocation:    "displayName",
	directory.KindIdentityProvider: "issuer",
	directory.KindAppRoute:         "from",
	access.Kind:                    "displayName",
	rbac.DefinitionKind:            "roleName",
	rbac.DenyKind:                  "denyAssignmentName",
}

// noun is how messages call a kind.
var noun = map[string]string{
	directory.KindUser:             "user",
	directory.KindGroup:            "group",
	directory.KindApplication:      "application",
	directory.KindServicePrincipal: "service principal",
	directory.KindNamedLocation:    "named location",
	directory.KindIdentityProvider: "identity provider",
	directory.KindAppRoute:         "app route",
	access.Kind:                    "conditional access policy",
	rbac.DefinitionKind:            "role definition",
	rbac.DenyKind:                  "deny assignment",
	directory.KindRoleAssignment:   "directory role assignment",
	rbac.Kind:                      "role assignment",
}

// readOnly lists the properties the server sets; they never count as a
// change and a manifest cannot set them.
var readOnly = map[string]bool{
	"id": true, "createdDateTime": true, "modifiedDateTime": true, "deletedDateTime": true, "createdOn": true,
}

// rbacAssignment adapts rbac.Assignment to directory.Resource so that
// Verity's role assignments go through the same plan as directory
// objects.
type rbacAssignment struct{ rbac.Assignment }

var _ directory.Resource = (*rbacAssignment)(nil)

// ObjectID implements directory.Resource.
func (a *rbacAssignment) ObjectID() string { return a.ID }

// SetObjectID implements directory.Resource.
func (a *rbacAssignment) SetObjectID(id string) { a.ID = id }

// SetCreatedDateTime sets createdOn, as `az role assignment list` shows it.
func (a *rbacAssignment) SetCreatedDateTime(t time.Time) {
	a.CreatedOn = t.UTC().Format(time.RFC3339)
}

// Normalize implements directory.Resource.
func (a *rbacAssignment) Normalize() { a.Assignment.Normalize() }

// Validate implements directory.Resource.
func (a *rbacAssignment) Validate() error { return a.Assignment.Validate() }

// rbacKind is the codec of rbac's store kind.
type rbacKind struct{}

var _ codec = rbacKind{}

// New implements codec.
func (rbacKind) New() directory.Resource { return &rbacAssignment{} }

// KeyOf implements codec: assignments have no natural key.
func (rbacKind) KeyOf(directory.Resource) string { return "" }

// ObjectOf implements codec.
func (rbacKind) ObjectOf(r directory.Resource) (store.Object, error) {
	a, ok := r.(*rbacAssignment)
	if !ok || a.ID == "" {
		return store.Object{}, fmt.Errorf("encode %s: not an assignment with an id", rbac.Kind)
	}
	stored := a.Assignment
	stored.RoleDefinitionName = "" // derived on read; the API stores it without
	body, err := json.Marshal(stored)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode %s %s: %w", rbac.Kind, a.ID, err)
	}
	return store.Object{Kind: rbac.Kind, ID: a.ID, Body: body}, nil
}

// fromObject decodes a stored object leniently and normalises it, as
// directory's Kind.FromObject does.
func fromObject(o store.Object) (directory.Resource, error) {
	r := descriptor(o.Kind).New()
	if err := json.Unmarshal(o.Body, r); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", o.Kind, o.ID, err)
	}
	r.SetObjectID(o.ID)
	r.Normalize()
	return r, nil
}

// deepCopy copies a manifest entry into a new resource of the kind, so
// that normalising it leaves the caller's manifest alone.
func deepCopy(kind string, v any) (directory.Resource, error) {
	b, err := json.Marshal(v)
	if err != nil {
		var fe *strictjson.FieldError
		if errors.As(err, &fe) {
			return nil, fe
		}
		return nil, err
	}
	r := descriptor(kind).New()
	if err := json.Unmarshal(b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// stripReadOnly clears the properties the server sets.
func stripReadOnly(r directory.Resource) {
	switch v := r.(type) {
	case *directory.User:
		v.CreatedDateTime = nil
	case *directory.Group:
		v.CreatedDateTime = nil
	case *directory.Application:
		v.CreatedDateTime = nil
	case *directory.ServicePrincipal:
		v.CreatedDateTime = nil
	case *directory.NamedLocation:
		v.CreatedDateTime, v.ModifiedDateTime, v.DeletedDateTime = nil, nil, nil
	case *directory.IdentityProvider:
		v.CreatedDateTime = nil
	case *directory.AppRoute:
		v.CreatedDateTime = nil
	case *rbacAssignment:
		v.CreatedOn = ""
	case *caPolicy:
		v.CreatedDateTime, v.ModifiedDateTime, v.DeletedDateTime = nil, nil, nil
	case *roleDef:
		v.CreatedOn, v.UpdatedOn, v.CreatedBy, v.UpdatedBy, v.SystemData = "", "", "", "", nil
	}
}

// keepReadOnly copies the server-set properties of the stored version cur
// into the new version r, and marks r modified now where the kind records
// it.
func keepReadOnly(r, cur directory.Resource, now time.Time) {
	switch v := r.(type) {
	case *directory.User:
		v.CreatedDateTime = cur.(*directory.User).CreatedDateTime
	case *directory.Group:
		v.CreatedDateTime = cur.(*directory.Group).CreatedDateTime
	case *directory.Application:
		v.CreatedDateTime = cur.(*directory.Application).CreatedDateTime
	case *directory.ServicePrincipal:
		v.CreatedDateTime = cur.(*directory.ServicePrincipal).CreatedDateTime
	case *directory.NamedLocation:
		v.CreatedDateTime = cur.(*directory.NamedLocation).CreatedDateTime
		v.SetModifiedDateTime(now)
	case *directory.IdentityProvider:
		v.CreatedDateTime = cur.(*directory.IdentityProvider).CreatedDateTime
	case *directory.AppRoute:
		v.CreatedDateTime = cur.(*directory.AppRoute).CreatedDateTime
	case *rbacAssignment:
		v.CreatedOn = cur.(*rbacAssignment).CreatedOn
	case *caPolicy:
		v.CreatedDateTime = cur.(*caPolicy).CreatedDateTime
		t := now.UTC()
		v.ModifiedDateTime = &t
	case *roleDef:
		v.CreatedOn = cur.(*roleDef).CreatedOn
		v.UpdatedOn = now.UTC().Format(time.RFC3339)
	}
}

// nameOf is how plans and messages name a resource: a user's
// userPrincipalName, an app route's from URL (display names of routes
// repeat: one application, several prefixes), another object's
// displayName.
func nameOf(r directory.Resource) string {
	switch v := r.(type) {
	case *directory.User:
		return v.UserPrincipalName
	case *directory.Group:
		return v.DisplayName
	case *directory.Application:
		return v.DisplayName
	case *directory.ServicePrincipal:
		return v.DisplayName
	case *directory.NamedLocation:
		return v.DisplayName
	case *directory.IdentityProvider:
		return v.DisplayName
	case *directory.AppRoute:
		return v.From
	case *caPolicy:
		return v.DisplayName
	case *roleDef:
		return v.RoleName
	case *denyAssign:
		return v.DenyAssignmentName
	}
	return r.ObjectID()
}

// refOf is how a manifest refers to a principal: users by
// userPrincipalName, groups by displayName, service principals by appId.
func refOf(r directory.Resource) string {
	switch v := r.(type) {
	case *directory.User:
		return v.UserPrincipalName
	case *directory.Group:
		return v.DisplayName
	case *directory.ServicePrincipal:
		return v.AppID
	}
	return ""
}

// refKey is the lookup form of a reference, as the kinds' keys are.
func refKey(ref string) string { return strings.ToLower(strings.TrimSpace(ref)) }

// listAll reads every object of a kind.
func listAll(ctx context.Context, r store.Reader, kind string) ([]store.Object, error) {
	const page = 5000
	var out []store.Object
	after := ""
	for {
		objs, err := r.List(ctx, kind, store.ListOptions{AfterID: after, Limit: page})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		out = append(out, objs...)
		if len(objs) < page {
			return out, nil
		}
		after = objs[len(objs)-1].ID
	}
}

// directoryRole finds a built-in directory role by template id or display
// name (ignoring case).
func directoryRole(roles []directory.RoleDefinition, ref string) (directory.RoleDefinition, bool) {
	if d, ok := directory.RoleByID(strings.TrimSpace(ref)); ok {
		return d, true
	}
	for _, d := range roles {
		if strings.EqualFold(d.DisplayName, strings.TrimSpace(ref)) {
			return d, true
		}
	}
	return directory.RoleDefinition{}, false
}

// caPolicy adapts a conditional access policy to directory.Resource so
// that policies go through the same plan as directory objects.
type caPolicy struct{ access.Policy }

var _ directory.Resource = (*caPolicy)(nil)

// ObjectID implements directory.Resource.
func (p *caPolicy) ObjectID() string { return p.ID }

// SetObjectID implements directory.Resource.
func (p *caPolicy) SetObjectID(id string) { p.ID = id }

// SetCreatedDateTime implements directory.Resource; a new policy is also
// modified now.
func (p *caPolicy) SetCreatedDateTime(t time.Time) {
	t = t.UTC()
	p.CreatedDateTime, p.ModifiedDateTime = &t, &t
}

// Normalize implements directory.Resource.
func (p *caPolicy) Normalize() { p.ID = strings.ToLower(p.ID) }

// Validate implements directory.Resource.
func (p *caPolicy) Validate() error { return p.Policy.Validate() }

// caKind is the codec of conditional access policies.
type caKind struct{}

var _ codec = caKind{}

// New implements codec.
func (caKind) New() directory.Resource { return &caPolicy{} }

// KeyOf implements codec.
func (caKind) KeyOf(r directory.Resource) string {
	if p, ok := r.(*caPolicy); ok {
		return p.Key()
	}
	return ""
}

// ObjectOf implements codec.
func (caKind) ObjectOf(r directory.Resource) (store.Object, error) {
	p, ok := r.(*caPolicy)
	if !ok {
		return store.Object{}, fmt.Errorf("encode %s: got %T", access.Kind, r)
	}
	return access.Object(&p.Policy)
}

// roleDef adapts a custom role definition; its id is the GUID (`name`).
type roleDef struct{ rbac.RoleDefinition }

var _ directory.Resource = (*roleDef)(nil)

// ObjectID implements directory.Resource.
func (r *roleDef) ObjectID() string { return r.Name }

// SetObjectID implements directory.Resource.
func (r *roleDef) SetObjectID(id string) {
	r.Name = id
	r.ID = "/providers/Microsoft.Authorization/roleDefinitions/" + id
}

// SetCreatedDateTime implements directory.Resource.
func (r *roleDef) SetCreatedDateTime(t time.Time) {
	r.CreatedOn = t.UTC().Format(time.RFC3339)
	r.UpdatedOn = r.CreatedOn
}

// Normalize implements directory.Resource.
func (r *roleDef) Normalize() {
	r.RoleType = rbac.CustomRole
	r.Name = strings.ToLower(r.Name)
	r.RoleDefinition.Normalize()
}

// Validate implements directory.Resource: a custom role, whose name and id
// are not a built-in's.
func (r *roleDef) Validate() error {
	if _, builtin := rbac.LookupRole(r.RoleName); builtin {
		return strictjson.Errorf("roleName", "%q is the name of a built-in role", r.RoleName)
	}
	if _, builtin := rbac.LookupRole(r.Name); r.Name != "" && builtin {
		return strictjson.Errorf("name", "%s is the id of a built-in role", r.Name)
	}
	if r.Name == "" { // a new role: the plan gives it its id after matching
		v := r.RoleDefinition
		v.Name = "00000000-0000-4000-8000-000000000000"
		v.ID = "/providers/Microsoft.Authorization/roleDefinitions/" + v.Name
		return v.Validate()
	}
	return r.RoleDefinition.Validate()
}

// roleDefKind is the codec of custom role definitions.
type roleDefKind struct{}

// New implements codec.
func (roleDefKind) New() directory.Resource { return &roleDef{} }

// KeyOf implements codec.
func (roleDefKind) KeyOf(r directory.Resource) string {
	if d, ok := r.(*roleDef); ok {
		return strings.ToLower(d.RoleName)
	}
	return ""
}

// ObjectOf implements codec.
func (roleDefKind) ObjectOf(r directory.Resource) (store.Object, error) {
	d, ok := r.(*roleDef)
	if !ok || d.Name == "" {
		return store.Object{}, fmt.Errorf("encode %s: not a role definition with a name", rbac.DefinitionKind)
	}
	body, err := json.Marshal(d.RoleDefinition)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode %s %s: %w", rbac.DefinitionKind, d.Name, err)
	}
	return store.Object{Kind: rbac.DefinitionKind, ID: d.Name, Key: strings.ToLower(d.RoleName), Body: body}, nil
}

// denyAssign adapts a deny assignment.
type denyAssign struct{ rbac.DenyAssignment }

var _ directory.Resource = (*denyAssign)(nil)

// ObjectID implements directory.Resource.
func (d *denyAssign) ObjectID() string { return d.ID }

// SetObjectID implements directory.Resource.
func (d *denyAssign) SetObjectID(id string) { d.ID = id }

// SetCreatedDateTime implements directory.Resource; deny assignments
// carry no times.
func (d *denyAssign) SetCreatedDateTime(time.Time) {}

// Normalize implements directory.Resource.
func (d *denyAssign) Normalize() { d.ID = strings.ToLower(d.ID) }

// Validate implements directory.Resource.
func (d *denyAssign) Validate() error { return d.DenyAssignment.Validate() }

// denyCodec is the codec of deny assignments.
type denyCodec struct{}

// New implements codec.
func (denyCodec) New() directory.Resource { return &denyAssign{} }

// KeyOf implements codec.
func (denyCodec) KeyOf(r directory.Resource) string {
	if d, ok := r.(*denyAssign); ok {
		return strings.ToLower(d.DenyAssignmentName)
	}
	return ""
}

// ObjectOf implements codec.
func (denyCodec) ObjectOf(r directory.Resource) (store.Object, error) {
	d, ok := r.(*denyAssign)
	if !ok || d.ID == "" {
		return store.Object{}, fmt.Errorf("encode %s: not a deny assignment with an id", rbac.DenyKind)
	}
	body, err := json.Marshal(d.DenyAssignment)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode %s %s: %w", rbac.DenyKind, d.ID, err)
	}
	return store.Object{Kind: rbac.DenyKind, ID: d.ID, Key: strings.ToLower(d.DenyAssignmentName), Body: body}, nil
}
