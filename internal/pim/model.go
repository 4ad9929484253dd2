package pim

import (
	"errors"
	"strings"
	"time"
)

// Store kinds of PIM's objects. They are store objects (not records) so
// that a request, the assignment it makes and the audit record of both
// are written in one transaction.
const (
	EligibilityKind = "roleEligibilitySchedule"
	PolicyKind      = "roleManagementPolicy"
	RequestKind     = "roleAssignmentScheduleRequest"
)

// Role kinds: Verity's Azure-style RBAC roles at a scope ("/apps/payroll")
// and directory roles (Global Administrator, ...) at a directory scope
// ("/").
const (
	RoleKindRBAC      = "rbac"
	RoleKindDirectory = "directory"
)

// Eligibility says a principal (a user, or a group whose members all are)
// may activate a role at a scope between Start and End (nil: for good) —
// Graph's unifiedRoleEligibilitySchedule, ARM's roleEligibilitySchedules.
type Eligibility struct {
	ID               string     `json:"id"`
	PrincipalID      string     `json:"principalId"`
	RoleDefinitionID string     `json:"roleDefinitionId"`
	Scope            string     `json:"scope"`
	RoleKind         string     `json:"roleKind"`
	StartDateTime    time.Time  `json:"startDateTime"`
	EndDateTime      *time.Time `json:"endDateTime,omitempty"`
	CreatedBy        string     `json:"createdBy,omitempty"`
	CreatedDateTime  time.Time  `json:"createdDateTime"`
	Justification    string     `json:"justification,omitempty"`
}

// InForce reports whether the eligibility holds at t.
func (e *Eligibility) InForce(t time.Time) bool {
	return !t.Before(e.StartDateTime) && (e.EndDateTime == nil || t.Before(*e.EndDateTime))
}

// Request types, ARM's requestType values.
const (
	SelfActivate   = "SelfActivate"
	SelfDeactivate = "SelfDeactivate"
	SelfExtend     = "SelfExtend"
	SelfRenew      = "SelfRenew"
	AdminAssign    = "AdminAssign"
	AdminRemove    = "AdminRemove"
	AdminExtend    = "AdminExtend"
	AdminRenew     = "AdminRenew"
)

// RequestTypes lists the request types in the order the API documents
// them.
var RequestTypes = []string{SelfActivate, SelfDeactivate, SelfExtend, SelfRenew, AdminAssign, AdminRemove, AdminExtend, AdminRenew}

// Request statuses (ARM's values that apply).
const (
	StatusPendingApproval = "PendingApproval"
	StatusProvisioned     = "Provisioned"
	StatusDenied          = "Denied"
	StatusRevoked         = "Revoked"
	StatusCanceled        = "Canceled"
	StatusTimedOut        = "TimedOut"
)

// Targets of a request: an eligibility, or an active assignment.
const (
	TargetEligibility = "eligibility"
	TargetAssignment  = "assignment"
)

// Request is a role assignment schedule request (ARM
// roleAssignmentScheduleRequests, Graph
// unifiedRoleAssignmentScheduleRequest), with its approvals.
type Request struct {
	ID          string `json:"id"`
	RequestType string `json:"requestType"`
	// Target says what a request makes, ends or extends: an eligibility
	// (default) or an active assignment. SelfActivate and SelfDeactivate
	// are about activations; SelfExtend, SelfRenew, AdminExtend and
	// AdminRenew about an eligibility or an administrator's time-bound
	// active assignment (which is extended, never renewed: it is removed
	// when it ends).
	Target           string      `json:"target,omitempty"`
	Status           string      `json:"status"`
	PrincipalID      string      `json:"principalId"`
	RoleDefinitionID string      `json:"roleDefinitionId"`
	Scope            string      `json:"scope"`
	RoleKind         string      `json:"roleKind"`
	RequestorID      string      `json:"requestorId"`
	Justification    string      `json:"justification,omitempty"`
	TicketInfo       *TicketInfo `json:"ticketInfo,omitempty"`
	ScheduleInfo     Schedule    `json:"scheduleInfo"`
	// LinkedEligibilityID is the eligibility an activation uses (or an
	// extension of an eligibility moves); TargetID the assignment or
	// eligibility the request made, ended or extended — for a pending
	// extension of an assignment, the one it asks about.
	LinkedEligibilityID string     `json:"linkedRoleEligibilityScheduleId,omitempty"`
	TargetID            string     `json:"targetScheduleId,omitempty"`
	Approvals           []Approval `json:"approvals,omitempty"`
	// MFA: the requester had proved a second factor when asking.
	MFA               bool       `json:"requestorMfa,omitempty"`
	CreatedDateTime   time.Time  `json:"createdDateTime"`
	CompletedDateTime *time.Time `json:"completedDateTime,omitempty"`
	// ApprovalDeadline is when a pending request times out.
	ApprovalDeadline *time.Time `json:"approvalDeadline,omitempty"`

	// auditDetails are what the request's audit record says beyond the
	// request (an eligibility an AdminAssign replaced); never stored.
	auditDetails map[string]any
}

