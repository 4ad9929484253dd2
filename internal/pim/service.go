package pim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// Service carries out PIM requests on a store. Its clock is injected, so
// that expiry is tested without sleeping.
type Service struct {
	st store.Store
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Groups returns a principal's transitive groups, for eligibilities
	// and approvers that are groups; nil: none.
	Groups func(principalID string) []string
}

// New returns a service over st.
func New(st store.Store) *Service { return &Service{st: st, Now: time.Now} }

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// deactivateGrace is how long an activation must have lasted before its
// holder may end it (Entra: 5 minutes).
const deactivateGrace = 5 * time.Minute

// extendWindow and renewWindow: an eligibility may be extended in its
// last 14 days, renewed within 90 days after it ended (Entra's rules).
const (
	extendWindow = 14 * 24 * time.Hour
	renewWindow  = 90 * 24 * time.Hour
)

// Submit checks and carries out a request made by caller: an activation
// without approval is provisioned at once (its assignment written in the
// same transaction as the request and their audit record); one that needs
// approval waits for it.
func (s *Service) Submit(ctx context.Context, caller Caller, r Request) (Request, error) {
	now := s.now()
	if err := s.normalise(&r, caller, now); err != nil {
		return r, err
	}
	var out Request
	err := s.update(ctx, caller.ID, "pim."+lowerFirst(r.RequestType), func(ctx context.Context, tx store.Tx) (*Request, error) {
		p, err := policyIn(ctx, tx, r.RoleKind, r.RoleDefinitionID, r.Scope)
		if err != nil {
			return nil, err
		}
		switch r.RequestType {
		case SelfActivate:
			err = s.activate(ctx, tx, caller, &r, p, now)
		case SelfDeactivate:
			err = s.deactivate(ctx, tx, &r, now)
		case SelfExtend, SelfRenew:
			err = s.askToExtend(ctx, tx, &r, p, now)
		case AdminAssign:
			err = s.adminAssign(ctx, tx, caller, &r, p, now)
		case AdminRemove:
			err = s.adminRemove(ctx, tx, &r, now)
		case AdminExtend, AdminRenew:
			err = s.adminExtend(ctx, tx, &r, p, now)
		}
		if err != nil {
			return nil, err
		}
		if err := putRequest(ctx, tx, &r); err != nil {
			return nil, err
		}
		out = r
		return &out, nil
	})
	return out, err
}

// normalise fills defaults and checks what does not need the store.
func (s *Service) normalise(r *Request, caller Caller, now time.Time) error {
	if !slices.Contains(RequestTypes, r.RequestType) {
		return invalid("requestType", "must be one of "+strings.Join(RequestTypes, ", "))
	}
	self := strings.HasPrefix(r.RequestType, "Self")
	if r.PrincipalID == "" && self {
		r.PrincipalID = caller.ID
	}
	switch {
	case r.PrincipalID == "":
		return invalid("principalId", "required")
	case r.RoleDefinitionID == "":
		return invalid("roleDefinitionId", "required")
	case self && r.PrincipalID != caller.ID:
		return ErrForbidden // a user activates, extends or renews only their own role
	case !self && !caller.Admin:
		return ErrForbidden
	case len(r.Justification) > 500:
		return invalid("justification", "at most 500 characters")
	case r.TicketInfo != nil && (len(r.TicketInfo.TicketNumber) > 100 || len(r.TicketInfo.TicketSystem) > 100):
		return invalid("ticketInfo", "ticketNumber and ticketSystem: at most 100 characters each")
	}
	if r.RoleKind == "" {
		r.RoleKind = RoleKindRBAC
	}
	switch r.RoleKind {
	case RoleKindRBAC:
		if role, ok := rbac.LookupRole(r.RoleDefinitionID); ok {
			r.RoleDefinitionID = role.ID
		}
		if r.Scope == "" {
			r.Scope = "/"
		}
	case RoleKindDirectory:
		if role, ok := directoryRole(r.RoleDefinitionID); ok {
			r.RoleDefinitionID = role.ID
		} else {
			return invalid("roleDefinitionId", "not a directory role")
		}
		if r.Scope == "" {
			r.Scope = "/"
		}
	default:
		return invalid("roleKind", `must be "rbac" or "directory"`)
	}
	if !strings.HasPrefix(r.Scope, "/") || len(r.Scope) > 1024 {
		return invalid("scope", `must be a scope such as "/" or "/apps/payroll"`)
	}
	if r.Target == "" {
		r.Target = TargetEligibility
		if r.RequestType == SelfActivate || r.RequestType == SelfDeactivate {
			r.Target = TargetAssignment
		}
	}
	if r.Target != TargetEligibility && r.Target != TargetAssignment {
		return invalid("target", `must be "eligibility" or "assignment"`)
	}
	if r.Target == TargetAssignment && (r.RequestType == SelfRenew || r.RequestType == AdminRenew) {
		return errRenewAssignment
	}
	r.ID, r.RequestorID, r.CreatedDateTime, r.Status = uuid.NewString(), caller.ID, now, ""
	r.MFA, r.Approvals, r.CompletedDateTime, r.ApprovalDeadline, r.TargetID = caller.MFA, nil, nil, nil, ""
	return nil
}

