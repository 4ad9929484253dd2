package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/strictjson"
)

// PIM: eligibilities, role settings, requests and their approval
// (docs/pim.md). Self requests need only a signed-in caller (the service
// holds them to the caller's own eligibilities); admin requests, role
// settings and the whole lists need Microsoft.Authorization/roleAssignments/write
// (or read) at the role's scope — directory roles at /directory.

const (
	pimWrite = "Microsoft.Authorization/roleAssignments/write"
	pimRead  = "Microsoft.Authorization/roleAssignments/read"
)

// pimScope is where the rights to manage a role kind's assignments at
// scope are checked.
func pimScope(roleKind, scope string) string {
	if roleKind == pim.RoleKindDirectory {
		return "/directory"
	}
	if scope == "" {
		return "/"
	}
	return scope
}

func (s *Server) pimService() *pim.Service {
	svc := pim.New(s.opts.Store)
	svc.Groups = func(id string) []string { return s.opts.Live.Current().Directory().TransitiveMemberOf(id) }
	return svc
}

// pimCaller is the caller as PIM sees it: who, how they signed in, and
// whether they may manage role assignments at scope — and, when the
// settings of role at scope name an authentication context, whether the
// caller's sign-in meets it.
func (s *Server) pimCaller(r *http.Request, c *call, roleKind, role, scope string) pim.Caller {
	caller := pim.Caller{ID: c.principal, MFA: c.mfa, Admin: s.may(r, c, pimWrite, pimScope(roleKind, scope))}
	if role == "" {
		return caller
	}
	if roleKind == "" {
		roleKind = pim.RoleKindRBAC
	}
	if p, err := pim.GetPolicy(r.Context(), s.opts.Store, roleKind, role, scope); err == nil && p.AuthenticationContext != "" &&
		s.authContextMet(r, c, p.AuthenticationContext) {
		caller.AuthContexts = []string{p.AuthenticationContext}
	}
	return caller
}

// authContextMet decides, as Entra does when a PIM activation asks for an
// authentication context, whether the caller's sign-in meets claim:
// conditional access evaluated for the context — the caller, their
// address, the methods their token carries — lets it through. When no
// policy that is on or in report-only mode names the context, a second
// factor stands in (PIM's documented fallback).
func (s *Server) authContextMet(r *http.Request, c *call, claim string) bool {
	snap := s.opts.Live.Current()
	eng, err := snap.Access()
	if err != nil {
		return false // conditional access cannot be evaluated: fail closed
	}
	if !eng.NamesAuthenticationContext(claim) {
		return c.mfa
	}
	if s.opts.SignIn == nil || snap.Directory().PrincipalKind(c.principal) != directory.KindUser {
		return false
	}
	now := time.Now()
	req := s.opts.SignIn.AccessRequest(&signin.Session{UserID: c.principal, Methods: c.methods}, "", remoteAddr(r), r.UserAgent(), now)
	req.Applications, req.AuthenticationContext, req.ClientApp = nil, claim, access.ClientAppMobileAndDesktop
	req.Resolve(access.SnapshotPrincipals{Snapshot: snap.Directory()})
	var res access.Result
	eng.Evaluate(&req, &res)
	return res.Outcome == access.OutcomeNotApplied || res.Outcome == access.OutcomeGrant
}

// may reports whether the caller holds action at scope, for a handler
// that shows more to those who do; unlike require, a no is no refusal and
// leaves nothing in the audit record.
func (s *Server) may(r *http.Request, c *call, action, scope string) bool {
	var d rbac.Decision
	return s.opts.Live.Current().Authorize(c.principal, action, scope, time.Now(), &d) == nil && d.Allowed
}

// pimProblem turns PIM's refusals — of requests and of access reviews —
// into problems with their codes.
func pimProblem(err error) error {
	var pe *pim.Error
	if !errors.As(err, &pe) {
		return err
	}
	status := http.StatusBadRequest
	switch pe.Code {
	case pim.ErrForbidden.Code, pim.ErrNotApprover.Code, pim.ErrOwnRequest.Code, pim.ErrNotReviewer.Code, pim.ErrOwnAccess.Code:
		status = http.StatusForbidden
	case pim.ErrNotFound.Code, pim.ErrReviewNotFound.Code:
		status = http.StatusNotFound
	case pim.ErrAlreadyActive.Code, pim.ErrPending.Code, pim.ErrNotPending.Code,
		pim.ErrReviewNotActive.Code, pim.ErrReviewNotCompleted.Code, pim.ErrTooManyReviews.Code:
		status = http.StatusConflict
	case pim.ErrMFARequired.Code, pim.ErrAuthContext.Code:
		status = http.StatusUnauthorized
	}
	return &Problem{Status: status, Code: pe.Code, Message: pe.Message, Target: pe.Field}
}

