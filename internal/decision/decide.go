package decision

import (
	"errors"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/rbac"
)

// Verdict is the answer to a request.
type Verdict uint8

// Verdicts.
const (
	// Deny: a policy blocks, or nothing grants the action at the scope.
	Deny Verdict = iota
	// Challenge: the request would be allowed once the caller satisfies
	// the unmet conditional access controls (MFA, a compliant device, a
	// password change...): step up, then ask again.
	Challenge
	// Allow: conditional access is satisfied and a role grants the action.
	Allow
)

var verdictNames = [...]string{Deny: "deny", Challenge: "challenge", Allow: "allow"}

func (v Verdict) String() string { return verdictNames[v] }

// Request is everything one decision looks at: the sign-in signals of the
// caller (who, which application, device, network, risk, what it has
// already satisfied — conditional access) and what it wants to do (an
// action or data action at a scope — RBAC).
type Request struct {
	Access access.Request
	// Action is the action or data action the request needs at Scope;
	// empty when conditional access alone decides (an application that
	// does not require assignment admits every user it lets sign in).
	Action     string
	DataAction bool
	Scope      string
}

// Decision is the verdict with every reason behind it: the conditional
// access result (each policy, whether it applies and why not, the unmet
// controls) and the RBAC decision (the granting assignments or the
// blocking deny assignment). Reuse one per goroutine: Decide keeps their
// buffers, so a decision does not allocate.
type Decision struct {
	Verdict Verdict
	Access  access.Result
	RBAC    rbac.Decision
	// RBACChecked says RBAC was asked (the request named an action).
	RBACChecked bool

	rbacReq rbac.Request
}

// ErrUnavailable means a policy set of the snapshot could not be compiled;
// the decision fails closed (Deny) and the error says why.
var ErrUnavailable = errors.New("decision engine unavailable")

// Decide joins conditional access and RBAC on one snapshot. The user's
// groups and roles are resolved once, from the snapshot, when the request
// does not carry them. Conditional access goes first, as at sign-in: a
// block denies, unmet controls challenge; then the action must be granted
// at the scope. A request that RBAC denies is denied even if it could step
// up: there is nothing to step up to. Both sides decide at
// req.Access.Now (the current time when zero): directory roles and role
// assignments with a window count only inside it, however old the
// snapshot.
func (s *Snapshot) Decide(req *Request, d *Decision) error {
	d.Verdict = Deny
	if s.accessErr != nil || s.rbacErr != nil {
		return errors.Join(ErrUnavailable, s.accessErr, s.rbacErr)
	}
	// Groups the caller did not give come from this snapshot's directory,
	// as the RBAC engine compiled beside it already has them: it is then
	// asked without them and uses its own resolution of the principal.
	var rbacGroups []string
	if req.Access.Groups == nil {
		req.Access.Resolve(access.SnapshotPrincipals{Snapshot: s.directory})
		if req.Access.Groups == nil {
			req.Access.Groups = []string{} // resolved: no groups
		}
	} else {
		rbacGroups = req.Access.Groups
	}
	s.access.Evaluate(&req.Access, &d.Access)
	principal := req.Access.UserID
	if principal == "" {
		principal = req.Access.ServicePrincipalID
	}
	d.RBACChecked = req.Action != ""
	if d.RBACChecked {
		d.rbacReq = rbac.Request{PrincipalID: principal, Groups: rbacGroups, Action: req.Action, DataAction: req.DataAction, Scope: req.Scope,
			Now: req.Access.Now}
		s.rbac.Check(&d.rbacReq, &d.RBAC)
	}
	switch {
	case (d.RBACChecked && !d.RBAC.Allowed) || d.Access.Outcome == access.OutcomeBlock || !s.directory.PrincipalEnabled(principal):
		d.Verdict = Deny
	case d.Access.Outcome == access.OutcomeInterrupt:
		d.Verdict = Challenge
	default:
		d.Verdict = Allow
	}
	return nil
}
