package access

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/strictjson"
)

// Principals is what the engine needs to know about a user: transitive
// group memberships and directory roles (template ids), each sorted, and
// whether the user is a guest. Implementations must not allocate in these
// methods: Request.Resolve calls them on the hot path. *directory.Snapshot
// serves it through SnapshotPrincipals; a StaticDirectory serves offline
// tools and tests.
type Principals interface {
	TransitiveMemberOf(id string) []string
	DirectoryRoles(id string) []string
	IsGuest(id string) bool
}

// PrincipalLookup is an optional method of a Principals that answers all
// three questions with one lookup; Resolve prefers it to the three
// methods.
type PrincipalLookup interface {
	Principal(id string) (groups, roles []string, guest bool)
}

// PrincipalLookupAt is an optional method of a Principals whose directory
// roles can come through time-bound assignments (an activation of
// Privileged Identity Management): PrincipalAt answers as Principal, with
// the roles in force at now (a zero now is the current time). Resolve
// prefers it to everything else, with Request.Now, so that a role that
// lapsed a moment ago no longer counts. *directory.Snapshot serves it.
type PrincipalLookupAt interface {
	PrincipalAt(id string, now time.Time) (groups, roles []string, guest bool)
}

// SnapshotPrincipals adapts a directory snapshot to Principals.
type SnapshotPrincipals struct{ *directory.Snapshot }

// IsGuest reports whether id is a user whose userType is Guest.
func (s SnapshotPrincipals) IsGuest(id string) bool {
	u, ok := s.User(id)
	return ok && u.IsGuest()
}

var (
	_ Principals        = SnapshotPrincipals{}
	_ PrincipalLookupAt = SnapshotPrincipals{}
)

// StaticDirectory is a small, fixed directory read from JSON, for the CLI
// and for tests:
//
//	{"users":  [{"id": "...", "userType": "Guest", "memberOf": ["<group id>"], "roles": ["<role template id>"]}],
//	 "groups": [{"id": "...", "memberOf": ["<group id>"]}]}
//
// memberOf lists direct memberships; the directory computes the transitive
// ones (nested groups), as Entra does.
type StaticDirectory struct {
	users map[string]*staticUser
}

type staticUser struct {
	guest      bool
	transitive []string
	roles      []string
}

type staticDirectoryJSON struct {
	Users []struct {
		ID       string   `json:"id"`
		UserType string   `json:"userType,omitempty"`
		MemberOf []string `json:"memberOf,omitempty"`
		Roles    []string `json:"roles,omitempty"`
	} `json:"users"`
	Groups []struct {
		ID       string   `json:"id"`
		MemberOf []string `json:"memberOf,omitempty"`
	} `json:"groups,omitempty"`
}

// ParseStaticDirectory reads a StaticDirectory. Ids must be GUIDs; groups a
// user or group names need not be listed under "groups" unless they are
// nested.
//
// A Graph list of users also reads as a directory, as
// `GET /users?$expand=memberOf` (or transitiveMemberOf) answers it:
// {"value": [{"id", "userType", "memberOf": [{"@odata.type":
// "#microsoft.graph.group", "id"}, {"@odata.type":
// "#microsoft.graph.directoryRole", "roleTemplateId"}, ...]}, ...]}; other
// user properties are ignored there.
func ParseStaticDirectory(data []byte) (*StaticDirectory, error) {
	var doc staticDirectoryJSON
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) == nil && probe["value"] != nil && probe["users"] == nil {
		var err error
		if doc, err = graphUsers(probe["value"]); err != nil {
			return nil, fmt.Errorf("parse static directory: %w", err)
		}
	} else if err := strictjson.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse static directory: %w", err)
	}
	parents := map[string][]string{}
	for i, g := range doc.Groups {
		path := strictjson.Index("groups", i)
		if err := firstError(checkGUID(strictjson.Join(path, "id"), g.ID), checkIDs(strictjson.Join(path, "memberOf"), g.MemberOf)); err != nil {
			return nil, fmt.Errorf("parse static directory: %w", err)
		}
		parents[strings.ToLower(g.ID)] = lowerAll(g.MemberOf)
	}
	d := &StaticDirectory{users: make(map[string]*staticUser, len(doc.Users))}
	for i, u := range doc.Users {
		path := strictjson.Index("users", i)
		if err := firstError(
			checkGUID(strictjson.Join(path, "id"), u.ID),
			optionalEnum(strictjson.Join(path, "userType"), u.UserType, []string{directory.UserTypeMember, directory.UserTypeGuest}),
			checkIDs(strictjson.Join(path, "memberOf"), u.MemberOf),
			checkIDs(strictjson.Join(path, "roles"), u.Roles),
		); err != nil {
			return nil, fmt.Errorf("parse static directory: %w", err)
		}
		// Breadth-first over parents; seen stops cycles.
		seen := map[string]bool{}
		queue := lowerAll(u.MemberOf)
		for len(queue) > 0 {
			g := queue[0]
			queue = queue[1:]
			if seen[g] {
				continue
			}
			seen[g] = true
			queue = append(queue, parents[g]...)
		}
		su := &staticUser{guest: u.UserType == directory.UserTypeGuest, roles: lowerAll(u.Roles)}
		for g := range seen {
			su.transitive = append(su.transitive, g)
		}
		slices.Sort(su.transitive)
		slices.Sort(su.roles)
		d.users[strings.ToLower(u.ID)] = su
	}
	return d, nil
}

