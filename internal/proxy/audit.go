package proxy

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// AuditAction is the audit log action of a proxy decision.
const AuditAction = "proxy.decision"

// Reason codes of decisions that are not allowed. Where Entra has a code
// for the same refusal it is used; Verity's own are 9xxxxx.
const (
	codeBlockedByCA      = signin.CodeBlockedByCA        // a conditional access policy blocks
	codeNotAssigned      = signin.CodeNotAssigned        // the application requires assignment and the user has none
	codeDisabled         = signin.CodeDisabled           // the user account is disabled
	codeStepUp           = signin.CodeMFARequired        // a challenge: the session must step up
	codeCannotStepUp     = signin.CodeCannotMeetControls // a challenge sign-in has just failed to meet
	codeNotGranted       = 900403                        // the route's rule needs a data action nothing grants
	codeDeniedByRBAC     = 900404                        // a deny assignment blocks the data action
	codeUnavailable      = 900503                        // the decision engine could not decide
	codeConnectionClosed = 900410                        // an open upgraded connection is no longer allowed
	codeNetworkClosed    = 900420                        // just-in-time network access: the port is closed to this address
)

// decisionEvent is the audit record of one decision: who, which route,
// what, the outcome with its reason, the conditional access policies that
// applied, and how long the decision took.
type decisionEvent struct {
	CorrelationID string `json:"correlationId"`
	RouteID       string `json:"routeId"`
	AppID         string `json:"appId"`
	UserID        string `json:"userId"`
	SessionID     string `json:"sessionId"`
	// Credential is "bearer" for an access token (SessionID then names the
	// token by its hash), empty for a session cookie.
	Credential    string          `json:"credential,omitempty"`
	Method        string          `json:"method"`
	Host          string          `json:"host"`
	Path          string          `json:"path"`
	IP            string          `json:"ipAddress"`
	Action        string          `json:"dataAction,omitempty"`
	Outcome       string          `json:"outcome"`
	Code          int             `json:"code,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	Policies      []appliedPolicy `json:"appliedConditionalAccessPolicies"`
	LatencyMicros int64           `json:"latencyMicros"`
}

// appliedPolicy is a conditional access policy that applied to the
// request, with its result.
type appliedPolicy struct {
	ID     string `json:"id"`
	Result string `json:"result"`
}

// appliedPolicies lists the policies that applied (not every policy: a
// tenant may have hundreds, and a decision is made per request).
func appliedPolicies(res *access.Result) []appliedPolicy {
	e := res.Engine()
	out := []appliedPolicy{}
	if e == nil {
		return out
	}
	ps := e.Policies()
	for i := range res.Policies {
		if pr := &res.Policies[i]; pr.Applies {
			out = append(out, appliedPolicy{ID: ps[i].ID, Result: pr.Status.String()})
		}
	}
	return out
}

// reasonOf explains a verdict with a code and a reason for the log.
func reasonOf(v decision.Verdict, d *decision.Decision, snap *decision.Snapshot, userID string) (int, string) {
	switch v {
	case decision.Allow:
		return 0, ""
	case decision.Challenge:
		if d.Access.Session.SignInFrequency.Reauthenticate {
			return codeStepUp, "The sign-in frequency requires signing in again."
		}
		return codeStepUp, "Conditional access requires " + d.Access.Unmet.String() + "."
	}
	switch {
	case !snap.Directory().PrincipalEnabled(userID):
		return codeDisabled, "The user account is disabled or deleted."
	case d.Access.Outcome == access.OutcomeBlock:
		return codeBlockedByCA, "Access has been blocked by conditional access policies."
	case d.RBACChecked && d.RBAC.DeniedBy != nil:
		return codeDeniedByRBAC, "A deny assignment blocks the data action."
	case d.RBACChecked && !d.RBAC.Allowed:
		return codeNotGranted, "No role assignment grants the data action at the application."
	}
	return codeUnavailable, "The decision engine denied the request."
}

// userMessage is what a refused user reads (never the policy internals).
func userMessage(code int) string {
	switch code {
	case codeBlockedByCA:
		return "Access is blocked from where or how you are signing in."
	case codeNotAssigned, codeNotGranted, codeDeniedByRBAC:
		return "You do not have access to this application or page. Ask your administrator."
	case codeDisabled:
		return "Your account is disabled. Contact your administrator."
	case codeCannotStepUp:
		return "Access needs a step this sign-in cannot complete. Contact your administrator."
	case codeNetworkClosed:
		return "This application is reachable only with just-in-time access from your address. Request access (verity jit request) and try again."
	}
	return "Access cannot be granted right now."
}

// audit queues the event; false when the proxy must fail closed because
// the audit log cannot take it.
func (p *Proxy) audit(ctx context.Context, ev *decisionEvent) bool {
	if ev.Code == codeNotGranted && ev.Action == directory.DefaultRouteDataAction {
		ev.Code = codeNotAssigned
	}
	details, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	result := "success"
	switch ev.Outcome {
	case decision.Deny.String():
		result = "failure"
	case decision.Challenge.String():
		result = "interrupted"
	}
	err = p.opts.Store.AppendAuditAsync(context.WithoutCancel(ctx), store.AuditEvent{Time: p.opts.Now(), RequestID: ev.CorrelationID,
		Actor: ev.UserID, Action: AuditAction, Target: ev.AppID, Result: result, Status: 0, Details: details})
	if err == nil {
		return true
	}
	p.metrics.auditFailures.Inc()
	if errors.Is(err, store.ErrAuditBacklog) && p.opts.AuditFailOpen {
		p.auditDropped.Add(1)
		p.log.WarnContext(ctx, "proxy: audit backlog full; decision served without a record (auditFailOpen)", "correlationId", ev.CorrelationID)
		return true
	}
	p.log.ErrorContext(ctx, "proxy: audit log cannot take the decision; refusing the request", "correlationId", ev.CorrelationID, "err", err)
	return false
}
