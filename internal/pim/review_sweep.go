package pim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// ReviewSweep counts what one sweep did. Pruned counts the instances
// retention removed.
type ReviewSweep struct {
	Scheduled, Started, Reminded, Missed, Completed, Applied, Pruned int
}

// Sweep does what time does to access reviews: it schedules each
// definition's next instance, starts those whose start has come
// (snapshotting their items), records the reminder of those half-way
// through whose settings ask for one, completes those whose end has
// passed (default decisions), and applies completed ones whose settings
// say so. Last, it removes the instances that ended longer than the
// retention ago, with their items (prune).
// Every step re-reads what it changes in its transaction and writes only
// if it still has to, so a sweep run twice, or on several nodes at once,
// does each thing once.
func (rv *Reviews) Sweep(ctx context.Context) (ReviewSweep, error) {
	var out ReviewSweep
	var defs []ReviewDefinition
	if err := store.Each(ctx, rv.svc.st, ReviewDefinitionKind, func(o store.Object) error {
		var d ReviewDefinition
		if err := json.Unmarshal(o.Body, &d); err != nil {
			return fmt.Errorf("access review %s: %w", o.ID, err)
		}
		defs = append(defs, d)
		return nil
	}); err != nil {
		return out, err
	}
	var errs []error
	var expired []string
	for i := range defs {
		if err := rv.sweepDefinition(ctx, &defs[i], &out, &expired); err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("access review %s: %w", defs[i].ID, err))
		}
	}
	// Retention comes after what is due at its time, within a budget: a
	// backlog of history delays nothing, and is worked off sweep by sweep.
	budget := reviewPruneSweep
	for _, id := range expired {
		if budget < reviewPruneBatch {
			break
		}
		n, err := rv.prune(ctx, id, &budget)
		out.Pruned += n
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("access review instance %s: prune: %w", id, err))
		}
	}
	return out, errors.Join(errs...)
}

// sweepDefinition takes d's instances through their steps, and adds to
// expired those retention is to remove.
func (rv *Reviews) sweepDefinition(ctx context.Context, d *ReviewDefinition, out *ReviewSweep, expired *[]string) error {
	insts, err := ReviewInstances(ctx, rv.svc.st, d.ID)
	if err != nil {
		return err
	}
	live, last := false, d.lastPruned()
	for _, inst := range insts {
		now := rv.svc.now()
		last = max(last, inst.Occurrence)
		if inst.expired(now, rv.Retention) {
			*expired = append(*expired, inst.ID)
			continue
		}
		var n int
		switch {
		case inst.Status == ReviewNotStarted && now.Before(inst.StartDateTime):
			live = true
		case inst.Status == ReviewInProgress && now.Before(inst.EndDateTime):
			live = true
			if d.reminds() && !now.Before(inst.reminderAt()) {
				n, err = rv.remind(ctx, inst.ID)
				out.Reminded += n
			}
		case inst.Status == ReviewNotStarted && now.Before(inst.EndDateTime):
			live = true
			n, err = rv.start(ctx, d, inst.ID)
			out.Started += n
		case inst.Status == ReviewNotStarted:
			n, err = rv.miss(ctx, inst.ID)
			out.Missed += n
		case inst.Status == ReviewInProgress:
			n, err = rv.completeAt(ctx, inst.ID)
			out.Completed += n
			if err == nil && d.Settings.AutoApplyDecisionsEnabled {
				err = rv.applyAuto(ctx, inst.ID, out)
			}
		case inst.Status == ReviewCompleted && d.Settings.AutoApplyDecisionsEnabled:
			err = rv.applyAuto(ctx, inst.ID, out)
		}
		if err != nil {
			return err
		}
	}
	if live {
		return nil
	}
	k, start, end, ok := d.nextOccurrence(last, rv.svc.now())
	if !ok {
		return nil
	}
	n, err := rv.schedule(ctx, d, ReviewInstance{ID: instanceID(d.ID, k), DefinitionID: d.ID, Occurrence: k, Status: ReviewNotStarted,
		StartDateTime: start, EndDateTime: end})
	out.Scheduled += n
	return err
}

func (rv *Reviews) applyAuto(ctx context.Context, instanceID string, out *ReviewSweep) error {
	_, done, err := rv.apply(ctx, Identity{ID: ReviewActor, DisplayName: "automatic application"}, instanceID)
	if done {
		out.Applied++
	}
	return err
}