// TransitiveMemberOf implements Principals.
func (d *StaticDirectory) TransitiveMemberOf(id string) []string {
	if u := d.users[id]; u != nil {
		return u.transitive
	}
	return nil
}

// DirectoryRoles implements Principals.
func (d *StaticDirectory) DirectoryRoles(id string) []string {
	if u := d.users[id]; u != nil {
		return u.roles
	}
	return nil
}

// Principal implements PrincipalLookup.
func (d *StaticDirectory) Principal(id string) (groups, roles []string, guest bool) {
	if u := d.users[id]; u != nil {
		return u.transitive, u.roles, u.guest
	}
	return nil, nil, false
}

// IsGuest implements Principals.
func (d *StaticDirectory) IsGuest(id string) bool {
	u := d.users[id]
	return u != nil && u.guest
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// graphUsers converts a Graph user list with expanded memberOf or
// transitiveMemberOf into the static shape: groups become memberOf,
// directory roles become roles (by template id).
func graphUsers(raw json.RawMessage) (staticDirectoryJSON, error) {
	var users []struct {
		ID                 string            `json:"id"`
		UserType           string            `json:"userType"`
		MemberOf           []json.RawMessage `json:"memberOf"`
		TransitiveMemberOf []json.RawMessage `json:"transitiveMemberOf"`
	}
	var doc staticDirectoryJSON
	if err := json.Unmarshal(raw, &users); err != nil {
		return doc, strictjson.Errorf("value", "must be an array of Graph users")
	}
	for i, u := range users {
		var groups, roles []string
		refs := append(u.MemberOf, u.TransitiveMemberOf...)
		for j, r := range refs {
			var ref struct {
				Type           string `json:"@odata.type"`
				ID             string `json:"id"`
				RoleTemplateID string `json:"roleTemplateId"`
			}
			var id string
			if json.Unmarshal(r, &id) == nil {
				groups = append(groups, id)
				continue
			}
			if err := json.Unmarshal(r, &ref); err != nil {
				return doc, strictjson.Errorf(strictjson.Index(strictjson.Index("value", i)+".memberOf", j), "must be a group id or a directory object")
			}
			switch ref.Type {
			case "#microsoft.graph.directoryRole":
				if ref.RoleTemplateID != "" {
					roles = append(roles, ref.RoleTemplateID)
				}
			case "#microsoft.graph.administrativeUnit":
				// not a group: conditional access does not target them
			default:
				groups = append(groups, ref.ID)
			}
		}
		doc.Users = append(doc.Users, struct {
			ID       string   `json:"id"`
			UserType string   `json:"userType,omitempty"`
			MemberOf []string `json:"memberOf,omitempty"`
			Roles    []string `json:"roles,omitempty"`
		}{ID: u.ID, UserType: u.UserType, MemberOf: slices.Compact(slices.Sorted(slices.Values(groups))), Roles: roles})
	}
	return doc, nil
}
