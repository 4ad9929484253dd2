package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// customRole adapts a custom role definition to the collection handlers.
// Its id in the API is the GUID (`name` in Azure's shape).
type customRole struct{ rbac.RoleDefinition }

func (r *customRole) ObjectID() string      { return r.Name }
func (r *customRole) SetObjectID(id string) { r.Name = id }
func (r *customRole) SetCreatedDateTime(t time.Time) {
	r.CreatedOn = t.UTC().Format(time.RFC3339)
	r.UpdatedOn = r.CreatedOn
}
func (r *customRole) SetModifiedDateTime(t time.Time) { r.UpdatedOn = t.UTC().Format(time.RFC3339) }
func (r *customRole) Normalize() {
	r.RoleType = rbac.CustomRole
	r.RoleDefinition.Normalize()
}
func (r *customRole) Validate() error {
	if _, builtin := rbac.LookupRole(r.RoleName); builtin {
		return strictjson.Errorf("roleName", "%q is the name of a built-in role", r.RoleName)
	}
	if _, builtin := rbac.LookupRole(r.Name); builtin {
		return strictjson.Errorf("name", "%s is the id of a built-in role", r.Name)
	}
	return r.RoleDefinition.Validate()
}

func customRoleKind() resourceKind {
	return resourceKind{
		kind:      rbac.DefinitionKind,
		action:    "roleDefinitions",
		operation: "Microsoft.Authorization/roleDefinitions",
		scope:     "/",
		decode: func(body []byte) (directory.Resource, error) {
			defs, err := rbac.ParseRoleDefinitions(body)
			if err != nil {
				return nil, err
			}
			if len(defs) != 1 {
				return nil, strictjson.Errorf("", "one role definition per request")
			}
			return &customRole{defs[0]}, nil
		},
		object: func(r directory.Resource) (store.Object, error) {
			c, ok := r.(*customRole)
			if !ok {
				return store.Object{}, fmt.Errorf("encode role definition: got %T", r)
			}
			body, err := json.Marshal(c.RoleDefinition)
			if err != nil {
				return store.Object{}, err
			}
			return store.Object{Kind: rbac.DefinitionKind, ID: c.Name, Key: strings.ToLower(c.RoleName), Body: body}, nil
		},
		view: func(r directory.Resource) any { return r.(*customRole).RoleDefinition },
	}
}

// denyResource adapts a deny assignment to the collection handlers.
type denyResource struct{ rbac.DenyAssignment }

func (d *denyResource) ObjectID() string               { return d.ID }
func (d *denyResource) SetObjectID(id string)          { d.ID = id }
func (d *denyResource) SetCreatedDateTime(t time.Time) {}
func (d *denyResource) Normalize()                     { d.ID = strings.ToLower(d.ID) }
func (d *denyResource) Validate() error                { return d.DenyAssignment.Validate() }

func denyKind() resourceKind {
	return resourceKind{
		kind:      rbac.DenyKind,
		action:    "denyAssignments",
		operation: "Microsoft.Authorization/denyAssignments",
		scope:     "/",
		decode: func(body []byte) (directory.Resource, error) {
			d, err := rbac.ParseDenyAssignment(body)
			if err != nil {
				return nil, err
			}
			return &denyResource{d}, nil
		},
		object: func(r directory.Resource) (store.Object, error) {
			d, ok := r.(*denyResource)
			if !ok {
				return store.Object{}, fmt.Errorf("encode deny assignment: got %T", r)
			}
			body, err := json.Marshal(d.DenyAssignment)
			if err != nil {
				return store.Object{}, err
			}
			return store.Object{Kind: rbac.DenyKind, ID: d.ID, Body: body}, nil
		},
		view: func(r directory.Resource) any { return r.(*denyResource).DenyAssignment },
	}
}

// checkRoleExists makes sure an assignment names a built-in role or a
// stored custom one.
func checkRoleExists(ctx context.Context, tx store.Reader, a *rbac.Assignment) error {
	if _, ok := rbac.LookupRole(a.RoleDefinitionID); ok {
		return nil
	}
	if _, err := tx.Get(ctx, rbac.DefinitionKind, a.RoleGUID()); errors.Is(err, store.ErrNotFound) {
		return invalid(strictjson.Errorf("roleDefinitionId", "no built-in or custom role %s", a.RoleDefinitionID))
	} else if err != nil {
		return err
	}
	return nil
}

// roleInUse refuses to delete a custom role that assignments still use.
func roleInUse(ctx context.Context, r store.Reader, id string) error {
	return store.Each(ctx, r, rbac.Kind, func(o store.Object) error {
		var a rbac.Assignment
		if err := json.Unmarshal(o.Body, &a); err != nil {
			return err
		}
		if a.RoleGUID() == id {
			return problemf(http.StatusConflict, CodeConflict, "role assignment %s uses this role; delete it first", a.ID)
		}
		return nil
	})
}
