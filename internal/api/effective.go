package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/strictjson"
)

// effectiveAccess answers "what can principal P do at scope S": every role
// and permission block it holds there now, directly or through groups,
// with the deny assignments that apply (for access reviews and the
// console), and when a time-bound assignment ends.
func (s *Server) effectiveAccess(w http.ResponseWriter, r *http.Request, c *call) error {
	principal := strings.ToLower(r.URL.Query().Get("principalId"))
	scope := r.URL.Query().Get("scope")
	if !directory.IsGUID(principal) {
		return invalid(strictjson.Errorf("principalId", "required: the object id of a user, group or service principal"))
	}
	if !strings.HasPrefix(scope, "/") {
		return invalid(strictjson.Errorf("scope", "required: an absolute scope such as / or /directory/users"))
	}
	snap, eng, err := s.rbacEngine(r.Context())
	if err != nil {
		return err
	}
	type entry struct {
		RoleAssignmentID   string   `json:"roleAssignmentId"`
		RoleDefinitionName string   `json:"roleDefinitionName"`
		Scope              string   `json:"scope"`
		PrincipalID        string   `json:"principalId"`
		Actions            []string `json:"actions"`
		NotActions         []string `json:"notActions"`
		DataActions        []string `json:"dataActions"`
		NotDataActions     []string `json:"notDataActions"`
		Condition          string   `json:"condition,omitempty"`
		DeniedBy           []string `json:"deniedBy,omitempty"`
		// EndDateTime is when a time-bound assignment stops granting.
		EndDateTime *time.Time `json:"endDateTime,omitempty"`
	}
	out := []entry{}
	for _, g := range eng.PermissionsOf(principal, snap.Directory().TransitiveMemberOf(principal), scope, time.Now()) {
		e := entry{RoleAssignmentID: g.AssignmentID, RoleDefinitionName: g.RoleName, Scope: g.Scope, PrincipalID: g.PrincipalID,
			Actions: g.Permission.Actions, NotActions: g.Permission.NotActions, DataActions: g.Permission.DataActions,
			NotDataActions: g.Permission.NotDataActions, Condition: g.Condition, EndDateTime: g.EndDateTime}
		for _, d := range g.Denies {
			e.DeniedBy = append(e.DeniedBy, d.ID)
		}
		out = append(out, e)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// whoCan answers "who can perform action A at scope S": the principals
// whose role assignments in force now grant it (groups not expanded),
// minus those a deny assignment names.
func (s *Server) whoCan(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	action, scope := q.Get("action"), q.Get("scope")
	if action == "" {
		return invalid(strictjson.Errorf("action", "required, e.g. Verity.Directory/users/write"))
	}
	if !strings.HasPrefix(scope, "/") {
		return invalid(strictjson.Errorf("scope", "required: an absolute scope such as / or /directory/users"))
	}
	dataAction := false
	if v := q.Get("dataAction"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalid(strictjson.Errorf("dataAction", "must be true or false"))
		}
		dataAction = b
	}
	_, eng, err := s.rbacEngine(r.Context())
	if err != nil {
		return err
	}
	ids := eng.WhoCan(action, scope, dataAction, time.Now())
	if ids == nil {
		ids = []string{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"principals": ids})
}

// rbacEngine returns a snapshot with the caller's writes and its RBAC
// engine, or the error that makes role-based answers fail closed.
func (s *Server) rbacEngine(ctx context.Context) (*decision.Snapshot, *rbac.Engine, error) {
	snap, err := s.fresh(ctx)
	if err != nil {
		return nil, nil, err
	}
	eng, err := snap.RBAC()
	if err != nil {
		return nil, nil, &Problem{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "the role assignments could not be compiled; see the node's log", Err: err}
	}
	return snap, eng, nil
}
