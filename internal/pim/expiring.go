package pim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// Reminders before an end, as Entra PIM sends them: when an eligibility,
// or an administrator's time-bound active assignment, enters its last
// extendWindow (when its principal may ask to extend it), the sweep
// records pim.expiring once, and the notifier tells the principal and the
// administrators. Activations get none: they last hours.
const (
	// ExpiringAction is the audit action of such a reminder.
	ExpiringAction = "pim.expiring"
	// ExpiryReminderKind marks a schedule and end whose reminder is
	// recorded. It is created with the pim.expiring record, so that the
	// reminder is recorded once whichever node sweeps, and its id holds the
	// end, so that an end moved later (AdminExtend, AdminRenew) is
	// reminded of again. The sweep removes it once that end has passed.
	ExpiryReminderKind = "roleScheduleExpiryReminder"
)

// expiringRecord is the requestType of a reminder's audit record: what
// time does, no request of anyone's.
const expiringRecord = "Expiring"

// expiring is an eligibility or an active assignment with an end.
type expiring struct {
	target                           string // TargetEligibility or TargetAssignment
	kind, id                         string // the schedule's store kind and id
	roleKind, principal, role, scope string
	end                              time.Time
}

// markerID names the reminder of this schedule and end.
func (e *expiring) markerID() string {
	return e.kind + "/" + e.id + "@" + e.end.UTC().Format(time.RFC3339Nano)
}

// expiryMarker is the body of an ExpiryReminderKind object.
type expiryMarker struct {
	Target           string    `json:"target"`
	ScheduleID       string    `json:"scheduleId"`
	EndDateTime      time.Time `json:"endDateTime"`
	RecordedDateTime time.Time `json:"recordedDateTime"`
}

// endsSoon reports whether a schedule ending at end (nil: never) is in
// its last extendWindow at now.
func endsSoon(end *time.Time, now time.Time) bool {
	return end != nil && now.Before(*end) && end.Sub(now) <= extendWindow
}

func (e *Eligibility) expiring() expiring {
	x := expiring{target: TargetEligibility, kind: EligibilityKind, id: e.ID, roleKind: e.RoleKind,
		principal: e.PrincipalID, role: e.RoleDefinitionID, scope: e.Scope}
	if e.EndDateTime != nil {
		x.end = e.EndDateTime.UTC()
	}
	return x
}

func (a *activation) expiring(roleKind string) expiring {
	x := expiring{target: TargetAssignment, kind: a.kind, id: a.id, roleKind: roleKind,
		principal: a.principal, role: a.role, scope: a.scope}
	if a.EndDateTime != nil {
		x.end = a.EndDateTime.UTC()
	}
	return x
}

// remindExpiring records a reminder (pim.expiring) for each eligibility
// and administrator's active assignment in due (those in their last
// extendWindow) — once per schedule and end, and only when its role's
// settings have webhooks: a reminder nobody is sent would be noise in the
// audit log. Then it removes the marks of ends that have passed.
func (s *Service) remindExpiring(ctx context.Context, now time.Time, due []expiring) error {
	notify := map[string]bool{} // whether a role's settings have webhooks, by policyID; read once a sweep
	for i := range due {
		e := &due[i]
		if _, err := s.st.Get(ctx, ExpiryReminderKind, e.markerID()); err == nil {
			continue // recorded already: no write transaction every sweep
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		k := policyID(e.roleKind, e.role, e.scope)
		has, ok := notify[k]
		if !ok {
			p, err := policyIn(ctx, s.st, e.roleKind, e.role, e.scope)
			if err != nil {
				return err
			}
			has = len(p.Notify) > 0
			notify[k] = has
		}
		if !has {
			continue
		}
		if err := s.remind(ctx, e, now); err != nil {
			return fmt.Errorf("remind of the end of %s %s: %w", e.target, e.id, err)
		}
	}
	return s.pruneReminders(ctx, now)
}

// remind records the reminder of e with the mark that keeps any later
// sweep, on any node, from recording it again — unless the mark is there,
// or the schedule has gone, moved its end or lost its webhooks meanwhile.
func (s *Service) remind(ctx context.Context, e *expiring, now time.Time) error {
	return s.update(ctx, AuditActor, ExpiringAction, func(ctx context.Context, tx store.Tx) (*Request, error) {
		if _, err := tx.Get(ctx, ExpiryReminderKind, e.markerID()); !errors.Is(err, store.ErrNotFound) {
			return nil, err // recorded already (err nil), or the store failed
		}
		cur, err := reread(ctx, tx, e)
		if err != nil || cur == nil || !cur.end.Equal(e.end) || !endsSoon(&cur.end, now) {
			return nil, err
		}
		p, err := policyIn(ctx, tx, cur.roleKind, cur.role, cur.scope)
		if err != nil || len(p.Notify) == 0 {
			return nil, err
		}
		body, err := json.Marshal(expiryMarker{Target: cur.target, ScheduleID: cur.id, EndDateTime: cur.end, RecordedDateTime: now})
		if err != nil {
			return nil, err
		}
		if err := tx.Create(ctx, store.Object{Kind: ExpiryReminderKind, ID: cur.markerID(), Body: body}); err != nil {
			return nil, err
		}
		end := cur.end
		return &Request{ID: cur.id, RequestType: expiringRecord, Target: cur.target, Status: StatusProvisioned,
			PrincipalID: cur.principal, RoleDefinitionID: cur.role, Scope: cur.scope, RoleKind: cur.roleKind, TargetID: cur.id,
			ScheduleInfo: Schedule{Expiration: Expiration{Type: "AfterDateTime", EndDateTime: &end}}}, nil
	})
}

// reread is the schedule e names as r has it now: nil when it is gone, or
// no longer a schedule with an end that reminders are for.
func reread(ctx context.Context, r store.Reader, e *expiring) (*expiring, error) {
	o, err := r.Get(ctx, e.kind, e.id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var x expiring
	if e.target == TargetEligibility {
		var el Eligibility
		if err := json.Unmarshal(o.Body, &el); err != nil {
			return nil, fmt.Errorf("eligibility %s: %w", o.ID, err)
		}
		el.ID = o.ID
		if el.EndDateTime == nil {
			return nil, nil
		}
		x = el.expiring()
	} else {
		a, err := readActivation(e.roleKind, o)
		if err != nil {
			return nil, err
		}
		if a.AssignmentType != schedule.Assigned || a.EndDateTime == nil {
			return nil, nil
		}
		x = a.expiring(e.roleKind)
	}
	return &x, nil
}

// pruneReminders removes the marks whose end has passed — the schedule
// ended, or was removed or moved its end before — so that they do not pile
// up: at most one per schedule and end within extendWindow remains.
func (s *Service) pruneReminders(ctx context.Context, now time.Time) error {
	return s.pruneMarks(ctx, ExpiryReminderKind, func(o store.Object) (bool, error) {
		var m expiryMarker
		if err := json.Unmarshal(o.Body, &m); err != nil {
			return false, fmt.Errorf("expiry reminder %s: %w", o.ID, err)
		}
		return !now.Before(m.EndDateTime), nil
	})
}
