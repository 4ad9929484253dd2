package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// resourceKind adapts one stored kind to the generic collection handlers.
type resourceKind struct {
	kind   string // store kind
	action string // audit action prefix, e.g. "users"
	// decode parses a request body strictly (not yet normalised).
	decode func(body []byte) (directory.Resource, error)
	// object encodes a resource for the store.
	object func(r directory.Resource) (store.Object, error)
	// view is what a client sees of a stored resource.
	view func(r directory.Resource) any
	// byKey lets {id} also be the natural key (users by UPN).
	byKey bool
	// operation prefixes the RBAC actions of the collection
	// ("Verity.Directory/users" → .../read, .../write, .../delete);
	// scope is the collection's RBAC scope ("/directory/users").
	operation, scope string
	// objectScope, when set, is where writing an object is authorised: a
	// role assignment at /apps/payroll needs roleAssignments/write there,
	// as in Azure, not at the collection.
	objectScope func(directory.Resource) string
}

func directoryKind(d directory.Descriptor, byKey bool, operation, scope string) resourceKind {
	action := d.Collection()
	if d.Name() == directory.KindRoleAssignment {
		action = "directoryRoleAssignments" // Graph's collection name is shared with Verity's RBAC assignments
	}
	return resourceKind{
		kind:   d.Name(),
		action: action,
		decode: d.DecodeResource,
		object: d.ObjectOf,
		view: func(r directory.Resource) any {
			if g, ok := r.(*directory.Group); ok {
				return g.GraphView()
			}
			return r
		},
		byKey:     byKey,
		operation: operation,
		scope:     scope,
	}
}

// collection registers list, create, get, update and delete for a kind at base.
func (s *Server) collection(base string, k resourceKind) {
	read, write, del := allow(k.operation+"/read", k.scope), allow(k.operation+"/write", k.scope), allow(k.operation+"/delete", k.scope)
	one := func(p Perm) Perm { p.Scope += "/{id}"; return p }
	if k.objectScope != nil {
		write = Perm{Action: k.operation + "/write", Scope: "(the object's scope)", InHandler: true}
		del = Perm{Action: k.operation + "/delete", Scope: "(the object's scope)", InHandler: true}
		one = func(p Perm) Perm {
			if !p.InHandler {
				p.Scope += "/{id}"
			}
			return p
		}
	}
	s.handle(http.MethodGet, base, k.action+".list", read, s.listObjects(k))
	s.handle(http.MethodPost, base, k.action+".create", write, s.createObject(k))
	s.handle(http.MethodGet, base+"/{id}", k.action+".get", one(read), s.getObject(k))
	s.handle(http.MethodPatch, base+"/{id}", k.action+".update", one(write), s.updateObject(k))
	s.handle(http.MethodDelete, base+"/{id}", k.action+".delete", one(del), s.deleteObject(k))
}

const maxPage = 999

func (s *Server) listObjects(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		top := 100
		if v := r.URL.Query().Get("$top"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPage {
				return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be an integer between 1 and 999", Target: "$top"}
			}
			top = n
		}
		after := r.URL.Query().Get("$skiptoken")
		if after != "" && !opaqueID.MatchString(after) {
			return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "not a valid paging token", Target: "$skiptoken"}
		}
		objs, err := s.opts.Store.List(r.Context(), k.kind, store.ListOptions{AfterID: after, Limit: top})
		if err != nil {
			return err
		}
		out := make([]any, 0, len(objs))
		for _, o := range objs {
			v, err := k.decode(o.Body)
			if err != nil {
				return err
			}
			out = append(out, k.view(v))
		}
		resp := map[string]any{"value": out}
		if len(objs) == top {
			resp["@odata.nextLink"] = r.URL.Path + "?$top=" + strconv.Itoa(top) + "&$skiptoken=" + objs[len(objs)-1].ID
		}
		return writeJSON(w, http.StatusOK, resp)
	}
}

func (s *Server) createObject(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return invalid(err)
		}
		if err := rejectBinds(body); err != nil {
			return err
		}
		res, err := k.decode(body)
		if err != nil {
			return invalid(err)
		}
		if res.ObjectID() == "" {
			res.SetObjectID(directory.NewID())
		}
		if app, ok := res.(*directory.Application); ok && app.AppID == "" {
			app.AppID = directory.NewID() // Graph assigns the appId of a new registration
		}
		res.SetCreatedDateTime(time.Now())
		res.Normalize()
		if err := res.Validate(); err != nil {
			return invalid(err)
		}
		if k.objectScope != nil {
			if err := s.require(r.Context(), s.opts.Live.Current(), c, k.operation+"/write", k.objectScope(res)); err != nil {
				return err
			}
		}
		// What the audit record says of the new object (its change record
		// is written in the transaction, from these details).
		c.details = auditedProperties(res)
		var obj store.Object
		rev, err := s.opts.Store.Update(r.Context(), func(ctx context.Context, tx store.Tx) error {
			if err := checkIDFree(ctx, tx, k.kind, res.ObjectID()); err != nil {
				return err
			}
			if err := checkReferences(ctx, tx, res); err != nil {
				return err
			}
			var err error
			if obj, err = k.object(res); err != nil {
				return err
			}
			return tx.Create(ctx, obj)
		})
		if err != nil {
			return err
		}
		c.revision = rev
		c.details["id"] = obj.ID
		w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+obj.ID)
		w.Header().Set("ETag", etag(rev))
		return writeJSON(w, http.StatusCreated, k.view(res))
	}
}

