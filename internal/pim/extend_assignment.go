package pim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// Extending an administrator's active assignment (target assignment):
// ARM's AdminExtend and SelfExtend on roleAssignmentScheduleRequests. The
// assignment is a time-bound one an administrator made (assignmentType
// Assigned with an end) — never an activation, which ends within hours
// and is activated again instead. Its end moves on the assignment object
// itself, in the transaction of the request and its audit record; every
// decision compares the window with its own time, so the new end holds
// at once. An assignment that has ended is removed by the sweep: there
// is nothing left to renew, and an administrator assigns it again
// (normalise refuses SelfRenew and AdminRenew of an assignment).

// ownAssignment is the principal's own time-bound Assigned assignment of
// the role at the scope that a SelfExtend (in its last 14 days) or
// AdminExtend (while in force) is about — the one the request names when
// it names one (a pending SelfExtend does), else the one ending last. A
// group's assignment is the group's: a member asks about their own only.
// When there is none, the error says why.
func ownAssignment(ctx context.Context, tx store.Reader, r *Request, now time.Time) (*activation, error) {
	list, err := activations(ctx, tx, r.RoleKind)
	if err != nil {
		return nil, err
	}
	var found, early, ended *activation
	var activated, permanent bool
	for i := range list {
		a := &list[i]
		if key(r.RoleKind, a.principal, a.role, a.scope) != key(r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope) ||
			r.TargetID != "" && a.id != r.TargetID {
			continue
		}
		switch {
		case a.AssignmentType != schedule.Assigned:
			activated = true
		case a.EndDateTime == nil:
			permanent = true
		case !now.Before(*a.EndDateTime):
			ended = a // and about to be removed by the sweep
		case r.RequestType == SelfExtend && a.EndDateTime.Sub(now) > extendWindow:
			early = a
		case found == nil || a.EndDateTime.After(*found.EndDateTime):
			found = a
		}
	}
	switch {
	case found != nil:
		return found, nil
	case early != nil:
		return nil, &Error{Code: ErrNoAssignmentToExtend.Code, Field: "target",
			Message: fmt.Sprintf("an active assignment can be extended on request in its last %d days; this one ends at %s",
				extendWindow/(24*time.Hour), early.EndDateTime.UTC().Format(time.RFC3339))}
	case ended != nil:
		return nil, &Error{Code: ErrNoAssignmentToExtend.Code, Field: "target", Message: "the active assignment ended at " +
			ended.EndDateTime.UTC().Format(time.RFC3339) + ": an administrator assigns the role again (AdminAssign)"}
	case permanent:
		return nil, &Error{Code: ErrNoAssignmentToExtend.Code, Field: "target", Message: "the active assignment has no end: there is nothing to extend"}
	case activated:
		return nil, &Error{Code: ErrNoAssignmentToExtend.Code, Field: "target",
			Message: "an activation is not extended: it is activated again (SelfActivate) when it ends"}
	}
	return nil, ErrNoAssignmentToExtend
}

// assignmentEnd is the new end an extension of a asks for, within the
// role's settings for active assignments; nil: no end.
func assignmentEnd(r *Request, a *activation, p Policy, now time.Time) (*time.Time, error) {
	end, err := extendedEnd(r, a.EndDateTime, assignmentBounds(p), now)
	if err != nil {
		return nil, err
	}
	if end != nil && a.EndDateTime != nil && !end.After(*a.EndDateTime) {
		return nil, invalid("scheduleInfo.expiration", "must end after the assignment's current end, "+a.EndDateTime.UTC().Format(time.RFC3339))
	}
	return end, nil
}

// extendAssignment moves a's end as r asks and completes r.
func extendAssignment(ctx context.Context, tx store.Tx, a *activation, r *Request, p Policy, now time.Time) error {
	end, err := assignmentEnd(r, a, p, now)
	if err != nil {
		return err
	}
	if err := setAssignmentEnd(ctx, tx, r.RoleKind, a.kind, a.id, end); err != nil {
		return err
	}
	r.TargetID, r.LinkedEligibilityID, r.Status, r.CompletedDateTime = a.id, "", StatusProvisioned, &now
	r.ScheduleInfo.Expiration = Expiration{Type: "NoExpiration"}
	if end != nil {
		r.ScheduleInfo.Expiration = Expiration{Type: "AfterDateTime", EndDateTime: end}
	}
	return nil
}

// setAssignmentEnd writes end into the schedule of the active assignment
// kind/id of a role kind, leaving the rest of it as it is.
func setAssignmentEnd(ctx context.Context, tx store.Tx, roleKind, kind, id string, end *time.Time) error {
	o, err := tx.Get(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("read assignment %s: %w", id, err)
	}
	if roleKind == RoleKindDirectory {
		v, err := directory.RoleAssignments.FromObject(o)
		if err != nil {
			return err
		}
		v.EndDateTime = end
		v.Schedule.Normalize()
		n, err := directory.RoleAssignments.Object(v)
		if err != nil {
			return err
		}
		o.Body = n.Body
	} else {
		var v rbac.Assignment
		if err := json.Unmarshal(o.Body, &v); err != nil {
			return fmt.Errorf("%s %s: %w", o.Kind, o.ID, err)
		}
		v.EndDateTime = end
		v.Schedule.Normalize()
		if o.Body, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if err := tx.Update(ctx, o, o.Revision); err != nil {
		return fmt.Errorf("move the end of assignment %s: %w", id, err)
	}
	return nil
}