// createPIMRequest: POST /pim/requests with a roleAssignmentScheduleRequest.
func (s *Server) createPIMRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	var req pim.Request
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ID != "" || req.Status != "" || len(req.Approvals) > 0 {
		return invalid(strictjson.Errorf("id", "id, status and approvals are the service's to set"))
	}
	out, err := s.pimService().Submit(r.Context(), s.pimCaller(r, c, req.RoleKind, req.RoleDefinitionID, req.Scope), req)
	if err != nil {
		return pimProblem(err)
	}
	c.recorded = true // the transaction carried its audit record
	return writeJSON(w, http.StatusCreated, out)
}

// listPIMRequests: GET /pim/requests[?status=&principalId=&approver=me].
// A caller sees their own requests and those they may approve; an
// administrator of / sees every request.
func (s *Server) listPIMRequests(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	status := qs.Get("status")
	admin := s.may(r, c, pimRead, "/")
	groups := s.opts.Live.Current().Directory().TransitiveMemberOf(c.principal)
	mine := append([]string{c.principal}, groups...)
	list, err := pim.Requests(r.Context(), s.opts.Store, func(p *pim.Request) bool {
		if status != "" && !strings.EqualFold(p.Status, status) {
			return false
		}
		if v := qs.Get("principalId"); v != "" && p.PrincipalID != v {
			return false
		}
		if qs.Get("approver") == "me" {
			return p.Status == pim.StatusPendingApproval && s.canApprove(r, c, p, mine)
		}
		return admin || p.RequestorID == c.principal || p.PrincipalID == c.principal || s.canApprove(r, c, p, mine)
	})
	if err != nil {
		return err
	}
	if list == nil {
		list = []pim.Request{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": list})
}

// canApprove: the caller is an approver of an activation (by the role's
// settings), or an administrator of the scope for an extension.
func (s *Server) canApprove(r *http.Request, c *call, p *pim.Request, mine []string) bool {
	if p.RequestorID == c.principal || p.PrincipalID == c.principal {
		return false
	}
	if p.RequestType != pim.SelfActivate {
		return s.may(r, c, pimWrite, pimScope(p.RoleKind, p.Scope))
	}
	pol, err := pim.GetPolicy(r.Context(), s.opts.Store, p.RoleKind, p.RoleDefinitionID, p.Scope)
	return err == nil && slices.ContainsFunc(pol.Approvers, func(a string) bool { return slices.Contains(mine, a) })
}

func (s *Server) getPIMRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	req, err := pim.GetRequest(r.Context(), s.opts.Store, r.PathValue("id"))
	if err != nil {
		return pimProblem(err)
	}
	mine := append([]string{c.principal}, s.opts.Live.Current().Directory().TransitiveMemberOf(c.principal)...)
	admin := s.may(r, c, pimRead, pimScope(req.RoleKind, req.Scope))
	if !admin && req.RequestorID != c.principal && req.PrincipalID != c.principal && !s.canApprove(r, c, &req, mine) {
		return pimProblem(pim.ErrNotFound) // not the caller's to see
	}
	return writeJSON(w, http.StatusOK, req)
}

// decidePIMRequest: POST /pim/requests/{id}/approve or /deny with
// {"justification": "..."}.
func (s *Server) decidePIMRequest(approve bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var body struct {
			Justification string `json:"justification"`
		}
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &body); err != nil {
				return err
			}
		}
		req, err := pim.GetRequest(r.Context(), s.opts.Store, r.PathValue("id"))
		if err != nil {
			return pimProblem(err)
		}
		out, err := s.pimService().Decide(r.Context(), s.pimCaller(r, c, req.RoleKind, "", req.Scope), req.ID, approve, body.Justification)
		if err != nil {
			return pimProblem(err)
		}
		c.recorded = true
		return writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) cancelPIMRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	out, err := s.pimService().Cancel(r.Context(), pim.Caller{ID: c.principal}, r.PathValue("id"))
	if err != nil {
		return pimProblem(err)
	}
	c.recorded = true
	return writeJSON(w, http.StatusOK, out)
}

