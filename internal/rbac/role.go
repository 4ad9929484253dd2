package rbac

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/verityhq/verity/internal/strictjson"
)

// DefinitionKind is the store kind of custom role definitions.
const DefinitionKind = "roleDefinition"

// Role types, as Azure names them in roleType.
const (
	BuiltInRole = "BuiltInRole"
	CustomRole  = "CustomRole"
)

// RoleDefinition is a role in the shape of `az role definition list`: what
// it permits (Permissions) and where it may be assigned (AssignableScopes).
// The audit fields Azure exports carry (createdOn, updatedOn, createdBy,
// updatedBy, systemData) are kept so exports round-trip.
type RoleDefinition struct {
	ID               string       `json:"id"`   // /providers/Microsoft.Authorization/roleDefinitions/{name}
	Name             string       `json:"name"` // the GUID
	Type             string       `json:"type,omitempty"`
	RoleName         string       `json:"roleName"`
	RoleType         string       `json:"roleType"`
	Description      string       `json:"description"`
	Permissions      []Permission `json:"permissions"`
	AssignableScopes []string     `json:"assignableScopes"`
	CreatedOn        string       `json:"createdOn,omitempty"`
	UpdatedOn        string       `json:"updatedOn,omitempty"`
	CreatedBy        string       `json:"createdBy,omitempty"`
	UpdatedBy        string       `json:"updatedBy,omitempty"`
	SystemData       any          `json:"systemData,omitempty"`
}

// Permission is one permission block of a role (or of a deny assignment):
// Actions minus NotActions on the control plane, DataActions minus
// NotDataActions on the data plane. NotActions subtract within this block
// only; they are not a deny. Condition, when set, is an ABAC condition that
// must hold for the block to grant.
type Permission struct {
	Actions          []string `json:"actions"`
	NotActions       []string `json:"notActions"`
	DataActions      []string `json:"dataActions"`
	NotDataActions   []string `json:"notDataActions"`
	Condition        string   `json:"condition,omitempty"`
	ConditionVersion string   `json:"conditionVersion,omitempty"`
}

const roleTypeName = "Microsoft.Authorization/roleDefinitions"

// armRoleDefinition is the ARM REST shape: properties nested, roleType
// named "type" inside them.
type armRoleDefinition struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		RoleName         string       `json:"roleName"`
		Type             string       `json:"type"`
		RoleType         string       `json:"roleType"`
		Description      string       `json:"description"`
		Permissions      []Permission `json:"permissions"`
		AssignableScopes []string     `json:"assignableScopes"`
		CreatedOn        string       `json:"createdOn"`
		UpdatedOn        string       `json:"updatedOn"`
		CreatedBy        string       `json:"createdBy"`
		UpdatedBy        string       `json:"updatedBy"`
	} `json:"properties"`
	SystemData any `json:"systemData"`
}

func (a *armRoleDefinition) flat() RoleDefinition {
	p := a.Properties
	rt := p.Type
	if rt == "" {
		rt = p.RoleType
	}
	return RoleDefinition{ID: a.ID, Name: a.Name, Type: a.Type, RoleName: p.RoleName, RoleType: rt,
		Description: p.Description, Permissions: p.Permissions, AssignableScopes: p.AssignableScopes,
		CreatedOn: p.CreatedOn, UpdatedOn: p.UpdatedOn, CreatedBy: p.CreatedBy, UpdatedBy: p.UpdatedBy, SystemData: a.SystemData}
}

// ParseRoleDefinitions reads role definitions in any of the shapes Azure
// tools produce: the array `az role definition list` prints, one object of
// `az role definition show`, an ARM object ({"id", "name", "properties":
// {...}}) or an ARM list ({"value": [...]}, flat or ARM elements). Fields
// are checked strictly; errors carry the JSON path ("[3].permissions[0].actions").
// The definitions are normalized (Normalize) but not validated: built-in
// exports do not satisfy the custom-role rules of Validate.
func ParseRoleDefinitions(data []byte) ([]RoleDefinition, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("parse role definitions: empty document")
	}
	var raws []json.RawMessage
	prefix := ""
	switch data[0] {
	case '[':
		if err := strictjson.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("parse role definitions: %w", err)
		}
	case '{':
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("parse role definitions: %w", strictjson.Errorf("", "malformed JSON: %v", err))
		}
		if v, ok := probe["value"]; ok && probe["roleName"] == nil && probe["properties"] == nil {
			if err := strictjson.Unmarshal(v, &raws); err != nil {
				return nil, fmt.Errorf("parse role definitions: %w", prefixed("value", err))
			}
			prefix = "value"
		} else {
			d, err := parseOneDefinition(data)
			if err != nil {
				return nil, fmt.Errorf("parse role definitions: %w", err)
			}
			return []RoleDefinition{d}, nil
		}
	default:
		return nil, fmt.Errorf("parse role definitions: %w", strictjson.Errorf("", "must be an array or an object"))
	}
	out := make([]RoleDefinition, 0, len(raws))
	for i, raw := range raws {
		d, err := parseOneDefinition(raw)
		if err != nil {
			return nil, fmt.Errorf("parse role definitions: %w", prefixed(strictjson.Index(prefix, i), err))
		}
		out = append(out, d)
	}
	return out, nil
}