// find loads the object named by the {id} path value: an id, or for kinds
// with byKey, the natural key (a userPrincipalName).
func find(ctx context.Context, r store.Reader, k resourceKind, id string) (store.Object, error) {
	switch {
	case directory.IsGUID(id):
		return r.Get(ctx, k.kind, strings.ToLower(id))
	case k.byKey && id != "":
		return r.GetByKey(ctx, k.kind, strings.ToLower(id))
	case opaqueID.MatchString(id):
		// Graph gives some objects (directory role assignments) opaque,
		// case-sensitive ids; imports keep them.
		return r.Get(ctx, k.kind, id)
	}
	return store.Object{}, &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no " + k.kind + " " + strconv.Quote(id), Target: "id"}
}

// opaqueID is the shape of ids that are not GUIDs but safe to look up.
var opaqueID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func (s *Server) getObject(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		obj, err := find(r.Context(), s.opts.Store, k, r.PathValue("id"))
		if err != nil {
			return notFound(err, k, r.PathValue("id"))
		}
		res, err := k.decode(obj.Body)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", etag(obj.Revision))
		return writeJSON(w, http.StatusOK, k.view(res))
	}
}

// updateObject applies a Graph-style PATCH: the properties present replace
// the stored ones, null removes one, id and createdDateTime never change.
// If-Match with an ETag from a GET makes the update conditional.
func (s *Server) updateObject(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		var patch map[string]json.RawMessage
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return invalid(err)
		}
		if err := json.Unmarshal(body, &patch); err != nil || patch == nil {
			return invalid(strictjson.Errorf("", "the body must be a JSON object of properties to change"))
		}
		ifRev, err := parseIfMatch(r.Header.Get("If-Match"))
		if err != nil {
			return err
		}
		var id, disabled string
		rev, err := s.opts.Store.Update(r.Context(), func(ctx context.Context, tx store.Tx) error {
			obj, err := findCurrent(ctx, tx, k, r.PathValue("id"), ifRev)
			if err != nil {
				return err
			}
			var merged map[string]json.RawMessage
			if err := json.Unmarshal(obj.Body, &merged); err != nil {
				return err
			}
			for key, v := range patch {
				switch key {
				case "id", "createdDateTime", "modifiedDateTime", "deletedDateTime":
					if string(v) != string(merged[key]) {
						return invalid(strictjson.Errorf(key, "is read-only"))
					}
				}
				if string(v) == "null" {
					delete(merged, key)
				} else {
					merged[key] = v
				}
			}
			mb, err := json.Marshal(merged)
			if err != nil {
				return err
			}
			res, err := k.decode(mb)
			if err != nil {
				return invalid(err)
			}
			if m, ok := res.(interface{ SetModifiedDateTime(time.Time) }); ok {
				m.SetModifiedDateTime(time.Now())
			}
			res.Normalize()
			if err := res.Validate(); err != nil {
				return invalid(err)
			}
			if err := checkReferences(ctx, tx, res); err != nil {
				return err
			}
			if k.objectScope != nil {
				old, err := k.decode(obj.Body)
				if err != nil {
					return err
				}
				for _, scope := range []string{k.objectScope(old), k.objectScope(res)} {
					if err := s.require(ctx, s.opts.Live.Current(), c, k.operation+"/write", scope); err != nil {
						return err
					}
				}
			}
			if u, ok := res.(*directory.User); ok && !u.Enabled() {
				disabled = obj.ID
			}
			updated, err := k.object(res)
			if err != nil {
				return err
			}
			updated.ManagedBy = obj.ManagedBy
			id = obj.ID
			if err := tx.Update(ctx, updated, obj.Revision); err != nil {
				return err
			}
			return guardOwners(ctx, tx, k.kind)
		})
		if err != nil {
			return err
		}
		if disabled != "" {
			// A disabled account keeps no session to come back to.
			if err := s.opts.Store.DeletePrincipalTokens(r.Context(), disabled); err != nil {
				s.log.Warn("disable: cannot revoke tokens", "requestId", c.requestID, "id", disabled, "err", err)
			}
		}
		c.revision = rev
		c.details = map[string]any{"id": id}
		w.Header().Set("ETag", etag(rev))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) deleteObject(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		ifRev, err := parseIfMatch(r.Header.Get("If-Match"))
		if err != nil {
			return err
		}
		var id string
		rev, err := s.opts.Store.Update(r.Context(), func(ctx context.Context, tx store.Tx) error {
			obj, err := findCurrent(ctx, tx, k, r.PathValue("id"), ifRev)
			if err != nil {
				return err
			}
			if k.objectScope != nil {
				stored, err := k.decode(obj.Body)
				if err != nil {
					return err
				}
				if err := s.require(ctx, s.opts.Live.Current(), c, k.operation+"/delete", k.objectScope(stored)); err != nil {
					return err
				}
			}
			id = obj.ID
			if obj.ID == c.principal {
				return problemf(http.StatusConflict, CodeConflict, "you cannot delete the account you are signed in with")
			}
			if err := tx.Delete(ctx, k.kind, obj.ID); err != nil {
				return err
			}
			if slices.Contains(principalKinds, k.kind) {
				if err := removeReferences(ctx, tx, obj.ID); err != nil {
					return err
				}
			}
			if k.kind == directory.KindNamedLocation {
				if err := locationInUse(ctx, tx, obj.ID); err != nil {
					return err
				}
			}
			if k.kind == rbac.DefinitionKind {
				if err := roleInUse(ctx, tx, obj.ID); err != nil {
					return err
				}
			}
			return guardOwners(ctx, tx, k.kind)
		})
		if err != nil {
			return err
		}
		if k.kind == directory.KindUser || k.kind == directory.KindServicePrincipal {
			// The principal is gone: nothing it signed in with may outlive it.
			if err := s.opts.Store.DeletePrincipalTokens(r.Context(), id); err != nil {
				s.log.Warn("delete: cannot revoke tokens", "requestId", c.requestID, "id", id, "err", err)
			}
			if err := s.opts.Store.DeleteCredentials(r.Context(), id); err != nil {
				s.log.Warn("delete: cannot remove credentials", "requestId", c.requestID, "id", id, "err", err)
			}
			if k.kind == directory.KindUser {
				if err := signin.ForgetUser(r.Context(), s.opts.Store, id); err != nil {
					s.log.Warn("delete: cannot remove sign-in records", "requestId", c.requestID, "id", id, "err", err)
				}
			}
		}
		c.revision = rev
		c.details = map[string]any{"id": id}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// findCurrent is find for a write: a missing object is a 404, and with an
// If-Match revision (ifRev > 0) a changed one is a 412.
func findCurrent(ctx context.Context, r store.Reader, k resourceKind, id string, ifRev int64) (store.Object, error) {
	obj, err := find(ctx, r, k, id)
	if err != nil {
		return obj, notFound(err, k, id)
	}
	if ifRev > 0 && obj.Revision != ifRev {
		return obj, problemf(http.StatusPreconditionFailed, CodePreconditionFailed, "the resource changed since ETag %s; read it again", etag(ifRev))
	}
	return obj, nil
}

func notFound(err error, k resourceKind, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no " + k.kind + " " + strconv.Quote(id), Err: err}
	}
	return err
}