// directoryRole finds a built-in directory role by id or display name.
func directoryRole(ref string) (directory.RoleDefinition, bool) {
	if r, ok := directory.RoleByID(ref); ok {
		return r, true
	}
	for _, r := range directory.BuiltinRoles() {
		if strings.EqualFold(r.DisplayName, ref) {
			return r, true
		}
	}
	return directory.RoleDefinition{}, false
}

// window is when the request's result would be in force: from the
// schedule's start (now when none), for its duration or to its end;
// end nil for no expiration.
func (r *Request) window(now time.Time, defaultDuration time.Duration) (time.Time, *time.Time, error) {
	start := now
	if r.ScheduleInfo.StartDateTime != nil {
		start = r.ScheduleInfo.StartDateTime.UTC()
		if start.Before(now.Add(-5 * time.Minute)) {
			return start, nil, invalid("scheduleInfo.startDateTime", "must not be in the past")
		}
		if start.Before(now) {
			start = now
		}
	}
	ex := r.ScheduleInfo.Expiration
	switch ex.Type {
	case "", "AfterDuration", "AfterDateTime", "NoExpiration":
	default:
		return start, nil, invalid("scheduleInfo.expiration.type", "must be AfterDuration, AfterDateTime or NoExpiration")
	}
	var end *time.Time
	switch {
	case ex.Type == "NoExpiration":
	case ex.Duration != nil:
		if ex.Duration.D() <= 0 {
			return start, nil, invalid("scheduleInfo.expiration.duration", "must be positive")
		}
		e := start.Add(ex.Duration.D())
		end = &e
	case ex.EndDateTime != nil:
		e := ex.EndDateTime.UTC()
		if !e.After(start) {
			return start, nil, invalid("scheduleInfo.expiration.endDateTime", "must be after the start")
		}
		end = &e
	case defaultDuration > 0:
		e := start.Add(defaultDuration)
		end = &e
	}
	return start, end, nil
}

// activate checks a SelfActivate against the eligibility and the role's
// settings, and provisions it unless approval is required.
func (s *Service) activate(ctx context.Context, tx store.Tx, caller Caller, r *Request, p Policy, now time.Time) error {
	el, err := s.eligibilityFor(ctx, tx, r, now)
	if err != nil {
		return err
	}
	r.LinkedEligibilityID = el.ID
	start, end, err := r.window(now, p.ActivationMaxDuration.D())
	if err != nil {
		return err
	}
	switch {
	case end == nil:
		return invalid("scheduleInfo.expiration", "an activation must end")
	case end.Sub(start) > p.ActivationMaxDuration.D():
		return invalid("scheduleInfo.expiration", "longer than the role's maximum activation of "+p.ActivationMaxDuration.D().String())
	case p.RequireJustification && strings.TrimSpace(r.Justification) == "":
		return invalid("justification", "the role's settings require a justification")
	case p.RequireTicket && (r.TicketInfo == nil || strings.TrimSpace(r.TicketInfo.TicketNumber) == ""):
		return invalid("ticketInfo.ticketNumber", "the role's settings require ticket information")
	case p.RequireMFA && !caller.MFA:
		return ErrMFARequired
	case p.AuthenticationContext != "" && !slices.Contains(caller.AuthContexts, p.AuthenticationContext):
		return ErrAuthContext
	}
	if el.EndDateTime != nil && end.After(*el.EndDateTime) {
		e := *el.EndDateTime // an activation ends with its eligibility
		end = &e
	}
	if a, err := s.activeActivation(ctx, tx, r, now); err != nil {
		return err
	} else if a != nil {
		return ErrAlreadyActive
	}
	if pending, err := pendingFor(ctx, tx, r); err != nil {
		return err
	} else if pending {
		return ErrPending
	}
	r.ScheduleInfo.StartDateTime, r.ScheduleInfo.Expiration = &start, Expiration{Type: "AfterDateTime", EndDateTime: end}
	if p.RequireApproval {
		deadline := now.Add(p.ApprovalTimeout.D())
		r.Status, r.ApprovalDeadline = StatusPendingApproval, &deadline
		return nil
	}
	return s.provision(ctx, tx, r, now)
}

