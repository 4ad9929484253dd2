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
	"github.com/verityhq/verity/internal/store"
)

// RemovalGuard checks, inside the transaction that removed an object of
// kind and after the removal, a rule the removal must keep — the one the
// admin API applies to its own deletes (an enabled Owner remains at /).
// An error refuses the removal. The node and the API hand the API's rule
// to access reviews, so that a denial removes nothing an administrator
// could not.
type RemovalGuard func(ctx context.Context, tx store.Reader, kind string) error

// Reviews runs access reviews on a PIM service's store, with its clock
// and group memberships.
type Reviews struct {
	svc   *Service
	guard RemovalGuard
	// Retention is how long the sweep keeps an ended instance and its
	// decision items (see ReviewInstance.expired); 0 keeps them for good.
	// NewReviews sets DefaultReviewRetention.
	Retention time.Duration
}

// NewReviews returns the access reviews of s, with the default
// retention. Denials are applied only under guard; without one, applying
// fails.
func NewReviews(s *Service, guard RemovalGuard) *Reviews {
	return &Reviews{svc: s, guard: guard, Retention: DefaultReviewRetention}
}

// reviewRecord is what a review transaction's audit record says.
type reviewRecord struct {
	target  string
	failed  bool
	details map[string]any
}

// update runs fn in a store transaction that carries its audit record:
// action by actor about what fn returns. A transaction that writes
// nothing records nothing, which keeps the sweep's retries and several
// nodes' sweeps from recording a change twice.
func (rv *Reviews) update(ctx context.Context, actor, action string, fn func(ctx context.Context, tx store.Tx) (*reviewRecord, error)) error {
	var rec *reviewRecord
	ctx, _ = store.AuditWith(ctx, func(rev int64, _ []store.Change) store.AuditEvent {
		details := map[string]any{"revision": rev}
		target, result := "/accessReviews", "success"
		if rec != nil {
			target = rec.target
			for k, v := range rec.details {
				details[k] = v
			}
			if rec.failed {
				result = "failure"
			}
		}
		b, _ := json.Marshal(details)
		return store.AuditEvent{Time: rv.svc.now(), Actor: actor, Action: action, Target: target, Result: result, Details: b}
	})
	_, err := rv.svc.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		r, err := fn(ctx, tx)
		rec = r
		return err
	})
	return err
}

// Create stores a new definition and its first instance (NotStarted,
// for the first occurrence that has not ended), in one transaction with
// its audit record (accessReview.createDefinition). Reviewers must be
// users or groups of the directory.
func (rv *Reviews) Create(ctx context.Context, actor Identity, d ReviewDefinition) (ReviewDefinition, error) {
	now := rv.svc.now()
	if err := d.Validate(); err != nil {
		return d, err
	}
	d.ID, d.Status, d.CreatedBy, d.CreatedDateTime, d.Pruned = uuid.NewString(), "", actor, now, nil
	k, start, end, ok := d.nextOccurrence(-1, now)
	if !ok {
		return d, reviewInvalid("settings.recurrence", "every occurrence has already ended")
	}
	first := ReviewInstance{ID: instanceID(d.ID, k), DefinitionID: d.ID, Occurrence: k, Status: ReviewNotStarted, StartDateTime: start, EndDateTime: end}
	err := rv.update(ctx, actor.ID, "accessReview.createDefinition", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		existing, err := tx.List(ctx, ReviewDefinitionKind, store.ListOptions{Limit: maxReviewDefinitions})
		if err != nil {
			return nil, err
		}
		if len(existing) >= maxReviewDefinitions {
			return nil, ErrTooManyReviews
		}
		for _, l := range []struct {
			field string
			ids   []string
		}{{"reviewers", d.Reviewers}, {"fallbackReviewers", d.FallbackReviewers}} {
			for i, id := range l.ids {
				if kind, err := principalKind(ctx, tx, id); err != nil {
					return nil, err
				} else if kind != directory.KindUser && kind != directory.KindGroup {
					return nil, reviewInvalid(fmt.Sprintf("%s[%d]", l.field, i), "no user or group has the id %s", id)
				}
			}
		}
		if err := writeDefinition(ctx, tx, &d, 0); err != nil {
			return nil, err
		}
		if err := writeInstance(ctx, tx, &first, 0); err != nil {
			return nil, err
		}
		details := map[string]any{"displayName": d.DisplayName, "scope": d.Scope, "reviewers": d.Reviewers, "selfReview": d.SelfReview,
			"fallbackReviewers": d.FallbackReviewers, "settings": d.Settings, "firstInstance": first.ID, "startDateTime": first.StartDateTime}
		if len(d.Notify) > 0 {
			// By scheme, host and digest, as pim.setPolicy records them: a
			// URL's path or query may carry the receiver's token.
			details["notify"] = auditedWebhooks(d.Notify)
		}
		return &reviewRecord{target: "/accessReviews/definitions/" + d.ID, details: details}, nil
	})
	if err != nil {
		return d, err
	}
	d.Status = d.status([]ReviewInstance{first}, now)
	return d, nil
}

