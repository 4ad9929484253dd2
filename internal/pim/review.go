package pim

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
)

// Access reviews are periodic reviews of who holds which role, in the
// model of Microsoft Entra ID Governance: a definition
// (accessReviewScheduleDefinition) says what is reviewed, by whom and how
// often; each period is an instance (accessReviewInstance) whose decision
// items (accessReviewInstanceDecisionItem) are the role assignments and
// eligibilities in force when it started. Reviewers approve or deny each
// item; at the end, unanswered items may take a default decision and
// denials may be applied — the assignment removed — one store transaction
// per item with its audit record. All three are store objects, so that a
// decision, the removal it leads to and their audit record commit
// together.
const (
	ReviewDefinitionKind = "accessReviewScheduleDefinition"
	ReviewInstanceKind   = "accessReviewInstance"
	ReviewItemKind       = "accessReviewInstanceDecisionItem"
	// ReviewReminderKind marks an instance whose reminder is recorded (its
	// id is the instance's): created with the accessReview.remind record,
	// so that the reminder is recorded once, whichever node sweeps.
	ReviewReminderKind = "accessReviewReminder"
)

// Instance statuses. An instance is NotStarted until its start, then
// InProgress until its end (or until an administrator stops it), then
// Completed; Applied once its denials have been carried out. A NotStarted
// instance an administrator stops — or whose whole window passed while no
// node swept — is Stopped and never runs.
const (
	ReviewNotStarted = "NotStarted"
	ReviewInProgress = "InProgress"
	ReviewCompleted  = "Completed"
	ReviewApplied    = "Applied"
	ReviewStopped    = "Stopped"
)

// Decisions (Graph's values).
const (
	DecisionNotReviewed = "NotReviewed"
	DecisionApprove     = "Approve"
	DecisionDeny        = "Deny"
	DecisionDontKnow    = "DontKnow"
)

// Recommendations: Approve for a principal that signed in within the look
// back, Deny for one that did not, NotAvailable when that cannot be known.
const (
	RecommendApprove      = "Approve"
	RecommendDeny         = "Deny"
	RecommendNotAvailable = "NotAvailable"
)

// Apply results of a decision item. Graph also has
// AppliedWithUnknownFailure; here a removal and its result commit in one
// transaction, so the outcome is always known.
const (
	ApplyNotApplied = "NotApplied"
	ApplyApplied    = "Applied"
	ApplyFailed     = "Failed"
)

// Assignment states of a decision item: an active role assignment, or a
// PIM eligibility.
const (
	StateActive   = "Active"
	StateEligible = "Eligible"
)

// How an item's principal holds the role: directly, or as a member of a
// group the role is assigned to.
const (
	ViaDirect = "direct"
	ViaGroup  = "group"
)

// Principal types of decision items (and of the definition's filter): the
// directory's kinds, and "unknown" for an assignment whose principal no
// longer exists.
const (
	PrincipalUser             = directory.KindUser
	PrincipalServicePrincipal = directory.KindServicePrincipal
	PrincipalGroup            = directory.KindGroup
	PrincipalUnknown          = "unknown"
)

// Recurrence types, the review frequencies Entra offers.
const (
	RecurOnetime    = "onetime"
	RecurWeekly     = "weekly"
	RecurMonthly    = "monthly"
	RecurQuarterly  = "quarterly"
	RecurSemiAnnual = "semiAnnual"
	RecurAnnual     = "annual"
)

// Bounds of a definition and of what an instance snapshots.
const (
	maxReviewers         = 25
	maxReviewRoles       = 50
	maxReviewNameLen     = 256
	maxReviewTextLen     = 1024
	maxJustificationLen  = 500
	maxOccurrences       = 1000
	maxOccurrenceIndex   = 99999 // instance ids carry it in five digits
	maxOnetimeDays       = 180
	maxReviewDefinitions = 1000
	// maxReviewItems bounds one instance: its start writes every item in
	// one transaction.
	maxReviewItems = 50000
)

// DefaultReviewRetention is how long an ended instance and its decision
// items are kept (Reviews.Retention): a year after it ended, the sweep
// removes them. The audit log keeps every decision and removal.
const DefaultReviewRetention = 365 * 24 * time.Hour

// Bounds of retention: the decision items one pruning transaction
// deletes, and one sweep in all — so that neither a transaction nor a
// sweep grows with the history left to prune (the rest waits for the
// next sweep).
const (
	reviewPruneBatch = 1000
	reviewPruneSweep = maxReviewItems
)