// listEligibilities: GET /pim/eligibilities[?principalId=]. A caller sees
// their own (and their groups'); an administrator of / every one.
func (s *Server) listEligibilities(w http.ResponseWriter, r *http.Request, c *call) error {
	admin := s.may(r, c, pimRead, "/")
	mine := append([]string{c.principal}, s.opts.Live.Current().Directory().TransitiveMemberOf(c.principal)...)
	all, err := pim.Eligibilities(r.Context(), s.opts.Store, "")
	if err != nil {
		return err
	}
	out := []pim.Eligibility{}
	for _, e := range all {
		if v := r.URL.Query().Get("principalId"); v != "" && e.PrincipalID != v {
			continue
		}
		if admin || slices.Contains(mine, e.PrincipalID) {
			out = append(out, e)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// pimPolicyBody is a role's settings as the API takes them: Verity's
// fields, or Graph's unifiedRoleManagementPolicy rules.
type pimPolicyBody struct {
	RoleKind         string          `json:"roleKind"`
	RoleDefinitionID string          `json:"roleDefinitionId"`
	Scope            string          `json:"scope"`
	Policy           *pim.Policy     `json:"policy,omitempty"`
	Rules            json.RawMessage `json:"rules,omitempty"`
}

// getPIMPolicy: GET /pim/policies?roleDefinitionId=&scope=&roleKind=.
func (s *Server) getPIMPolicy(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	kind, role, scope := qs.Get("roleKind"), qs.Get("roleDefinitionId"), qs.Get("scope")
	if kind == "" {
		kind = pim.RoleKindRBAC
	}
	if role == "" {
		return invalid(strictjson.Errorf("roleDefinitionId", "required"))
	}
	if scope == "" {
		scope = "/"
	}
	if err := s.require(r.Context(), s.opts.Live.Current(), c, pimRead, pimScope(kind, scope)); err != nil {
		return err
	}
	p, err := pim.GetPolicy(r.Context(), s.opts.Store, kind, role, scope)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pim.PolicyRecord{RoleKind: kind, RoleDefinitionID: role, Scope: scope, Policy: p})
}

// putPIMPolicy: PUT /pim/policies with a role's settings at a scope
// (Owner or User Access Administrator there).
func (s *Server) putPIMPolicy(w http.ResponseWriter, r *http.Request, c *call) error {
	var body pimPolicyBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.RoleKind == "" {
		body.RoleKind = pim.RoleKindRBAC
	}
	if body.Scope == "" {
		body.Scope = "/"
	}
	if body.RoleDefinitionID == "" {
		return invalid(strictjson.Errorf("roleDefinitionId", "required"))
	}
	if (body.Policy == nil) == (len(body.Rules) == 0) {
		return invalid(strictjson.Errorf("policy", "give the settings either as policy or as Graph rules"))
	}
	if err := s.require(r.Context(), s.opts.Live.Current(), c, pimWrite, pimScope(body.RoleKind, body.Scope)); err != nil {
		return err
	}
	var p pim.Policy
	if body.Policy != nil {
		p = *body.Policy
	} else {
		var err error
		if p, err = pim.PolicyFromGraphRules(body.Rules); err != nil {
			return invalid(strictjson.Errorf("rules", "%s", err.Error()))
		}
	}
	rec := pim.PolicyRecord{RoleKind: body.RoleKind, RoleDefinitionID: body.RoleDefinitionID, Scope: body.Scope, Policy: p}
	if err := s.pimService().SetPolicy(r.Context(), c.principal, rec); err != nil {
		return pimProblem(err)
	}
	c.recorded = true
	return writeJSON(w, http.StatusOK, rec)
}

// pimFindings: GET /pim/findings — the standing privilege PIM would take
// away (administrators of /).
func (s *Server) pimFindings(w http.ResponseWriter, r *http.Request, c *call) error {
	fs, err := pim.Findings(r.Context(), s.opts.Store, time.Now(), pim.DefaultFindingsOptions())
	if err != nil {
		return err
	}
	if fs == nil {
		fs = []pim.Finding{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": fs})
}