// principalKind is the directory kind of the user, group or service
// principal id names ("" when none).
func principalKind(ctx context.Context, r store.Reader, id string) (string, error) {
	for _, kind := range []string{directory.KindUser, directory.KindGroup, directory.KindServicePrincipal} {
		_, err := r.Get(ctx, kind, id)
		if err == nil {
			return kind, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return "", nil
}

// Delete removes a definition with its instances and their items, in
// one transaction with its audit record (accessReview.deleteDefinition).
// What was applied stays applied; the audit log keeps the decisions.
func (rv *Reviews) Delete(ctx context.Context, actor, id string) error {
	return rv.update(ctx, actor, "accessReview.deleteDefinition", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		d, _, err := getDefinition(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		insts, err := ReviewInstances(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		items := 0
		for _, inst := range insts {
			list, err := itemsOf(ctx, tx, inst.ID)
			if err != nil {
				return nil, err
			}
			for _, it := range list {
				if err := tx.Delete(ctx, ReviewItemKind, it.ID); err != nil {
					return nil, err
				}
			}
			items += len(list)
			if err := tx.Delete(ctx, ReviewInstanceKind, inst.ID); err != nil {
				return nil, err
			}
			if err := tx.Delete(ctx, ReviewReminderKind, inst.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		if err := tx.Delete(ctx, ReviewDefinitionKind, id); err != nil {
			return nil, err
		}
		return &reviewRecord{target: "/accessReviews/definitions/" + id,
			details: map[string]any{"displayName": d.DisplayName, "instances": len(insts), "items": items}}, nil
	})
}

// groups are the caller's transitive groups.
func (rv *Reviews) groups(id string) []string {
	if rv.svc.Groups == nil {
		return nil
	}
	return rv.svc.Groups(id)
}

// mayDecide says whether callerID may decide it under d: in a
// self-review a user decides about their own access, and the fallback
// reviewers about what principals cannot review themselves; otherwise the
// listed reviewers (or members of listed groups) decide — never about
// their own access, nor a group's they belong to.
func (rv *Reviews) mayDecide(callerID string, d *ReviewDefinition, it *ReviewItem) error {
	var groups []string
	if !d.SelfReview || it.Principal.Type != PrincipalUser {
		groups = rv.groups(callerID) // a user's own item in a self-review needs none
	}
	return decides(callerID, groups, d, it)
}

// decides is mayDecide for a caller in groups (transitively): the one
// rule of who decides an item, which the notifier applies too when it
// counts each reviewer's items.
func decides(callerID string, groups []string, d *ReviewDefinition, it *ReviewItem) error {
	if d.SelfReview && it.Principal.Type == PrincipalUser {
		if it.Principal.ID == callerID {
			return nil
		}
		return ErrNotReviewer
	}
	reviewers := d.Reviewers
	if d.SelfReview {
		reviewers = d.FallbackReviewers
	}
	if !listed(callerID, groups, reviewers) {
		return ErrNotReviewer
	}
	if it.Principal.ID == callerID || it.Principal.Type == PrincipalGroup && slices.Contains(groups, it.Principal.ID) {
		return ErrOwnAccess
	}
	return nil
}

// CanDecide reports whether callerID may decide it under d (whether or
// not the instance is still open).
func (rv *Reviews) CanDecide(callerID string, d *ReviewDefinition, it *ReviewItem) bool {
	return rv.mayDecide(callerID, d, it) == nil
}

// IsReviewer reports whether callerID is named by d's reviewers or
// fallback reviewers, or a member of a group they name — who sees the
// definition without managing it. (Self-reviewers find their items
// through their pending decisions.)
func (rv *Reviews) IsReviewer(callerID string, d *ReviewDefinition) bool {
	groups := rv.groups(callerID)
	return listed(callerID, groups, d.Reviewers) || listed(callerID, groups, d.FallbackReviewers)
}

func listed(id string, groups, reviewers []string) bool {
	return slices.Contains(reviewers, id) || slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(reviewers, g) })
}

// RecordDecision records a reviewer's decision (Approve, Deny or
// DontKnow) on an item of an instance in progress, with its audit record
// (accessReview.recordDecision). A decision may change until the
// instance ends.
func (rv *Reviews) RecordDecision(ctx context.Context, reviewer Identity, itemID, decision, justification string) (ReviewItem, error) {
	now := rv.svc.now()
	var out ReviewItem
	err := rv.update(ctx, reviewer.ID, "accessReview.recordDecision", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		it, rev, err := getItem(ctx, tx, itemID)
		if err != nil {
			return nil, err
		}
		inst, _, err := getInstance(ctx, tx, it.InstanceID)
		if err != nil {
			return nil, err
		}
		d, _, err := getDefinition(ctx, tx, it.DefinitionID)
		if err != nil {
			return nil, err
		}
		if err := rv.mayDecide(reviewer.ID, d, it); err != nil {
			return nil, err
		}
		if inst.Status != ReviewInProgress || !now.Before(inst.EndDateTime) {
			return nil, ErrReviewNotActive
		}
		switch {
		case decision != DecisionApprove && decision != DecisionDeny && decision != DecisionDontKnow:
			return nil, reviewInvalid("decision", "must be Approve, Deny or DontKnow")
		case len(justification) > maxJustificationLen:
			return nil, reviewInvalid("justification", "at most %d characters", maxJustificationLen)
		case decision == DecisionApprove && d.Settings.JustificationRequiredOnApproval && strings.TrimSpace(justification) == "":
			return nil, reviewInvalid("justification", "the review requires a justification to approve")
		}
		r := reviewer
		it.Decision, it.Justification, it.ReviewedBy, it.ReviewedDateTime = decision, justification, &r, &now
		if err := writeItem(ctx, tx, it, rev); err != nil {
			return nil, err
		}
		out = *it
		return &reviewRecord{target: "/accessReviews/decisions/" + it.ID, details: itemDetails(it)}, nil
	})
	return out, err
}

// itemDetails is what an item's audit records say about it.
func itemDetails(it *ReviewItem) map[string]any {
	m := map[string]any{"definitionId": it.DefinitionID, "instanceId": it.InstanceID, "principalId": it.Principal.ID,
		"roleDefinitionId": it.Role.ID, "roleKind": it.RoleKind, "scope": it.Scope, "assignmentState": it.AssignmentState,
		"assignmentId": it.AssignmentID, "decision": it.Decision}
	if it.Justification != "" {
		m["justification"] = it.Justification
	}
	if it.ViaGroup != nil {
		m["viaGroup"] = it.ViaGroup.ID
	}
	if it.ApplyResult != ApplyNotApplied {
		m["applyResult"], m["applyDescription"] = it.ApplyResult, it.ApplyDescription
	}
	return m
}

// Stop ends an instance early (accessReview.stop): one in progress
// completes now — default decisions taken, denials applied next as for
// any completed instance (Graph's stop); one not yet started is Stopped
// and never runs.
func (rv *Reviews) Stop(ctx context.Context, actor Identity, instanceID string) (ReviewInstance, error) {
	now := rv.svc.now()
	err := rv.update(ctx, actor.ID, "accessReview.stop", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		inst, rev, err := getInstance(ctx, tx, instanceID)
		if err != nil {
			return nil, err
		}
		a := actor
		switch inst.Status {
		case ReviewNotStarted:
			inst.Status, inst.StoppedBy, inst.StoppedDateTime, inst.StoppedReason = ReviewStopped, &a, &now, "stopped before it started"
			if err := writeInstance(ctx, tx, inst, rev); err != nil {
				return nil, err
			}
			return &reviewRecord{target: "/accessReviews/instances/" + inst.ID, details: map[string]any{"definitionId": inst.DefinitionID, "status": inst.Status}}, nil
		case ReviewInProgress:
			d, _, err := getDefinition(ctx, tx, inst.DefinitionID)
			if err != nil {
				return nil, err
			}
			return rv.complete(ctx, tx, d, inst, rev, now, &a)
		}
		return nil, ErrReviewNotActive
	})
	if err != nil {
		return ReviewInstance{}, err
	}
	return GetReviewInstance(ctx, rv.svc.st, instanceID)
}
