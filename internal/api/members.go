package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// refBody is Graph's reference body: {"@odata.id": ".../directoryObjects/{id}"}.
var refID = regexp.MustCompile(`(?i)(?:^|/)(?:directoryObjects|users|groups|servicePrincipals)/?\(?'?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'?\)?$`)

func (s *Server) addMember(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return invalid(err)
	}
	var ref map[string]any
	if err := json.Unmarshal(body, &ref); err != nil || ref == nil {
		return invalid(strictjson.Errorf("", `the body must be {"@odata.id": "https://.../directoryObjects/{id}"}`))
	}
	for k := range ref {
		if k != "@odata.id" {
			return invalid(strictjson.Errorf(k, "unknown field"))
		}
	}
	raw, _ := ref["@odata.id"].(string)
	m := refID.FindStringSubmatch(raw)
	if m == nil {
		return invalid(strictjson.Errorf("@odata.id", "must be a URL ending in /directoryObjects/{id}"))
	}
	member := strings.ToLower(m[1])
	return s.changeMembers(w, r, c, member, func(g *directory.Group) error {
		if slices.Contains(g.Members, member) {
			return problemf(http.StatusConflict, CodeConflict, "%s is already a member of the group", member)
		}
		g.Members = append(g.Members, member)
		return nil
	})
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, c *call) error {
	member := strings.ToLower(r.PathValue("member"))
	return s.changeMembers(w, r, c, member, func(g *directory.Group) error {
		i := slices.Index(g.Members, member)
		if i < 0 {
			return problemf(http.StatusNotFound, CodeNotFound, "%s is not a member of the group", member)
		}
		g.Members = slices.Delete(g.Members, i, i+1)
		return nil
	})
}

func (s *Server) changeMembers(w http.ResponseWriter, r *http.Request, c *call, member string, change func(*directory.Group) error) error {
	k := directoryKind(directory.Groups, false, "", "")
	rev, err := s.opts.Store.Update(r.Context(), func(ctx context.Context, tx store.Tx) error {
		obj, err := find(ctx, tx, k, r.PathValue("id"))
		if err != nil {
			return notFound(err, k, r.PathValue("id"))
		}
		g, err := directory.Groups.FromObject(obj)
		if err != nil {
			return err
		}
		if err := change(g); err != nil {
			return err
		}
		g.Normalize()
		if err := g.Validate(); err != nil {
			return invalid(err)
		}
		if err := checkReferences(ctx, tx, g); err != nil {
			var p *Problem
			if errors.As(err, &p) && p.Code == CodeInvalidRequest {
				p.Target = "@odata.id" // the only member this request names
			}
			return err
		}
		upd, err := directory.Groups.Object(g)
		if err != nil {
			return err
		}
		upd.ManagedBy = obj.ManagedBy
		if err := tx.Update(ctx, upd, obj.Revision); err != nil {
			return err
		}
		return guardOwners(ctx, tx, directory.KindGroup)
	})
	if err != nil {
		return err
	}
	c.revision = rev
	c.details = map[string]any{"member": member}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fresh returns a snapshot that includes every write committed before the
// call, so a client reads its own writes from the computed views.
func (s *Server) fresh(ctx context.Context) (*decision.Snapshot, error) {
	rev, err := s.opts.Store.Revision(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	snap, err := s.opts.Live.WaitFor(ctx, rev)
	if errors.Is(err, decision.ErrStale) {
		return nil, problemf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the directory snapshot is catching up; retry shortly")
	}
	return snap, err
}

// directoryObject is how Graph lists a member or parent: the object with
// its @odata.type.
func directoryObject(snap *directory.Snapshot, id string) (any, bool) {
	if u, ok := snap.User(id); ok {
		return withType("#microsoft.graph.user", u), true
	}
	if g, ok := snap.Group(id); ok {
		return withType("#microsoft.graph.group", g.GraphView()), true
	}
	if sp, ok := snap.ServicePrincipal(id); ok {
		return withType("#microsoft.graph.servicePrincipal", sp), true
	}
	return nil, false
}

func withType(odataType string, v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["@odata.type"] = odataType
	return m
}

func (s *Server) members(transitive bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		snap, err := s.fresh(r.Context())
		if err != nil {
			return err
		}
		dir := snap.Directory()
		id := strings.ToLower(r.PathValue("id"))
		g, ok := dir.Group(id)
		if !ok {
			return problemf(http.StatusNotFound, CodeNotFound, "no group %q", r.PathValue("id"))
		}
		ids := g.Members
		if transitive {
			ids = dir.TransitiveMembers(id)
		}
		return writeObjects(w, dir, ids)
	}
}

func (s *Server) memberOf(transitive bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		snap, err := s.fresh(r.Context())
		if err != nil {
			return err
		}
		dir := snap.Directory()
		id := strings.ToLower(r.PathValue("id"))
		if u, ok := dir.UserByUPN(id); ok {
			id = u.ID
		}
		if _, ok := directoryObject(dir, id); !ok {
			return problemf(http.StatusNotFound, CodeNotFound, "no directory object %q", r.PathValue("id"))
		}
		ids := dir.MemberOf(id)
		if transitive {
			ids = dir.TransitiveMemberOf(id)
		}
		return writeObjects(w, dir, ids)
	}
}