// RecommendationLookBack is how far back a successful sign-in makes the
// recommendation Approve (Entra's default, 30 days).
const RecommendationLookBack = 30 * 24 * time.Hour

// ReviewActor is the actor of what time does to reviews (starts, ends,
// default decisions, automatic application).
const ReviewActor = "verity-reviews"

// Identity names a principal as reviews show it (Graph's identity).
type Identity struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
	Type        string `json:"type,omitempty"`
}

// ReviewDefinition is an access review's definition: what is reviewed
// (Scope), by whom (Reviewers, or each principal itself with SelfReview)
// and when (Settings) — Graph's accessReviewScheduleDefinition, with the
// scope in Verity's terms. It does not change once created — but for
// Pruned, which retention keeps up to date; Status is worked out from its
// instances (and Pruned) when read.
type ReviewDefinition struct {
	ID                      string      `json:"id"`
	DisplayName             string      `json:"displayName"`
	DescriptionForAdmins    string      `json:"descriptionForAdmins,omitempty"`
	DescriptionForReviewers string      `json:"descriptionForReviewers,omitempty"`
	Scope                   ReviewScope `json:"scope"`
	// Reviewers are user and group ids (a group's members, transitively,
	// review); with SelfReview each principal reviews its own access, and
	// FallbackReviewers review the items whose principal cannot (service
	// principals, groups, principals that no longer exist).
	Reviewers         []string       `json:"reviewers,omitempty"`
	SelfReview        bool           `json:"selfReview,omitempty"`
	FallbackReviewers []string       `json:"fallbackReviewers,omitempty"`
	Settings          ReviewSettings `json:"settings"`
	// Notify are webhook URLs told of its instances' start, reminder,
	// completion and application (see Notifier), checked as a role's
	// Notify are; which of those are posted, the settings'
	// MailNotificationsEnabled and ReminderNotificationsEnabled say.
	Notify []string `json:"notify,omitempty"`
	// Status: NotStarted (no instance has started), InProgress, or
	// Completed (no occurrence left to run).
	Status          string    `json:"status,omitempty"`
	CreatedBy       Identity  `json:"createdBy"`
	CreatedDateTime time.Time `json:"createdDateTime"`
	// Pruned is what retention removed of its instances; the sweep alone
	// sets it, in the transaction that removes an instance.
	Pruned *ReviewPruned `json:"pruned,omitempty"`
}

// ReviewPruned is what a definition keeps of the instances retention
// removed: enough for its status and for the numbering of its next
// instances once no instance of its past is left.
type ReviewPruned struct {
	// Instances and Items count what was removed.
	Instances int `json:"instances"`
	Items     int `json:"items"`
	// LastOccurrence is the highest occurrence number removed: the next
	// instance is numbered after it, as if the instance were still there.
	LastOccurrence int `json:"lastOccurrence"`
	// Started says one of them had started (it was not Stopped): the
	// definition is not NotStarted again.
	Started bool `json:"started"`
	// LastDateTime is when the last of them was removed.
	LastDateTime time.Time `json:"lastDateTime"`
}

// ReviewScope is what a review covers: role assignments of a role kind at
// ResourceScope and below, optionally of some roles only, optionally with
// PIM eligibilities, of some principal types (all when empty).
type ReviewScope struct {
	ResourceScope     string   `json:"resourceScope"`
	RoleKind          string   `json:"roleKind"`
	RoleDefinitionIDs []string `json:"roleDefinitionIds,omitempty"`
	IncludeEligible   bool     `json:"includeEligible,omitempty"`
	PrincipalTypes    []string `json:"principalTypes,omitempty"`
}

// ReviewSettings are Graph's accessReviewScheduleSettings that apply.
type ReviewSettings struct {
	Recurrence             Recurrence `json:"recurrence"`
	InstanceDurationInDays int        `json:"instanceDurationInDays"`
	// DefaultDecision (Approve, Deny or Recommendation) is taken at the
	// end by the items nobody answered, when DefaultDecisionEnabled.
	DefaultDecisionEnabled bool   `json:"defaultDecisionEnabled"`
	DefaultDecision        string `json:"defaultDecision,omitempty"`
	// AutoApplyDecisionsEnabled: denials are carried out at the end
	// without an administrator's POST applyDecisions.
	AutoApplyDecisionsEnabled       bool `json:"autoApplyDecisionsEnabled"`
	JustificationRequiredOnApproval bool `json:"justificationRequiredOnApproval"`
	// RecommendationsEnabled: each item recommends Deny for a principal
	// without a successful sign-in in the last 30 days.
	RecommendationsEnabled bool `json:"recommendationsEnabled"`
	// MailNotificationsEnabled: reviewers are told when an instance
	// starts, the creator and the scope's administrators when it completes
	// and when its decisions are applied — Graph's mail to reviewers and
	// the review's creator. ReminderNotificationsEnabled: reviewers with
	// items not reviewed are reminded once, half-way through. Both post to
	// the definition's Notify, and send nothing without it.
	MailNotificationsEnabled     bool `json:"mailNotificationsEnabled"`
	ReminderNotificationsEnabled bool `json:"reminderNotificationsEnabled"`
}