// schedule creates the next NotStarted instance (accessReview.schedule),
// unless some node did.
func (rv *Reviews) schedule(ctx context.Context, d *ReviewDefinition, inst ReviewInstance) (int, error) {
	n := 0
	err := rv.update(ctx, ReviewActor, "accessReview.schedule", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		if _, _, err := getInstance(ctx, tx, inst.ID); !errors.Is(err, ErrReviewNotFound) {
			return nil, err // there already (err nil), or the store failed
		}
		current, _, err := getDefinition(ctx, tx, d.ID)
		if err != nil {
			return nil, ignoreGone(err)
		}
		if inst.Occurrence <= current.lastPruned() {
			// Read before retention removed the last instance, d did not
			// know it was there: the occurrence ran already.
			return nil, nil
		}
		if err := writeInstance(ctx, tx, &inst, 0); err != nil {
			return nil, err
		}
		n = 1
		return &reviewRecord{target: "/accessReviews/instances/" + inst.ID,
			details: map[string]any{"definitionId": d.ID, "startDateTime": inst.StartDateTime, "endDateTime": inst.EndDateTime}}, nil
	})
	return n, err
}

// reminds reports whether d's instances are to be reminded of: reminders
// are enabled and there are webhooks to tell (otherwise the record would
// announce a reminder nobody gets).
func (d *ReviewDefinition) reminds() bool {
	return d.Settings.ReminderNotificationsEnabled && len(d.Notify) > 0
}

// remind records that an instance in progress is half-way through
// (accessReview.remind, with how many items are not reviewed yet): the
// notifier reminds its reviewers from that record. The mark it creates
// with the record keeps every later sweep, on any node, from recording it
// again.
func (rv *Reviews) remind(ctx context.Context, id string) (int, error) {
	if _, err := rv.svc.st.Get(ctx, ReviewReminderKind, id); err == nil {
		return 0, nil // recorded already: no write transaction every sweep
	}
	n := 0
	err := rv.update(ctx, ReviewActor, "accessReview.remind", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		if _, err := tx.Get(ctx, ReviewReminderKind, id); !errors.Is(err, store.ErrNotFound) {
			return nil, err // recorded already (err nil), or the store failed
		}
		inst, _, err := getInstance(ctx, tx, id)
		if err != nil {
			return nil, ignoreGone(err)
		}
		now := rv.svc.now()
		if inst.Status != ReviewInProgress || now.Before(inst.reminderAt()) || !now.Before(inst.EndDateTime) {
			return nil, nil
		}
		items, err := itemsOf(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		open := summarize(items).NotReviewed
		body, err := json.Marshal(map[string]any{"instanceId": id, "dateTime": now})
		if err != nil {
			return nil, err
		}
		if err := tx.Create(ctx, store.Object{Kind: ReviewReminderKind, ID: id, Body: body}); err != nil {
			return nil, err
		}
		n = 1
		return &reviewRecord{target: "/accessReviews/instances/" + id, details: map[string]any{"definitionId": inst.DefinitionID,
			"status": inst.Status, "notReviewed": open, "endDateTime": inst.EndDateTime}}, nil
	})
	return n, err
}

// ignoreGone treats a definition or instance deleted meanwhile as
// nothing left to do.
func ignoreGone(err error) error {
	if errors.Is(err, ErrReviewNotFound) {
		return nil
	}
	return err
}

// miss stops a NotStarted instance whose window passed while no node
// swept: snapshotting its items after its end would review nothing.
func (rv *Reviews) miss(ctx context.Context, id string) (int, error) {
	n := 0
	err := rv.update(ctx, ReviewActor, "accessReview.stop", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		inst, rev, err := getInstance(ctx, tx, id)
		if err != nil {
			return nil, ignoreGone(err)
		}
		now := rv.svc.now()
		if inst.Status != ReviewNotStarted || now.Before(inst.EndDateTime) {
			return nil, nil
		}
		inst.Status, inst.StoppedBy, inst.StoppedDateTime = ReviewStopped, &Identity{ID: ReviewActor}, &now
		inst.StoppedReason = "its window passed before any node could start it"
		if err := writeInstance(ctx, tx, inst, rev); err != nil {
			return nil, err
		}
		n = 1
		return &reviewRecord{target: "/accessReviews/instances/" + id, details: map[string]any{"definitionId": inst.DefinitionID,
			"status": inst.Status, "reason": inst.StoppedReason}}, nil
	})
	return n, err
}

// completeAt completes an instance whose end has passed
// (accessReview.complete).
func (rv *Reviews) completeAt(ctx context.Context, id string) (int, error) {
	n := 0
	err := rv.update(ctx, ReviewActor, "accessReview.complete", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		inst, rev, err := getInstance(ctx, tx, id)
		if err != nil {
			return nil, ignoreGone(err)
		}
		now := rv.svc.now()
		if inst.Status != ReviewInProgress || now.Before(inst.EndDateTime) {
			return nil, nil
		}
		d, _, err := getDefinition(ctx, tx, inst.DefinitionID)
		if err != nil {
			return nil, ignoreGone(err)
		}
		n = 1
		return rv.complete(ctx, tx, d, inst, rev, now, nil)
	})
	return n, err
}