func parseOneDefinition(data []byte) (RoleDefinition, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return RoleDefinition{}, strictjson.Errorf("", "must be an object")
	}
	if _, ok := probe["properties"]; ok {
		var a armRoleDefinition
		if err := strictjson.Unmarshal(data, &a); err != nil {
			return RoleDefinition{}, err
		}
		d := a.flat()
		d.Normalize()
		return d, nil
	}
	var d RoleDefinition
	if err := strictjson.Unmarshal(data, &d); err != nil {
		return RoleDefinition{}, err
	}
	d.Normalize()
	return d, nil
}

// prefixed puts path in front of a *strictjson.FieldError's path.
func prefixed(path string, err error) error {
	if fe, ok := err.(*strictjson.FieldError); ok {
		p := fe.Path
		switch {
		case p == "":
			p = path
		case strings.HasPrefix(p, "["):
			p = path + p
		default:
			p = strictjson.Join(path, p)
		}
		return &strictjson.FieldError{Path: p, Message: fe.Message}
	}
	return err
}

// Normalize fills the id from the name (and the name from the id), the ARM
// type, and empty permission lists, the way Azure prints them.
func (d *RoleDefinition) Normalize() {
	if d.Name == "" && d.ID != "" {
		d.Name = d.ID[strings.LastIndexByte(d.ID, '/')+1:]
	}
	if d.ID == "" && d.Name != "" {
		d.ID = definitionPrefix + d.Name
	}
	if d.Type == "" {
		d.Type = roleTypeName
	}
	if d.RoleType == "" {
		d.RoleType = CustomRole
	}
	for i := range d.Permissions {
		p := &d.Permissions[i]
		for _, l := range []*[]string{&p.Actions, &p.NotActions, &p.DataActions, &p.NotDataActions} {
			if *l == nil {
				*l = []string{}
			}
		}
	}
}