// Recurrence is when instances start: from StartDate, once or every
// period, until EndDate (the last day an instance may start) or for
// NumberOfOccurrences instances, or for good. Dates are "2026-12-01"
// (midnight UTC) or RFC 3339 date-times.
type Recurrence struct {
	Type                string `json:"type"`
	StartDate           string `json:"startDate"`
	EndDate             string `json:"endDate,omitempty"`
	NumberOfOccurrences int    `json:"numberOfOccurrences,omitempty"`
}

// ReviewInstance is one period of a review (Graph's accessReviewInstance).
// Its id is the definition's id and the occurrence's number, so that every
// node names the same instance the same way.
type ReviewInstance struct {
	ID            string    `json:"id"`
	DefinitionID  string    `json:"definitionId"`
	Occurrence    int       `json:"occurrence"`
	Status        string    `json:"status"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	// SnapshotRevision is the store revision the items were read at.
	SnapshotRevision int64        `json:"snapshotRevision,omitempty"`
	Summary          *ReviewStats `json:"summary,omitempty"`
	StoppedBy        *Identity    `json:"stoppedBy,omitempty"`
	StoppedDateTime  *time.Time   `json:"stoppedDateTime,omitempty"`
	StoppedReason    string       `json:"stoppedReason,omitempty"`
	AppliedBy        *Identity    `json:"appliedBy,omitempty"`
	AppliedDateTime  *time.Time   `json:"appliedDateTime,omitempty"`
}

// ReviewStats counts an instance's items by decision and apply result,
// kept from its start, completion and application.
type ReviewStats struct {
	Items       int `json:"items"`
	Approved    int `json:"approved"`
	Denied      int `json:"denied"`
	DontKnow    int `json:"dontKnow"`
	NotReviewed int `json:"notReviewed"`
	Applied     int `json:"applied"`
	Failed      int `json:"failed"`
}

// ReviewItem is one principal's hold on one role assignment or
// eligibility, as it was at the instance's start, with its decision and
// what applying it did (Graph's accessReviewInstanceDecisionItem).
type ReviewItem struct {
	ID           string   `json:"id"`
	DefinitionID string   `json:"definitionId"`
	InstanceID   string   `json:"instanceId"`
	Principal    Identity `json:"principal"`
	Role         Identity `json:"role"`
	RoleKind     string   `json:"roleKind"`
	Scope        string   `json:"scope"`
	// Via says whether the principal holds the role itself or as a member
	// of ViaGroup, which the assignment names.
	Via      string    `json:"via"`
	ViaGroup *Identity `json:"viaGroup,omitempty"`
	// AssignmentState is Active (a role assignment, AssignmentID) or
	// Eligible (a PIM eligibility); AssignmentRevision is its store
	// revision at the start: a later change leaves it alone.
	AssignmentState    string `json:"assignmentState"`
	AssignmentID       string `json:"assignmentId"`
	AssignmentRevision int64  `json:"assignmentRevision"`
	// AssignmentType is Assigned or Activated (PIM) for a time-bound
	// assignment; EndDateTime is when it or the eligibility ends.
	AssignmentType     string     `json:"assignmentType,omitempty"`
	TimeBound          bool       `json:"timeBound"`
	EndDateTime        *time.Time `json:"endDateTime,omitempty"`
	Recommendation     string     `json:"recommendation,omitempty"`
	LastSignInDateTime *time.Time `json:"lastSignInDateTime,omitempty"`
	Decision           string     `json:"decision"`
	Justification      string     `json:"justification,omitempty"`
	ReviewedBy         *Identity  `json:"reviewedBy,omitempty"`
	ReviewedDateTime   *time.Time `json:"reviewedDateTime,omitempty"`
	ApplyResult        string     `json:"applyResult"`
	ApplyDescription   string     `json:"applyDescription,omitempty"`
	AppliedBy          *Identity  `json:"appliedBy,omitempty"`
	AppliedDateTime    *time.Time `json:"appliedDateTime,omitempty"`
}

// Errors of access reviews, with the codes a client sees.
var (
	ErrReviewNotFound     = &Error{Code: "NotFound", Message: "no such access review, instance or decision item"}
	ErrNotReviewer        = &Error{Code: "NotReviewer", Message: "the caller is not a reviewer of this item"}
	ErrOwnAccess          = &Error{Code: "SelfReviewNotAllowed", Message: "nobody reviews their own access unless the review is a self-review"}
	ErrReviewNotActive    = &Error{Code: "AccessReviewNotInProgress", Message: "the review instance is not in progress"}
	ErrReviewNotCompleted = &Error{Code: "AccessReviewNotCompleted", Message: "decisions are applied once the instance has completed"}
	ErrTooManyReviews     = &Error{Code: "AccessReviewLimitExceeded", Message: fmt.Sprintf("at most %d access review definitions", maxReviewDefinitions)}
)

// reviewInvalid is a property of a definition or decision at fault.
func reviewInvalid(field, format string, args ...any) *Error {
	return &Error{Code: "InvalidAccessReview", Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate fills the definition's defaults and canonical forms and
// reports the first invalid property by its JSON path. It does not look
// at the store (Create checks the reviewers against the directory). It
// is idempotent.
func (d *ReviewDefinition) Validate() error {
	d.DisplayName = strings.TrimSpace(d.DisplayName)
	switch {
	case d.DisplayName == "":
		return reviewInvalid("displayName", "required")
	case len(d.DisplayName) > maxReviewNameLen:
		return reviewInvalid("displayName", "at most %d characters", maxReviewNameLen)
	case len(d.DescriptionForAdmins) > maxReviewTextLen:
		return reviewInvalid("descriptionForAdmins", "at most %d characters", maxReviewTextLen)
	case len(d.DescriptionForReviewers) > maxReviewTextLen:
		return reviewInvalid("descriptionForReviewers", "at most %d characters", maxReviewTextLen)
	}
	if err := d.Scope.normalize(); err != nil {
		return err
	}
	var err error
	if d.Reviewers, err = normalizeIDs("reviewers", d.Reviewers); err != nil {
		return err
	}
	if d.FallbackReviewers, err = normalizeIDs("fallbackReviewers", d.FallbackReviewers); err != nil {
		return err
	}
	switch {
	case d.SelfReview && len(d.Reviewers) > 0:
		return reviewInvalid("reviewers", "a self-review has no other reviewers; name them as fallbackReviewers for what principals cannot review themselves")
	case !d.SelfReview && len(d.Reviewers) == 0:
		return reviewInvalid("reviewers", "at least one user or group, or selfReview")
	case !d.SelfReview && len(d.FallbackReviewers) > 0:
		return reviewInvalid("fallbackReviewers", "only for a self-review")
	}
	if err := d.Settings.normalize(); err != nil {
		return err
	}
	if err := checkWebhooks(d.Notify); err != nil {
		return reviewInvalid(err.Field, "%s", err.Message)
	}
	if len(d.Notify) > 0 && !d.Settings.MailNotificationsEnabled && !d.Settings.ReminderNotificationsEnabled {
		return reviewInvalid("notify", "nothing would be posted: enable settings.mailNotificationsEnabled or settings.reminderNotificationsEnabled")
	}
	return nil
}

func (s *ReviewScope) normalize() error {
	if s.RoleKind == "" {
		s.RoleKind = RoleKindRBAC
	}
	if s.RoleKind != RoleKindRBAC && s.RoleKind != RoleKindDirectory {
		return reviewInvalid("scope.roleKind", `must be "rbac" or "directory"`)
	}
	if s.ResourceScope == "" {
		s.ResourceScope = "/"
	}
	if !strings.HasPrefix(s.ResourceScope, "/") || path.Clean(s.ResourceScope) != s.ResourceScope ||
		strings.ContainsAny(s.ResourceScope, "\x00\\") || len(s.ResourceScope) > 1024 {
		return reviewInvalid("scope.resourceScope", `must be a clean absolute path such as "/" or "/apps/payroll"`)
	}
	if len(s.RoleDefinitionIDs) > maxReviewRoles {
		return reviewInvalid("scope.roleDefinitionIds", "at most %d roles", maxReviewRoles)
	}
	for i, ref := range s.RoleDefinitionIDs {
		field := fmt.Sprintf("scope.roleDefinitionIds[%d]", i)
		switch s.RoleKind {
		case RoleKindDirectory:
			r, ok := directoryRole(ref)
			if !ok {
				return reviewInvalid(field, "%q is not a directory role", ref)
			}
			s.RoleDefinitionIDs[i] = r.ID
		default:
			if r, ok := rbac.LookupRole(ref); ok {
				s.RoleDefinitionIDs[i] = r.ID
			} else if !looksLikeGUID(roleGUID(ref)) {
				return reviewInvalid(field, "%q is neither a built-in role nor a role's GUID or id", ref)
			}
		}
	}
	seen := map[string]bool{}
	for i, t := range s.PrincipalTypes {
		field := fmt.Sprintf("scope.principalTypes[%d]", i)
		if t != PrincipalUser && t != PrincipalServicePrincipal && t != PrincipalGroup {
			return reviewInvalid(field, `must be "user", "servicePrincipal" or "group"`)
		}
		if seen[t] {
			return reviewInvalid(field, "%q is listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

func (s *ReviewSettings) normalize() error {
	if err := s.Recurrence.validate(); err != nil {
		return err
	}
	r := &s.Recurrence
	if max := r.maxDurationDays(); s.InstanceDurationInDays < 1 || s.InstanceDurationInDays > max {
		return reviewInvalid("settings.instanceDurationInDays", "must be between 1 and %d for a %s review", max, r.Type)
	}
	switch {
	case !s.DefaultDecisionEnabled && s.DefaultDecision != "":
		return reviewInvalid("settings.defaultDecision", "set without defaultDecisionEnabled")
	case s.DefaultDecisionEnabled && !slices.Contains([]string{DecisionApprove, DecisionDeny, "Recommendation"}, s.DefaultDecision):
		return reviewInvalid("settings.defaultDecision", "must be Approve, Deny or Recommendation")
	case s.DefaultDecision == "Recommendation" && !s.RecommendationsEnabled:
		return reviewInvalid("settings.defaultDecision", "Recommendation needs recommendationsEnabled")
	}
	return nil
}

// closedAt is when an ended instance was last changed: its end (which a
// stop moves earlier), its stop (before it started: its window may still
// be ahead), or its application, whichever is last. Retention counts from
// it.
func (inst *ReviewInstance) closedAt() time.Time {
	at := inst.EndDateTime
	for _, t := range []*time.Time{inst.StoppedDateTime, inst.AppliedDateTime} {
		if t != nil && t.After(at) {
			at = *t
		}
	}
	return at
}

// expired reports whether retention removes inst at now: it ended —
// Applied, Stopped, or Completed with no denial to apply — and was closed
// at least retention ago. A Completed instance whose denials still wait
// for an administrator stays: retention never drops a decision nobody has
// carried out. A retention of 0 keeps everything.
func (inst *ReviewInstance) expired(now time.Time, retention time.Duration) bool {
	if retention <= 0 {
		return false
	}
	switch inst.Status {
	case ReviewApplied, ReviewStopped:
	case ReviewCompleted:
		// Decisions do not change once completed, so the summary's
		// denials are final; applying each marks the instance Applied.
		if inst.Summary == nil || inst.Summary.Denied > 0 {
			return false
		}
	default:
		return false
	}
	return !now.Before(inst.closedAt().Add(retention))
}

// reminderAt is when an instance's reminder falls due: half-way through.
func (inst *ReviewInstance) reminderAt() time.Time {
	return inst.StartDateTime.Add(inst.EndDateTime.Sub(inst.StartDateTime) / 2)
}

// instanceID names occurrence k of a definition.
func instanceID(definitionID string, k int) string { return fmt.Sprintf("%s.%05d", definitionID, k) }

// normalizeIDs lower-cases and checks a list of principal ids.
func normalizeIDs(field string, ids []string) ([]string, error) {
	if len(ids) > maxReviewers {
		return nil, reviewInvalid(field, "at most %d", maxReviewers)
	}
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "" || len(id) > 128 {
			return nil, reviewInvalid(fmt.Sprintf("%s[%d]", field, i), "must be a user or group id")
		}
		if slices.Contains(out, id) {
			return nil, reviewInvalid(fmt.Sprintf("%s[%d]", field, i), "%s is listed twice", id)
		}
		out = append(out, id)
	}
	return out, nil
}

// roleGUID is the GUID of a role reference (its last path segment, lower
// case): how assignments, eligibilities and filters are compared.
func roleGUID(ref string) string { return strings.ToLower(path.Base(ref)) }

func looksLikeGUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