// complete closes an instance in tx: unanswered items take the default
// decision when the settings enable one (Recommendation: the item's
// recommendation, when it has one), and the instance is Completed —
// ended now when stoppedBy stops it early.
func (rv *Reviews) complete(ctx context.Context, tx store.Tx, d *ReviewDefinition, inst *ReviewInstance, rev int64, now time.Time, stoppedBy *Identity) (*reviewRecord, error) {
	items, err := itemsOf(ctx, tx, inst.ID)
	if err != nil {
		return nil, err
	}
	s := d.Settings
	system := Identity{ID: ReviewActor, DisplayName: "Default decision"}
	for _, it := range items {
		if it.Decision != DecisionNotReviewed || !s.DefaultDecisionEnabled {
			continue
		}
		decision, why := s.DefaultDecision, "default decision: "+s.DefaultDecision
		if decision == "Recommendation" {
			decision, why = "", ""
			if it.Recommendation == RecommendApprove || it.Recommendation == RecommendDeny {
				decision, why = it.Recommendation, "default decision: the recommendation ("+it.Recommendation+")"
			}
		}
		if decision == "" {
			continue
		}
		it.Decision, it.Justification, it.ReviewedBy, it.ReviewedDateTime = decision, why, &system, &now
		if err := writeItem(ctx, tx, it.ReviewItem, it.revision); err != nil {
			return nil, err
		}
	}
	inst.Status, inst.Summary = ReviewCompleted, summarize(items)
	if stoppedBy != nil {
		if now.Before(inst.EndDateTime) {
			inst.EndDateTime = now
		}
		inst.StoppedBy, inst.StoppedDateTime = stoppedBy, &now
	}
	if err := writeInstance(ctx, tx, inst, rev); err != nil {
		return nil, err
	}
	details := map[string]any{"definitionId": inst.DefinitionID, "status": inst.Status, "summary": inst.Summary, "endDateTime": inst.EndDateTime}
	return &reviewRecord{target: "/accessReviews/instances/" + inst.ID, details: details}, nil
}

func summarize(items []revisedItem) *ReviewStats {
	s := &ReviewStats{Items: len(items)}
	for _, it := range items {
		switch it.Decision {
		case DecisionApprove:
			s.Approved++
		case DecisionDeny:
			s.Denied++
		case DecisionDontKnow:
			s.DontKnow++
		default:
			s.NotReviewed++
		}
		switch it.ApplyResult {
		case ApplyApplied:
			s.Applied++
		case ApplyFailed:
			s.Failed++
		}
	}
	return s
}

// errNoGuard: applying needs the rule removals must keep.
var errNoGuard = errors.New("access reviews: no removal guard; denials are not applied")

// Apply carries out the denials of a completed instance — each in a
// transaction of its own that removes the assignment or eligibility and
// records the result with its audit record (accessReview.applyDecision)
// — and marks the instance Applied once every denial has a result
// (accessReview.apply). An administrator calls it when the settings do
// not apply automatically; the sweep when they do. Applying an Applied
// instance again changes nothing.
func (rv *Reviews) Apply(ctx context.Context, actor Identity, instanceID string) (ReviewInstance, error) {
	inst, _, err := rv.apply(ctx, actor, instanceID)
	return inst, err
}

// apply is Apply; done says whether this call marked the instance
// Applied.
func (rv *Reviews) apply(ctx context.Context, actor Identity, instanceID string) (_ ReviewInstance, done bool, _ error) {
	if rv.guard == nil {
		return ReviewInstance{}, false, errNoGuard
	}
	inst, _, err := getInstance(ctx, rv.svc.st, instanceID)
	if err != nil {
		return ReviewInstance{}, false, err
	}
	switch inst.Status {
	case ReviewApplied:
		return *inst, false, nil
	case ReviewCompleted:
	default:
		return *inst, false, ErrReviewNotCompleted
	}
	var pending []string
	if err := eachItem(ctx, rv.svc.st, instanceID, "", func(it *ReviewItem, _ int64) (bool, error) {
		if it.Decision == DecisionDeny && it.ApplyResult == ApplyNotApplied {
			pending = append(pending, it.ID)
		}
		return true, nil
	}); err != nil {
		return *inst, false, err
	}
	for _, id := range pending {
		if err := rv.applyItem(ctx, actor, id); err != nil {
			return *inst, false, fmt.Errorf("apply decision %s: %w", id, err)
		}
	}
	err = rv.update(ctx, actor.ID, "accessReview.apply", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		inst, rev, err := getInstance(ctx, tx, instanceID)
		if err != nil || inst.Status != ReviewCompleted {
			return nil, ignoreGone(err)
		}
		items, err := itemsOf(ctx, tx, instanceID)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(items, func(it revisedItem) bool { return it.Decision == DecisionDeny && it.ApplyResult == ApplyNotApplied }) {
			return nil, nil // a denial recorded meanwhile is still to do: the next pass
		}
		now, a := rv.svc.now(), actor
		inst.Status, inst.AppliedBy, inst.AppliedDateTime, inst.Summary = ReviewApplied, &a, &now, summarize(items)
		if err := writeInstance(ctx, tx, inst, rev); err != nil {
			return nil, err
		}
		done = true
		return &reviewRecord{target: "/accessReviews/instances/" + instanceID, details: map[string]any{"definitionId": inst.DefinitionID,
			"status": inst.Status, "summary": inst.Summary}}, nil
	})
	if err != nil {
		return *inst, false, err
	}
	out, err := GetReviewInstance(ctx, rv.svc.st, instanceID)
	return out, done, err
}

