// Package pim is just-in-time privilege, in the model of Microsoft Entra
// Privileged Identity Management: a principal is *eligible* for a role at
// a scope, and *activates* it for a bounded time — with the checks the
// role's settings ask for (MFA, justification, ticket, approval) — which
// makes a time-bound active assignment that the decision engine honours
// to the second and that ends on time. Role settings follow Graph's
// unifiedRoleManagementPolicy rules; requests follow ARM's
// roleAssignmentScheduleRequests (SelfActivate, SelfDeactivate,
// SelfExtend, SelfRenew, AdminAssign, AdminRemove, ...). Every step is a
// store transaction that carries its audit record; the Notifier follows
// those records and tells the roles' webhooks.
package pim

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/schedule"
)

// Policy is a role's PIM settings at a scope (Graph
// unifiedRoleManagementPolicy, ARM roleManagementPolicies): how long
// eligibilities, active assignments and activations may last, and what an
// activation needs.
type Policy struct {
	// ActivationMaxDuration bounds an activation (1h–24h; default 8h).
	ActivationMaxDuration Duration `json:"activationMaxDuration"`
	// On activation: a second factor in the requester's sign-in, a
	// justification, ticket information, an authentication context
	// (a conditional access claim value such as "c1").
	RequireMFA            bool   `json:"requireMfa"`
	RequireJustification  bool   `json:"requireJustification"`
	RequireTicket         bool   `json:"requireTicketInfo"`
	AuthenticationContext string `json:"authenticationContext,omitempty"`
	// RequireApproval sends activations to Approvers (users or groups, by
	// id), who must answer within ApprovalTimeout (default 1 day); the
	// approver justifies when ApproverJustificationRequired.
	RequireApproval               bool     `json:"requireApproval"`
	Approvers                     []string `json:"approvers,omitempty"`
	ApprovalTimeout               Duration `json:"approvalTimeout"`
	ApproverJustificationRequired bool     `json:"approverJustificationRequired"`
	// Eligibilities and active assignments made by administrators:
	// whether they must end, and how long they may last.
	EligibilityExpirationRequired bool     `json:"eligibilityExpirationRequired"`
	EligibilityMaxDuration        Duration `json:"eligibilityMaxDuration"`
	AssignmentExpirationRequired  bool     `json:"assignmentExpirationRequired"`
	AssignmentMaxDuration         Duration `json:"assignmentMaxDuration"`
	// AssignmentRequireJustification: an administrator's active assignment
	// needs a justification.
	AssignmentRequireJustification bool `json:"assignmentRequireJustification"`
	// Notify are webhook URLs told of the role's requests, activations
	// and assignments (see Notifier); Notifications, Graph's notification
	// rules, say which events are sent and whom each names (Graph sends
	// e-mail; Verity posts, and the receiver tells them).
	Notify        []string           `json:"notify,omitempty"`
	Notifications []NotificationRule `json:"notificationRules,omitempty"`
}

// DefaultPolicy is Microsoft's documented default for a role: eligible
// for up to a year and active for up to 180 days without an end required,
// activations of up to 8 hours with MFA and a justification, no approval.
func DefaultPolicy() Policy {
	return Policy{ActivationMaxDuration: Duration(8 * time.Hour), RequireMFA: true, RequireJustification: true,
		ApprovalTimeout: Duration(24 * time.Hour), ApproverJustificationRequired: true,
		EligibilityMaxDuration: Duration(365 * 24 * time.Hour), AssignmentMaxDuration: Duration(180 * 24 * time.Hour),
		AssignmentRequireJustification: true}
}

// Validate reports the first invalid setting with its name.
func (p *Policy) Validate() error {
	switch {
	case p.ActivationMaxDuration.D() < 30*time.Minute || p.ActivationMaxDuration.D() > 24*time.Hour:
		return errors.New("activationMaxDuration: must be between 30m and 24h")
	case p.RequireApproval && len(p.Approvers) == 0:
		return errors.New("approvers: approval needs at least one approver")
	case p.ApprovalTimeout.D() < time.Hour || p.ApprovalTimeout.D() > 7*24*time.Hour:
		return errors.New("approvalTimeout: must be between 1h and 7 days")
	case p.EligibilityMaxDuration.D() < 24*time.Hour:
		return errors.New("eligibilityMaxDuration: must be at least 1 day")
	case p.AssignmentMaxDuration.D() < 24*time.Hour:
		return errors.New("assignmentMaxDuration: must be at least 1 day")
	case p.AuthenticationContext != "" && !validClaim(p.AuthenticationContext):
		return errors.New(`authenticationContext: must be an authentication context claim value, "c1" to "c99"`)
	case len(p.Approvers) > 100:
		return errors.New("approvers: at most 100")
	}
	return validateNotify(p.Notify, p.Notifications)
}

func validClaim(c string) bool {
	n, err := strconv.Atoi(strings.TrimPrefix(c, "c"))
	return strings.HasPrefix(c, "c") && err == nil && n >= 1 && n <= 99
}