// TicketInfo is the change ticket an activation cites (free text).
type TicketInfo struct {
	TicketNumber string `json:"ticketNumber,omitempty"`
	TicketSystem string `json:"ticketSystem,omitempty"`
}

// Schedule is when a request's result starts and ends (ARM scheduleInfo).
type Schedule struct {
	StartDateTime *time.Time `json:"startDateTime,omitempty"`
	Expiration    Expiration `json:"expiration"`
}

// Expiration is ARM's expiration: NoExpiration, AfterDuration (Duration)
// or AfterDateTime (EndDateTime).
type Expiration struct {
	Type        string     `json:"type,omitempty"`
	Duration    *Duration  `json:"duration,omitempty"`
	EndDateTime *time.Time `json:"endDateTime,omitempty"`
}

// Approval is one approver's answer.
type Approval struct {
	ApproverID    string    `json:"approverId"`
	Approved      bool      `json:"approved"`
	Justification string    `json:"justification,omitempty"`
	Time          time.Time `json:"reviewedDateTime"`
}

// Caller is who makes a request or answers one, and how they signed in.
type Caller struct {
	ID string
	// MFA: the caller's sign-in proved a second factor; AuthContexts are
	// the authentication context claims its token carries.
	MFA          bool
	AuthContexts []string
	// Admin: the caller may manage role assignments at the request's
	// scope (the API checks roleAssignments/write there).
	Admin bool
}

// Errors, each with the ARM error code a client sees.
var (
	ErrNotEligible        = &Error{Code: "RoleAssignmentRequestPolicyValidationFailed", Message: "the principal is not eligible for this role at this scope now"}
	ErrAlreadyActive      = &Error{Code: "RoleAssignmentExists", Message: "the role is already active for the principal at this scope"}
	ErrEligibilityExists  = &Error{Code: "RoleAssignmentExists", Message: "the principal already has an eligibility for this role at this scope"}
	ErrPending            = &Error{Code: "PendingRoleAssignmentRequest", Message: "a request for this role and scope is already waiting for approval"}
	ErrMFARequired        = &Error{Code: "MfaRequired", Message: "activating this role needs a sign-in with a second factor"}
	ErrAuthContext        = &Error{Code: "AuthenticationContextRequired", Message: "activating this role needs the authentication context its settings name"}
	ErrNotActive          = &Error{Code: "RoleAssignmentDoesNotExist", Message: "there is no active assignment of this role to deactivate"}
	ErrTooSoon            = &Error{Code: "ActiveDurationTooShort", Message: "an activation cannot be ended within 5 minutes of its start"}
	ErrNotApprover        = &Error{Code: "NotApprover", Message: "the caller is not an approver of this request"}
	ErrOwnRequest         = &Error{Code: "SelfApprovalNotAllowed", Message: "nobody approves their own request"}
	ErrNotPending         = &Error{Code: "RequestNotPending", Message: "the request is not waiting for approval"}
	ErrForbidden          = &Error{Code: "AuthorizationFailed", Message: "the caller may not make this request"}
	ErrNotFound           = &Error{Code: "NotFound", Message: "no such request"}
	ErrNothingToExtend    = &Error{Code: "RoleAssignmentDoesNotExist", Message: "there is no eligibility of this role to extend or renew"}
	errMissingApproverWhy = &Error{Code: "JustificationRule", Message: "the approver must justify the decision"}
)

// Errors of extending an active assignment (target assignment).
var (
	// ErrNoAssignmentToExtend: no administrator's time-bound active
	// assignment to extend (target assignment).
	ErrNoAssignmentToExtend = &Error{Code: "RoleAssignmentDoesNotExist", Field: "target",
		Message: "the principal has no time-bound active assignment of this role at this scope, made by an administrator, to extend"}
	errRenewAssignment = &Error{Code: "InvalidRoleAssignmentRequest", Field: "target",
		Message: "an active assignment is removed when it ends, so none is left to renew: an administrator assigns the role again (AdminAssign)"}
)

// Error is a request refused, with a code and a message that say why;
// Field names the request property at fault, when one is.
type Error struct {
	Code, Message, Field string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is matches errors of the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// invalid is a request property at fault.
func invalid(field, message string) *Error {
	return &Error{Code: "InvalidRoleAssignmentRequest", Field: field, Message: message}
}

// key is the identity of a (principal, role, scope) for a role kind.
func key(kind, principal, role, scope string) string {
	return kind + "|" + strings.ToLower(principal) + "|" + strings.ToLower(role) + "|" + strings.ToLower(scope)
}