// refusal is a removal the guard refused: its transaction rolls back, and
// the refusal is recorded as the item's result in another.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }

// applyItem carries out one denial.
func (rv *Reviews) applyItem(ctx context.Context, actor Identity, id string) error {
	record := func(fn func(ctx context.Context, tx store.Tx, it *ReviewItem) (result, description string, err error)) error {
		return rv.update(ctx, actor.ID, "accessReview.applyDecision", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
			it, rev, err := getItem(ctx, tx, id)
			if err != nil {
				return nil, ignoreGone(err)
			}
			if it.Decision != DecisionDeny || it.ApplyResult != ApplyNotApplied {
				return nil, nil // done by another node, or no denial
			}
			if inst, _, err := getInstance(ctx, tx, it.InstanceID); err != nil || inst.Status != ReviewCompleted {
				return nil, ignoreGone(err)
			}
			result, description, err := fn(ctx, tx, it)
			if err != nil {
				return nil, err
			}
			now, a := rv.svc.now(), actor
			it.ApplyResult, it.ApplyDescription, it.AppliedBy, it.AppliedDateTime = result, description, &a, &now
			if err := writeItem(ctx, tx, it, rev); err != nil {
				return nil, err
			}
			return &reviewRecord{target: "/accessReviews/decisions/" + id, failed: result == ApplyFailed, details: itemDetails(it)}, nil
		})
	}
	err := record(rv.remove)
	var ref *refusal
	if errors.As(err, &ref) {
		err = record(func(context.Context, store.Tx, *ReviewItem) (string, string, error) {
			return ApplyFailed, "refused: " + ref.Error(), nil
		})
	}
	return err
}

// remove carries out a denial in tx: it removes the assignment or
// eligibility the item names if it is still the one reviewed — one gone
// meanwhile has nothing left to remove, one changed is left as it is —
// and the activations made from an eligibility with it. A role held
// through a group is not removed: that would take it from every member
// (Entra does not apply such a denial either).
func (rv *Reviews) remove(ctx context.Context, tx store.Tx, it *ReviewItem) (result, description string, err error) {
	if it.Via == ViaGroup {
		return ApplyFailed, fmt.Sprintf("held through group %s: a review does not change group membership; remove the member from the group, or review the group's assignment", it.ViaGroup.ID), nil
	}
	kind, what := itemKind(it)
	o, err := tx.Get(ctx, kind, it.AssignmentID)
	if errors.Is(err, store.ErrNotFound) {
		return ApplyApplied, "the " + what + " was already removed", nil
	}
	if err != nil {
		return "", "", err
	}
	if o.Revision != it.AssignmentRevision {
		return ApplyFailed, fmt.Sprintf("the %s changed after the review started (revision %d, now %d) and was left as it is", what, it.AssignmentRevision, o.Revision), nil
	}
	if err := tx.Delete(ctx, kind, it.AssignmentID); err != nil {
		return "", "", err
	}
	touched := []string{kind}
	if kind == EligibilityKind {
		list, err := activations(ctx, tx, it.RoleKind)
		if err != nil {
			return "", "", err
		}
		for _, a := range list {
			if a.LinkedEligibilityScheduleID == it.AssignmentID {
				if err := tx.Delete(ctx, a.kind, a.id); err != nil {
					return "", "", err
				}
				if !slices.Contains(touched, a.kind) {
					touched = append(touched, a.kind)
				}
			}
		}
	}
	for _, k := range touched {
		if err := rv.guard(ctx, tx, k); err != nil {
			return "", "", &refusal{err}
		}
	}
	return ApplyApplied, "the " + what + " was removed", nil
}

// itemKind is the store kind of what an item reviews, and its name.
func itemKind(it *ReviewItem) (kind, what string) {
	switch {
	case it.AssignmentState == StateEligible:
		return EligibilityKind, "eligibility"
	case it.RoleKind == RoleKindDirectory:
		return directory.RoleAssignments.Name(), "directory role assignment"
	}
	return rbac.Kind, "role assignment"
}

// Run sweeps every interval until ctx ends.
func (rv *Reviews) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := rv.Sweep(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