// Validate checks a custom role definition the way Azure does on create:
// a GUID name, a role name, at least one permission block with at least
// one action or data action, well-formed action strings, and at least one
// assignable scope that is a clean absolute path, with at most one
// management group. Errors carry the JSON path of the field.
func (d *RoleDefinition) Validate() error {
	if !isGUID(d.Name) {
		return strictjson.Errorf("name", "not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
	}
	if !strings.EqualFold(d.ID[strings.LastIndexByte(d.ID, '/')+1:], d.Name) {
		return strictjson.Errorf("id", "must end in the role's name %q", d.Name)
	}
	if strings.TrimSpace(d.RoleName) == "" {
		return strictjson.Errorf("roleName", "required")
	}
	if len(d.RoleName) > 512 {
		return strictjson.Errorf("roleName", "must be at most 512 characters")
	}
	switch d.RoleType {
	case CustomRole, BuiltInRole:
	default:
		return strictjson.Errorf("roleType", "must be CustomRole or BuiltInRole")
	}
	if len(d.Permissions) == 0 {
		return strictjson.Errorf("permissions", "at least one permission block is required")
	}
	for i, p := range d.Permissions {
		if err := p.validate(strictjson.Index("permissions", i)); err != nil {
			return err
		}
	}
	if len(d.AssignableScopes) == 0 {
		return strictjson.Errorf("assignableScopes", "at least one scope is required")
	}
	mgs := 0
	for i, s := range d.AssignableScopes {
		if err := checkScope(s); err != nil {
			return strictjson.Errorf(strictjson.Index("assignableScopes", i), "%v", err)
		}
		if isManagementGroup(s) {
			mgs++
			if mgs > 1 {
				return strictjson.Errorf(strictjson.Index("assignableScopes", i), "at most one management group may be an assignable scope")
			}
		}
	}
	return nil
}

func (p *Permission) validate(path string) error {
	if len(p.Actions) == 0 && len(p.DataActions) == 0 {
		return strictjson.Errorf(path, "at least one action or data action is required")
	}
	lists := []struct {
		name string
		list []string
	}{{"actions", p.Actions}, {"notActions", p.NotActions}, {"dataActions", p.DataActions}, {"notDataActions", p.NotDataActions}}
	for _, l := range lists {
		for i, a := range l.list {
			if err := checkAction(a); err != nil {
				return strictjson.Errorf(strictjson.Index(strictjson.Join(path, l.name), i), "%v", err)
			}
		}
	}
	if p.Condition != "" && p.ConditionVersion != "" && p.ConditionVersion != "1.0" && p.ConditionVersion != "2.0" {
		return strictjson.Errorf(strictjson.Join(path, "conditionVersion"), "must be 1.0 or 2.0")
	}
	if p.Condition == "" && p.ConditionVersion != "" {
		return strictjson.Errorf(strictjson.Join(path, "conditionVersion"), "set without a condition")
	}
	return nil
}

// checkAction accepts "*" and {Provider}/{path...} strings of printable
// characters without spaces, where "*" may stand for any part.
func checkAction(a string) error {
	if a == "" {
		return fmt.Errorf("empty action")
	}
	if len(a) > 512 {
		return fmt.Errorf("action longer than 512 characters")
	}
	for _, c := range a {
		if c <= ' ' || c == 0x7f || c == '\\' || c == '"' || c == '?' {
			return fmt.Errorf("action %q contains %q", a, c)
		}
	}
	if a == "*" || strings.HasPrefix(a, "*/") {
		return nil
	}
	provider, rest, ok := strings.Cut(a, "/")
	if !ok || provider == "" || rest == "" {
		return fmt.Errorf("action %q is not {Provider}/{resourceType}/{operation} (or \"*\")", a)
	}
	if strings.Contains(a, "//") {
		return fmt.Errorf("action %q has an empty segment", a)
	}
	return nil
}

func isManagementGroup(scope string) bool {
	return strings.HasPrefix(strings.ToLower(scope), "/providers/microsoft.management/managementgroups/")
}

// checkScope accepts "/" and absolute paths without empty, "." or ".."
// segments or a trailing slash.
func checkScope(s string) error {
	if s == "/" {
		return nil
	}
	if !strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return fmt.Errorf("scope %q must be an absolute path such as / or /subscriptions/{id}", s)
	}
	if strings.ContainsAny(s, "\x00\\ ") {
		return fmt.Errorf("scope %q contains a forbidden character", s)
	}
	for _, seg := range strings.Split(s[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("scope %q has an empty, . or .. segment", s)
		}
	}
	return nil
}

// CanAssignAt reports whether the role may be assigned at scope: at one of
// its AssignableScopes or below (path segments, case-insensitive). "/"
// covers every scope. A management group's subscriptions are not below it
// by path; Engine.CanAssignAt also follows Options.Hierarchy.
func (d *RoleDefinition) CanAssignAt(scope string) bool {
	for _, s := range d.AssignableScopes {
		if ScopeContains(s, scope) {
			return true
		}
	}
	return false
}

// ScopeContains reports whether scope inner is outer or below it, comparing
// path segments case-insensitively ("/a/b" contains "/a/B/c" but not "/a/bc").
func ScopeContains(outer, inner string) bool {
	outer = strings.TrimSuffix(outer, "/")
	if outer == "" {
		return strings.HasPrefix(inner, "/")
	}
	if len(inner) < len(outer) || !strings.EqualFold(inner[:len(outer)], outer) {
		return false
	}
	return len(inner) == len(outer) || inner[len(outer)] == '/'
}

// IsOwner reports whether ref names the built-in Owner role (by GUID, ARM
// id or name). The admin API's built-in check grants write access only to
// Owner at "/" and read access only to Reader there.
func IsOwner(ref string) bool {
	r, ok := LookupRole(ref)
	return ok && strings.EqualFold(r.Name, OwnerID)
}

// IsReader reports whether ref names the built-in Reader role.
func IsReader(ref string) bool {
	r, ok := LookupRole(ref)
	return ok && strings.EqualFold(r.Name, ReaderID)
}