// graphRule is one rule of a Graph unifiedRoleManagementPolicy, with the
// fields of every rule type it may be.
type graphRule struct {
	Type                 string   `json:"@odata.type"`
	ID                   string   `json:"id"`
	IsExpirationRequired *bool    `json:"isExpirationRequired"`
	MaximumDuration      string   `json:"maximumDuration"`
	EnabledRules         []string `json:"enabledRules"`
	IsEnabled            *bool    `json:"isEnabled"`
	ClaimValue           *string  `json:"claimValue"`
	Setting              *struct {
		IsApprovalRequired bool `json:"isApprovalRequired"`
		ApprovalStages     []struct {
			TimeOutInDays                   int  `json:"approvalStageTimeOutInDays"`
			IsApproverJustificationRequired bool `json:"isApproverJustificationRequired"`
			PrimaryApprovers                []struct {
				ID       string `json:"id"`
				UserID   string `json:"userId"`
				GroupID  string `json:"groupId"`
				Type     string `json:"@odata.type"`
				Describe string `json:"description"`
			} `json:"primaryApprovers"`
		} `json:"approvalStages"`
	} `json:"setting"`
	NotificationType           string   `json:"notificationType"`
	RecipientType              string   `json:"recipientType"`
	NotificationLevel          string   `json:"notificationLevel"`
	IsDefaultRecipientsEnabled *bool    `json:"isDefaultRecipientsEnabled"`
	NotificationRecipients     []string `json:"notificationRecipients"`
}

// PolicyFromGraphRules reads the rules of a Graph unifiedRoleManagementPolicy
// (the `rules` array, as Graph returns it with $expand=rules) over the
// defaults. Notification rules say which webhook events are sent and
// whom they name; an unknown rule id is an error naming it.
func PolicyFromGraphRules(rules json.RawMessage) (Policy, error) {
	var list []graphRule
	if err := json.Unmarshal(rules, &list); err != nil {
		return Policy{}, fmt.Errorf("rules: %w", err)
	}
	p := DefaultPolicy()
	for i, r := range list {
		at := fmt.Sprintf("rules[%d] (%s)", i, r.ID)
		switch r.ID {
		case "Expiration_Admin_Eligibility", "Expiration_Admin_Assignment", "Expiration_EndUser_Assignment":
			d, err := ParseISODuration(r.MaximumDuration)
			if err != nil {
				return Policy{}, fmt.Errorf("%s.maximumDuration: %w", at, err)
			}
			required := r.IsExpirationRequired != nil && *r.IsExpirationRequired
			switch r.ID {
			case "Expiration_Admin_Eligibility":
				p.EligibilityExpirationRequired, p.EligibilityMaxDuration = required, Duration(d)
			case "Expiration_Admin_Assignment":
				p.AssignmentExpirationRequired, p.AssignmentMaxDuration = required, Duration(d)
			default:
				p.ActivationMaxDuration = Duration(d)
			}
		case "Enablement_EndUser_Assignment":
			p.RequireMFA = slices.Contains(r.EnabledRules, "MultiFactorAuthentication")
			p.RequireJustification = slices.Contains(r.EnabledRules, "Justification")
			p.RequireTicket = slices.Contains(r.EnabledRules, "Ticketing")
		case "Enablement_Admin_Assignment":
			p.AssignmentRequireJustification = slices.Contains(r.EnabledRules, "Justification")
		case "Enablement_Admin_Eligibility":
		case "Approval_EndUser_Assignment":
			if r.Setting == nil {
				return Policy{}, fmt.Errorf("%s: no setting", at)
			}
			p.RequireApproval = r.Setting.IsApprovalRequired
			p.Approvers = nil
			if len(r.Setting.ApprovalStages) > 0 {
				st := r.Setting.ApprovalStages[0]
				if st.TimeOutInDays > 0 {
					p.ApprovalTimeout = Duration(time.Duration(st.TimeOutInDays) * 24 * time.Hour)
				}
				p.ApproverJustificationRequired = st.IsApproverJustificationRequired
				for _, a := range st.PrimaryApprovers {
					for _, id := range []string{a.UserID, a.GroupID, a.ID} {
						if id != "" {
							p.Approvers = append(p.Approvers, id)
							break
						}
					}
				}
			}
		case "AuthenticationContext_EndUser_Assignment":
			p.AuthenticationContext = ""
			if r.IsEnabled != nil && *r.IsEnabled && r.ClaimValue != nil {
				p.AuthenticationContext = *r.ClaimValue
			}
		default:
			n, err := r.notificationRule()
			if err != nil {
				return Policy{}, fmt.Errorf("%s: %w", at, err)
			}
			p.Notifications = append(p.Notifications, n)
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Duration is an ISO 8601 duration in JSON ("PT8H"), schedule's.
type Duration = schedule.Duration

// ParseISODuration and FormatISODuration are schedule's, under the names
// PIM's callers know.
var (
	ParseISODuration  = schedule.ParseISODuration
	FormatISODuration = schedule.FormatISODuration
)