// provision writes the activation's time-bound assignment.
func (s *Service) provision(ctx context.Context, tx store.Tx, r *Request, now time.Time) error {
	start, end := *r.ScheduleInfo.StartDateTime, r.ScheduleInfo.Expiration.EndDateTime
	if start.Before(now) {
		// Approved later than asked: the activation runs its length from
		// the approval.
		if end != nil {
			e := now.Add(end.Sub(start))
			end = &e
		}
		start = now
		r.ScheduleInfo.StartDateTime, r.ScheduleInfo.Expiration.EndDateTime = &start, end
	}
	assignmentType := schedule.Activated
	if r.RequestType == AdminAssign {
		assignmentType = schedule.Assigned
	}
	obj, err := assignmentObject(r, start, end, assignmentType)
	if err != nil {
		return err
	}
	if err := tx.Create(ctx, obj); err != nil {
		return err
	}
	r.TargetID, r.Status = obj.ID, StatusProvisioned
	r.CompletedDateTime = &now
	return nil
}

// assignmentObject is the active assignment a request makes, of its
// role kind.
func assignmentObject(r *Request, start time.Time, end *time.Time, assignmentType string) (store.Object, error) {
	id := uuid.NewString()
	switch r.RoleKind {
	case RoleKindDirectory:
		a := &directory.RoleAssignment{ID: id, PrincipalID: r.PrincipalID, RoleDefinitionID: r.RoleDefinitionID, DirectoryScopeID: r.Scope,
			Schedule: schedule.Schedule{StartDateTime: &start, EndDateTime: end, AssignmentType: assignmentType, LinkedEligibilityScheduleID: r.LinkedEligibilityID}}
		a.Normalize()
		if err := a.Validate(); err != nil {
			return store.Object{}, invalid("roleDefinitionId", err.Error())
		}
		return directory.RoleAssignments.Object(a)
	default:
		a := rbac.Assignment{ID: id, PrincipalID: r.PrincipalID, RoleDefinitionID: r.RoleDefinitionID, Scope: r.Scope,
			Schedule:    schedule.Schedule{StartDateTime: &start, EndDateTime: end, AssignmentType: assignmentType, LinkedEligibilityScheduleID: r.LinkedEligibilityID},
			Description: "PIM: " + r.RequestType + " " + r.ID}
		a.Normalize()
		body, err := json.Marshal(a)
		if err != nil {
			return store.Object{}, err
		}
		return store.Object{Kind: rbac.Kind, ID: id, Body: body}, nil
	}
}

// activation is an active assignment a PIM request made.
type activation struct {
	kind, id        string
	principal, role string
	scope           string
	schedule.Schedule
}

// start is when the activation began (the zero time when unbounded).
func (a *activation) start() time.Time {
	if a.StartDateTime == nil {
		return time.Time{}
	}
	return *a.StartDateTime
}