func writeObjects(w http.ResponseWriter, dir *directory.Snapshot, ids []string) error {
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		if o, ok := directoryObject(dir, id); ok {
			out = append(out, o)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

type passwordRequest struct {
	Password string `json:"password"`
	// RevokeSessions signs the user out everywhere (default true).
	RevokeSessions *bool `json:"revokeSessions,omitempty"`
	// ForceChangePasswordNextSignIn makes the user's next interactive
	// sign-in change the password before it completes (Graph's
	// passwordProfile flag of the same name; default false).
	ForceChangePasswordNextSignIn bool `json:"forceChangePasswordNextSignIn,omitempty"`
}

// setPassword sets a user's password credential (Owner only). The
// password is hashed with argon2id; it never reaches the store, the audit
// record or the log in clear.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request, c *call) error {
	var req passwordRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	policy := s.opts.PasswordPolicy
	if policy.MinLength == 0 {
		policy = authn.DefaultPasswordPolicy()
	}
	if err := policy.Check(req.Password); err != nil {
		if errors.Is(err, authn.ErrBreachedPassword) {
			return invalid(strictjson.Errorf("password", "this password appears in the list of breached passwords; choose another"))
		}
		if policy.BreachedList != nil && !strings.HasPrefix(err.Error(), "password must") {
			return err // the list could not be read: not the caller's fault
		}
		return invalid(strictjson.Errorf("password", "%s", err.Error()))
	}
	k := directoryKind(directory.Users, true, "", "")
	obj, err := find(r.Context(), s.opts.Store, k, r.PathValue("id"))
	if err != nil {
		return notFound(err, k, r.PathValue("id"))
	}
	hash, err := authn.HashPassword(req.Password)
	if err != nil {
		return err
	}
	// A credential is not a directory change: its record is written
	// first, and the password is set only once it is.
	c.details = map[string]any{"id": obj.ID, "forceChangePasswordNextSignIn": req.ForceChangePasswordNextSignIn}
	if err := s.recordFirst(r, c); err != nil {
		return err
	}
	if err := s.opts.Store.SetCredential(r.Context(), store.Credential{PrincipalID: obj.ID, Type: "password", Hash: hash, UpdatedAt: time.Now().UTC()}); err != nil {
		return err
	}
	if err := signin.SetMustChangePassword(r.Context(), s.opts.Store, obj.ID, req.ForceChangePasswordNextSignIn); err != nil {
		return err
	}
	// An administrator's new password ends the user's risk (Entra:
	// adminGeneratedTemporaryPassword).
	if _, err := detect.RemediateUserRisk(r.Context(), s.opts.Store, obj.ID, "adminGeneratedTemporaryPassword"); err != nil {
		return err
	}
	if req.RevokeSessions == nil || *req.RevokeSessions {
		if err := s.opts.Store.DeletePrincipalTokens(r.Context(), obj.ID); err != nil {
			return err
		}
		if _, err := signin.RevokeSessions(r.Context(), s.opts.Store, obj.ID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