func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return problemf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type must be application/json, not %q", ct)
	}
	return nil
}

func etag(rev int64) string { return `W/"` + strconv.FormatInt(rev, 10) + `"` }

func parseIfMatch(v string) (int64, error) {
	if v == "" || v == "*" {
		return 0, nil
	}
	t := strings.TrimPrefix(strings.TrimSpace(v), "W/")
	n, err := strconv.ParseInt(strings.Trim(t, `"`), 10, 64)
	if err != nil || n < 1 {
		return 0, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "If-Match must be an ETag returned by this API", Target: "If-Match"}
	}
	return n, nil
}

// auditedProperties are the properties of a new object its audit record
// names, for those who read the log (and for detection: who was given
// which role, which account was made): the account's name, the role
// assignment's principal, role and scope. Never a secret.
func auditedProperties(res directory.Resource) map[string]any {
	d := map[string]any{"id": res.ObjectID()}
	switch v := res.(type) {
	case *directory.User:
		d["userPrincipalName"] = v.UserPrincipalName
	case *directory.RoleAssignment:
		d["principalId"], d["roleDefinitionId"], d["directoryScopeId"] = v.PrincipalID, v.RoleDefinitionID, v.DirectoryScopeID
		if role, ok := directory.RoleByID(v.RoleDefinitionID); ok {
			d["roleDefinitionName"] = role.DisplayName
		}
		auditedWindow(d, v.StartDateTime, v.EndDateTime, v.AssignmentType)
	case *rbac.Assignment:
		d["principalId"], d["principalType"], d["roleDefinitionId"], d["scope"] = v.PrincipalID, v.PrincipalType, v.RoleDefinitionID, v.Scope
		if role, ok := rbac.LookupRole(v.RoleDefinitionID); ok {
			d["roleDefinitionName"] = role.RoleName
		}
		auditedWindow(d, v.StartDateTime, v.EndDateTime, v.AssignmentType)
	}
	return d
}

// auditedWindow adds a time-bound assignment's window and type to its
// audit details: a reviewer must see that a grant ends, and when.
func auditedWindow(d map[string]any, start, end *time.Time, assignmentType string) {
	if start != nil {
		d["startDateTime"] = start.UTC().Format(time.RFC3339Nano)
	}
	if end != nil {
		d["endDateTime"] = end.UTC().Format(time.RFC3339Nano)
	}
	if assignmentType != "" {
		d["assignmentType"] = assignmentType
	}
}