// activations lists the time-bound and activated assignments of a role
// kind (the ones PIM made).
func activations(ctx context.Context, r store.Reader, roleKind string) ([]activation, error) {
	kind := rbac.Kind
	if roleKind == RoleKindDirectory {
		kind = directory.RoleAssignments.Name()
	}
	var out []activation
	err := store.Each(ctx, r, kind, func(o store.Object) error {
		a, err := readActivation(roleKind, o)
		if err != nil {
			return err
		}
		if a.AssignmentType == "" && a.EndDateTime == nil {
			return nil // a standing assignment, not PIM's
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// readActivation reads an active assignment of a role kind (o is of that
// kind's store kind).
func readActivation(roleKind string, o store.Object) (activation, error) {
	a := activation{kind: o.Kind, id: o.ID}
	if roleKind == RoleKindDirectory {
		v, err := directory.RoleAssignments.FromObject(o)
		if err != nil {
			return a, err
		}
		a.principal, a.role, a.scope, a.Schedule = v.PrincipalID, v.RoleDefinitionID, v.DirectoryScopeID, v.Schedule
		return a, nil
	}
	var v rbac.Assignment
	if err := json.Unmarshal(o.Body, &v); err != nil {
		return a, fmt.Errorf("%s %s: %w", o.Kind, o.ID, err)
	}
	a.principal, a.role, a.scope, a.Schedule = v.PrincipalID, v.RoleDefinitionID, v.Scope, v.Schedule
	return a, nil
}

// activeActivation is the principal's activation of the role at the
// scope in force at now, if any.
func (s *Service) activeActivation(ctx context.Context, tx store.Reader, r *Request, now time.Time) (*activation, error) {
	list, err := activations(ctx, tx, r.RoleKind)
	if err != nil {
		return nil, err
	}
	for i := range list {
		a := &list[i]
		if key(r.RoleKind, a.principal, a.role, a.scope) == key(r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope) &&
			a.AssignmentType == schedule.Activated && a.InForce(now) {
			return a, nil
		}
	}
	return nil, nil
}

// deactivate ends the requester's activation (not in its first 5
// minutes).
func (s *Service) deactivate(ctx context.Context, tx store.Tx, r *Request, now time.Time) error {
	a, err := s.activeActivation(ctx, tx, r, now)
	if err != nil {
		return err
	}
	if a == nil {
		return ErrNotActive
	}
	if now.Sub(a.start()) < deactivateGrace {
		return ErrTooSoon
	}
	if err := tx.Delete(ctx, a.kind, a.id); err != nil {
		return err
	}
	r.TargetID, r.LinkedEligibilityID, r.Status, r.CompletedDateTime = a.id, a.LinkedEligibilityScheduleID, StatusRevoked, &now
	return nil
}

// eligibilityFor finds the eligibility a request of the principal (or of
// one of its groups) for the role at the scope uses, in force at now: one
// keyed read for the principal and one for each group.
func (s *Service) eligibilityFor(ctx context.Context, tx store.Reader, r *Request, now time.Time) (*Eligibility, error) {
	principals := []string{r.PrincipalID}
	if s.Groups != nil {
		principals = append(principals, s.Groups(r.PrincipalID)...)
	}
	x, err := indexEligibilities(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, p := range principals {
		list, err := x.of(ctx, r.RoleKind, p, r.RoleDefinitionID, r.Scope)
		if err != nil {
			return nil, err
		}
		for _, e := range list {
			if e.RoleKind == r.RoleKind && strings.EqualFold(e.RoleDefinitionID, r.RoleDefinitionID) &&
				strings.EqualFold(e.Scope, r.Scope) && e.PrincipalID == p && e.InForce(now) {
				return e, nil
			}
		}
	}
	return nil, ErrNotEligible
}

// askToExtend files a SelfExtend (an eligibility, or an administrator's
// active assignment, in its last 14 days) or SelfRenew (an eligibility
// ended within 90 days) for an administrator's approval.
func (s *Service) askToExtend(ctx context.Context, tx store.Tx, r *Request, p Policy, now time.Time) error {
	if r.Target == TargetAssignment {
		a, err := ownAssignment(ctx, tx, r, now)
		if err != nil {
			return err
		}
		// The assignment asked about: Decide extends this one. The end is
		// checked now, so that the requester learns of a wrong one before
		// anyone is asked.
		r.TargetID, r.LinkedEligibilityID = a.id, ""
		if _, err := assignmentEnd(r, a, p, now); err != nil {
			return err
		}
	} else {
		e, err := s.ownEligibility(ctx, tx, r, now)
		if err != nil {
			return err
		}
		r.LinkedEligibilityID = e.ID
		if _, _, err := r.window(now, p.EligibilityMaxDuration.D()); err != nil {
			return err
		}
	}
	if pending, err := pendingFor(ctx, tx, r); err != nil {
		return err
	} else if pending {
		return ErrPending
	}
	deadline := now.Add(p.ApprovalTimeout.D())
	r.Status, r.ApprovalDeadline = StatusPendingApproval, &deadline
	return nil
}

// ownEligibility is the principal's own eligibility a SelfExtend or
// SelfRenew is about (by id when the request links one).
func (s *Service) ownEligibility(ctx context.Context, tx store.Reader, r *Request, now time.Time) (*Eligibility, error) {
	x, err := indexEligibilities(ctx, tx)
	if err != nil {
		return nil, err
	}
	list, err := x.of(ctx, r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope)
	if err != nil {
		return nil, err
	}
	for _, e := range list {
		if e.PrincipalID != r.PrincipalID || e.RoleKind != r.RoleKind ||
			!strings.EqualFold(e.RoleDefinitionID, r.RoleDefinitionID) || !strings.EqualFold(e.Scope, r.Scope) ||
			(r.LinkedEligibilityID != "" && e.ID != r.LinkedEligibilityID) || e.EndDateTime == nil {
			continue
		}
		end := *e.EndDateTime
		switch r.RequestType {
		case SelfExtend, AdminExtend:
			if now.Before(end) && end.Sub(now) <= extendWindow || r.RequestType == AdminExtend && now.Before(end) {
				return e, nil
			}
		case SelfRenew, AdminRenew:
			if !now.Before(end) && now.Sub(end) <= renewWindow {
				return e, nil
			}
		}
	}
	return nil, ErrNothingToExtend
}

// adminAssign makes an eligibility, or an active assignment, within the
// role's settings.
func (s *Service) adminAssign(ctx context.Context, tx store.Tx, caller Caller, r *Request, p Policy, now time.Time) error {
	start, end, err := r.window(now, 0)
	if err != nil {
		return err
	}
	required, max := p.EligibilityExpirationRequired, p.EligibilityMaxDuration.D()
	if r.Target == TargetAssignment {
		required, max = p.AssignmentExpirationRequired, p.AssignmentMaxDuration.D()
		if p.AssignmentRequireJustification && strings.TrimSpace(r.Justification) == "" {
			return invalid("justification", "the role's settings require a justification for an active assignment")
		}
	}
	switch {
	case end == nil && required:
		return invalid("scheduleInfo.expiration", "the role's settings require an end of at most "+FormatISODuration(max))
	case end != nil && end.Sub(start) > max:
		return invalid("scheduleInfo.expiration", "longer than the role's maximum of "+FormatISODuration(max))
	}
	r.ScheduleInfo.StartDateTime, r.ScheduleInfo.Expiration = &start, Expiration{Type: "NoExpiration"}
	if end != nil {
		r.ScheduleInfo.Expiration = Expiration{Type: "AfterDateTime", EndDateTime: end}
	}
	if r.Target == TargetAssignment {
		return s.provision(ctx, tx, r, now)
	}
	// One eligibility per role kind, principal, role and scope, as in ARM:
	// one in force or to start refuses another; one that has ended is
	// replaced.
	x, err := indexEligibilities(ctx, tx)
	if err != nil {
		return err
	}
	existing, err := x.of(ctx, r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope)
	if err != nil {
		return err
	}
	for _, old := range existing {
		if old.EndDateTime == nil || now.Before(*old.EndDateTime) {
			return errEligibilityExists(old, now)
		}
	}
	var replaced []string
	for _, old := range existing {
		if err := tx.Delete(ctx, EligibilityKind, old.ID); err != nil {
			return fmt.Errorf("replace ended eligibility %s: %w", old.ID, err)
		}
		replaced = append(replaced, old.ID)
	}
	if len(replaced) > 0 {
		r.auditDetails = map[string]any{"replacedScheduleIds": replaced}
	}
	e := Eligibility{ID: uuid.NewString(), PrincipalID: r.PrincipalID, RoleDefinitionID: r.RoleDefinitionID, Scope: r.Scope,
		RoleKind: r.RoleKind, StartDateTime: start, EndDateTime: end, CreatedBy: caller.ID, CreatedDateTime: now, Justification: r.Justification}
	if err := putEligibility(ctx, tx, &e, true); err != nil {
		return err
	}
	r.TargetID, r.Status, r.CompletedDateTime = e.ID, StatusProvisioned, &now
	return nil
}

// adminRemove ends a principal's eligibility for the role at the scope —
// and the activations made from it — or an active assignment.
func (s *Service) adminRemove(ctx context.Context, tx store.Tx, r *Request, now time.Time) error {
	removed := ""
	if r.Target == TargetAssignment {
		list, err := activations(ctx, tx, r.RoleKind)
		if err != nil {
			return err
		}
		for _, a := range list {
			if key(r.RoleKind, a.principal, a.role, a.scope) == key(r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope) {
				if err := tx.Delete(ctx, a.kind, a.id); err != nil {
					return err
				}
				removed = a.id
			}
		}
	} else {
		x, err := indexEligibilities(ctx, tx)
		if err != nil {
			return err
		}
		found, err := x.of(ctx, r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope)
		if err != nil {
			return err
		}
		// The one the request links, when it links one: of duplicates made
		// before they were refused, the one the sweep reported.
		var ids []string
		for _, e := range found {
			if e.PrincipalID == r.PrincipalID && (r.LinkedEligibilityID == "" || e.ID == r.LinkedEligibilityID) {
				ids = append(ids, e.ID)
			}
		}
		for _, id := range ids {
			if err := tx.Delete(ctx, EligibilityKind, id); err != nil {
				return err
			}
			removed = id
		}
		// What was activated from it ends with it.
		list, err := activations(ctx, tx, r.RoleKind)
		if err != nil {
			return err
		}
		for _, a := range list {
			if slices.Contains(ids, a.LinkedEligibilityScheduleID) {
				if err := tx.Delete(ctx, a.kind, a.id); err != nil {
					return err
				}
			}
		}
	}
	if removed == "" {
		return &Error{Code: "RoleAssignmentDoesNotExist", Message: "the principal has no such " + r.Target + " to remove"}
	}
	r.TargetID, r.Status, r.CompletedDateTime = removed, StatusRevoked, &now
	return nil
}

// adminExtend moves an eligibility's end (AdminExtend: one in force;
// AdminRenew: one ended within 90 days), or an administrator's active
// assignment's (AdminExtend: one in force), within the role's settings.
func (s *Service) adminExtend(ctx context.Context, tx store.Tx, r *Request, p Policy, now time.Time) error {
	if r.Target == TargetAssignment {
		if p.AssignmentRequireJustification && strings.TrimSpace(r.Justification) == "" {
			return invalid("justification", "the role's settings require a justification for an active assignment")
		}
		a, err := ownAssignment(ctx, tx, r, now)
		if err != nil {
			return err
		}
		return extendAssignment(ctx, tx, a, r, p, now)
	}
	e, err := s.ownEligibility(ctx, tx, r, now)
	if err != nil {
		return err
	}
	return extendEligibility(ctx, tx, e, r, p, now)
}

// bounds are the role's settings for what an extension moves the end of.
type bounds struct {
	what, plural string // "eligibility", "eligibilities"
	required     bool
	max          time.Duration
}

func eligibilityBounds(p Policy) bounds {
	return bounds{"eligibility", "eligibilities", p.EligibilityExpirationRequired, p.EligibilityMaxDuration.D()}
}

func assignmentBounds(p Policy) bounds {
	return bounds{"active assignment", "active assignments", p.AssignmentExpirationRequired, p.AssignmentMaxDuration.D()}
}

// extendedEnd is the end an extension or renewal asks for (nil: none):
// the request's end, or its duration counted from the current end (from
// now when that has passed), or the maximum from now — at most the
// maximum from now, and an end when the settings require one.
func extendedEnd(r *Request, current *time.Time, b bounds, now time.Time) (*time.Time, error) {
	from := now
	if current != nil && current.After(now) {
		from = *current
	}
	_, end, err := r.window(now, b.max)
	if err != nil {
		return nil, err
	}
	if end != nil && r.ScheduleInfo.Expiration.Duration != nil {
		e := from.Add(r.ScheduleInfo.Expiration.Duration.D())
		end = &e
	}
	if end != nil && end.Sub(now) > b.max {
		return nil, invalid("scheduleInfo.expiration", "longer than the role's maximum "+b.what+" of "+FormatISODuration(b.max))
	}
	if end == nil && b.required {
		return nil, invalid("scheduleInfo.expiration", "the role's settings require "+b.plural+" to end")
	}
	return end, nil
}

func extendEligibility(ctx context.Context, tx store.Tx, e *Eligibility, r *Request, p Policy, now time.Time) error {
	end, err := extendedEnd(r, e.EndDateTime, eligibilityBounds(p), now)
	if err != nil {
		return err
	}
	e.EndDateTime = end
	if !e.StartDateTime.Before(now) || r.RequestType == AdminRenew || r.RequestType == SelfRenew {
		e.StartDateTime = now
	}
	if err := putEligibility(ctx, tx, e, false); err != nil {
		return err
	}
	r.LinkedEligibilityID, r.TargetID, r.Status, r.CompletedDateTime = e.ID, e.ID, StatusProvisioned, &now
	r.ScheduleInfo.Expiration = Expiration{Type: "NoExpiration"}
	if end != nil {
		r.ScheduleInfo.Expiration = Expiration{Type: "AfterDateTime", EndDateTime: end}
	}
	return nil
}

// Decide records an approver's answer to a pending request: an approved
// activation is provisioned then (for its full length from now), an
// approved extension or renewal applied; a denied one ends. Nobody
// answers their own request; an activation is answered by the role's
// approvers (users, or members of groups, it names), an extension or
// renewal by an administrator of the scope.
func (s *Service) Decide(ctx context.Context, approver Caller, requestID string, approve bool, justification string) (Request, error) {
	now := s.now()
	action := "pim.deny"
	if approve {
		action = "pim.approve"
	}
	var out Request
	err := s.update(ctx, approver.ID, action, func(ctx context.Context, tx store.Tx) (*Request, error) {
		r, err := getRequest(ctx, tx, requestID)
		if err != nil {
			return nil, err
		}
		if r.Status != StatusPendingApproval {
			return nil, ErrNotPending
		}
		if r.RequestorID == approver.ID || r.PrincipalID == approver.ID {
			return nil, ErrOwnRequest
		}
		p, err := policyIn(ctx, tx, r.RoleKind, r.RoleDefinitionID, r.Scope)
		if err != nil {
			return nil, err
		}
		if r.ApprovalDeadline != nil && !now.Before(*r.ApprovalDeadline) {
			return nil, ErrNotPending // timed out; the sweep records it
		}
		if r.RequestType == SelfActivate {
			if !s.isApprover(approver.ID, p) {
				return nil, ErrNotApprover
			}
		} else if !approver.Admin {
			return nil, ErrNotApprover
		}
		if p.ApproverJustificationRequired && strings.TrimSpace(justification) == "" {
			return nil, errMissingApproverWhy
		}
		if len(justification) > 500 {
			return nil, invalid("justification", "at most 500 characters")
		}
		r.Approvals = append(r.Approvals, Approval{ApproverID: approver.ID, Approved: approve, Justification: justification, Time: now})
		r.ApprovalDeadline = nil
		if !approve {
			r.Status, r.CompletedDateTime = StatusDenied, &now
		} else if r.RequestType == SelfActivate {
			// Still eligible, not active meanwhile.
			if _, err := s.eligibilityFor(ctx, tx, r, now); err != nil {
				return nil, err
			}
			if a, err := s.activeActivation(ctx, tx, r, now); err != nil {
				return nil, err
			} else if a != nil {
				return nil, ErrAlreadyActive
			}
			if err := s.provision(ctx, tx, r, now); err != nil {
				return nil, err
			}
		} else if r.Target == TargetAssignment {
			// The assignment asked about, still in its window now.
			a, err := ownAssignment(ctx, tx, r, now)
			if err != nil {
				return nil, err
			}
			if err := extendAssignment(ctx, tx, a, r, p, now); err != nil {
				return nil, err
			}
		} else {
			e, err := s.ownEligibility(ctx, tx, r, now)
			if err != nil {
				return nil, err
			}
			if err := extendEligibility(ctx, tx, e, r, p, now); err != nil {
				return nil, err
			}
		}
		if err := putRequest(ctx, tx, r); err != nil {
			return nil, err
		}
		out = *r
		return &out, nil
	})
	return out, err
}

func (s *Service) isApprover(id string, p Policy) bool {
	if slices.Contains(p.Approvers, id) {
		return true
	}
	if s.Groups != nil {
		for _, g := range s.Groups(id) {
			if slices.Contains(p.Approvers, g) {
				return true
			}
		}
	}
	return false
}

// Cancel withdraws the caller's own pending request.
func (s *Service) Cancel(ctx context.Context, caller Caller, requestID string) (Request, error) {
	now := s.now()
	var out Request
	err := s.update(ctx, caller.ID, "pim.cancel", func(ctx context.Context, tx store.Tx) (*Request, error) {
		r, err := getRequest(ctx, tx, requestID)
		if err != nil {
			return nil, err
		}
		if r.RequestorID != caller.ID {
			return nil, ErrForbidden
		}
		if r.Status != StatusPendingApproval {
			return nil, ErrNotPending
		}
		r.Status, r.CompletedDateTime, r.ApprovalDeadline = StatusCanceled, &now, nil
		if err := putRequest(ctx, tx, r); err != nil {
			return nil, err
		}
		out = *r
		return &out, nil
	})
	return out, err
}

// Sweep does what time does: pending requests past their deadline time
// out, and activations past their end are removed (the decision engine
// stopped honouring them at their end already; this takes them out of
// listings and records it). It returns how many of each. It also records,
// once, that an eligibility or an administrator's time-bound active
// assignment has entered its last 14 days (remindExpiring), and gives
// eligibilities stored before natural keys theirs (sweepEligibilities).
func (s *Service) Sweep(ctx context.Context) (timedOut, expired int, err error) {
	now := s.now()
	var pending []string
	if err := store.Each(ctx, s.st, RequestKind, func(o store.Object) error {
		var r Request
		if err := json.Unmarshal(o.Body, &r); err != nil {
			return fmt.Errorf("request %s: %w", o.ID, err)
		}
		if r.Status == StatusPendingApproval && r.ApprovalDeadline != nil && !now.Before(*r.ApprovalDeadline) {
			pending = append(pending, r.ID)
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	for _, id := range pending {
		err := s.update(ctx, AuditActor, "pim.timeout", func(ctx context.Context, tx store.Tx) (*Request, error) {
			r, err := getRequest(ctx, tx, id)
			if err != nil || r.Status != StatusPendingApproval {
				return nil, err
			}
			r.Status, r.CompletedDateTime, r.ApprovalDeadline = StatusTimedOut, &now, nil
			return r, putRequest(ctx, tx, r)
		})
		if err != nil {
			return timedOut, expired, err
		}
		timedOut++
	}
	var ending []expiring // administrators' active assignments near their end
	for _, kind := range []string{RoleKindRBAC, RoleKindDirectory} {
		list, err := activations(ctx, s.st, kind)
		if err != nil {
			return timedOut, expired, err
		}
		for _, a := range list {
			if a.AssignmentType == schedule.Assigned && endsSoon(a.EndDateTime, now) {
				ending = append(ending, a.expiring(kind))
			}
			if a.EndDateTime == nil || now.Before(*a.EndDateTime) {
				continue
			}
			a := a
			err := s.update(ctx, AuditActor, "pim.expire", func(ctx context.Context, tx store.Tx) (*Request, error) {
				if err := tx.Delete(ctx, a.kind, a.id); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
				return &Request{ID: a.id, RequestType: expireRecord, Status: "Expired", PrincipalID: a.principal, RoleDefinitionID: a.role,
					Scope: a.scope, RoleKind: kind, TargetID: a.id, ScheduleInfo: Schedule{Expiration: Expiration{EndDateTime: a.EndDateTime}}}, nil
			})
			if err != nil {
				return timedOut, expired, err
			}
			expired++
		}
	}
	due, err := s.sweepEligibilities(ctx, now)
	if err != nil {
		return timedOut, expired, err
	}
	if err := s.remindExpiring(ctx, now, append(ending, due...)); err != nil {
		return timedOut, expired, err
	}
	return timedOut, expired, nil
}

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expireRecord is the audit record's requestType of an activation that
// time ended (no request of anyone's).
const expireRecord = "Expire"

// AuditActor is the actor of what time does (timeouts, expiries,
// reminders of an end).
const AuditActor = "verity-pim"

// update runs fn in a store transaction that carries its audit record:
// action by actor about the request fn returns (nil: nothing to record).
func (s *Service) update(ctx context.Context, actor, action string, fn func(ctx context.Context, tx store.Tx) (*Request, error)) error {
	var rec *Request
	ctx, _ = store.AuditWith(ctx, func(rev int64, changes []store.Change) store.AuditEvent {
		details := map[string]any{"revision": rev}
		target := "/pim"
		if rec != nil {
			target = "/pim/requests/" + rec.ID
			if rec.RequestType == expireRecord || rec.RequestType == expiringRecord || rec.RequestType == duplicateRecord {
				// What time ended or is about to end, or what the sweep
				// found: not a request.
				target = "/pim/assignments/" + rec.TargetID
				if rec.Target == TargetEligibility {
					target = "/pim/eligibilities/" + rec.TargetID
				}
				if rec.Target != "" {
					details["target"] = rec.Target
				}
			}
			details["requestType"], details["status"], details["principalId"] = rec.RequestType, rec.Status, rec.PrincipalID
			details["roleDefinitionId"], details["scope"], details["roleKind"] = rec.RoleDefinitionID, rec.Scope, rec.RoleKind
			if rec.Justification != "" {
				details["justification"] = rec.Justification
			}
			if rec.TicketInfo != nil {
				details["ticketInfo"] = rec.TicketInfo
			}
			if rec.TargetID != "" {
				details["targetScheduleId"] = rec.TargetID
			}
			if end := rec.ScheduleInfo.Expiration.EndDateTime; end != nil {
				details["endDateTime"] = end
			}
			if n := len(rec.Approvals); n > 0 {
				details["approval"] = rec.Approvals[n-1]
			}
			for k, v := range rec.auditDetails {
				details[k] = v
			}
		}
		b, _ := json.Marshal(details)
		return store.AuditEvent{Time: s.now(), Actor: actor, Action: action, Target: target, Result: "success", Details: b}
	})
	_, err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		r, err := fn(ctx, tx)
		rec = r
		return err
	})
	return err
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
