package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// appRoutes registers the identity-aware proxy's routes at base. Reading
// them is an action at /apps; writing or deleting one is authorised at
// /apps/{appId} of the application it publishes (before and after a
// change), so a role granted on one application lets its holder publish
// that application and no other.
func (s *Server) appRoutes(base string) {
	k := directoryKind(directory.AppRoutes, false, "Verity.Apps/routes", "/apps")
	k.objectScope = appRouteScope
	first := len(s.routes)
	s.collection(base, k)
	for i := first; i < len(s.routes); i++ {
		if rt := &s.routes[i]; rt.Name == "appRoutes.get" {
			// A route's id names no application: /apps/{id} would be a
			// scope nobody is granted on, so one route reads as they all do.
			rt.Perm.Scope = k.scope
		}
	}
}

// appRouteScope is the RBAC scope of a route's application.
func appRouteScope(r directory.Resource) string {
	return "/apps/" + r.(*directory.AppRoute).AppID
}

// checkAppRoute refuses a route whose from URL another route publishes
// already, naming that route: the store keeps the key unique, but its
// conflict would not say which property or object is at fault.
func checkAppRoute(ctx context.Context, tx store.Reader, r *directory.AppRoute) error {
	o, err := tx.GetByKey(ctx, directory.KindAppRoute, r.Key())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case o.ID != r.ID:
		return &Problem{Status: http.StatusConflict, Code: CodeConflict, Target: "from",
			Message: "app route " + o.ID + " publishes " + r.From + " already; a URL belongs to one route"}
	}
	return nil
}
