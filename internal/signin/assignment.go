package signin

import (
	"github.com/verityhq/verity/internal/rbac"
)

// AppAccessAction is the data action that lets a principal use an
// application whose service principal requires assignment
// (appRoleAssignmentRequired), at scope /apps/{appId}: the built-in role
// Verity App User grants it.
const AppAccessAction = "Verity.Apps/apps/access/action"

// CodeNotAssigned is Entra's code for a user not assigned to an
// application that requires assignment.
const CodeNotAssigned = 50105

// Assigned reports whether userID may sign in to appID as far as
// assignment goes: always, unless the application's service principal
// requires assignment; then only with AppAccessAction at /apps/{appId}
// (directly or through groups; inherited from /apps or /). Without an
// RBAC engine it refuses.
func (s *Service) Assigned(userID, appID string) (bool, error) {
	snap := s.opts.Live.Current()
	sp, ok := snap.Directory().ServicePrincipalByAppID(appID)
	if !ok || !sp.AppRoleAssignmentRequired {
		return true, nil
	}
	eng, err := snap.RBAC()
	if err != nil {
		return false, err
	}
	var d rbac.Decision
	eng.Check(&rbac.Request{PrincipalID: userID, Action: AppAccessAction, DataAction: true, Scope: "/apps/" + sp.AppID, Now: s.opts.Now()}, &d)
	return d.Allowed, nil
}
