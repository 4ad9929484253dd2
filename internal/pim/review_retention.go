package pim

import (
	"context"
	"errors"

	"github.com/verityhq/verity/internal/store"
)

// Retention of access reviews. A quarterly review of a broad scope writes
// tens of thousands of decision items a quarter; kept for good, they
// would grow the store, its backups and exports without bound. Once an
// instance has ended longer than Reviews.Retention ago
// (ReviewInstance.expired), the sweep removes its items and then the
// instance itself. The audit log keeps what they said: every decision
// (accessReview.recordDecision), every removal (accessReview.applyDecision)
// and the instance's steps.

// prune removes an expired instance: its decision items in transactions
// of at most reviewPruneBatch, then — in the transaction that finds at
// most a batch left — those, its reminder mark and the instance, noting
// on its definition what went (ReviewDefinition.Pruned), with one audit
// record (accessReview.prune, with the count). Only that last
// transaction carries a record: the batches before it only delete items
// the record counts. Every transaction re-reads the instance
// and goes on only while it is still there and expired, so several nodes
// pruning at once, or a sweep cut short and the next one, remove it once.
// budget is how many items the sweep may still delete: each transaction
// deletes at most a batch, and runs only while a whole batch is left of
// the budget; the rest waits for the next sweep. pruned is 1 when this
// call removed the instance.
func (rv *Reviews) prune(ctx context.Context, id string, budget *int) (pruned int, err error) {
	for *budget >= reviewPruneBatch {
		done, deleted, err := rv.pruneBatch(ctx, id)
		*budget -= deleted
		if err != nil || done {
			return 0, err
		}
		if deleted == 0 {
			return rv.pruneInstance(ctx, id, budget)
		}
	}
	return 0, nil
}

// pruneBatch deletes a batch of an expired instance's items when more
// than a batch is left, in a transaction without an audit record (the
// instance's removal records them all). done says there is nothing to
// prune: the instance is gone or no longer expired.
func (rv *Reviews) pruneBatch(ctx context.Context, id string) (done bool, deleted int, err error) {
	_, err = rv.svc.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		done, deleted = false, 0
		inst, _, err := getInstance(ctx, tx, id)
		if err != nil || !inst.expired(rv.svc.now(), rv.Retention) {
			done = true
			return ignoreGone(err)
		}
		ids, err := itemIDs(ctx, tx, id, reviewPruneBatch+1)
		if err != nil || len(ids) <= reviewPruneBatch {
			return err // the last batch goes with the instance
		}
		for _, itemID := range ids[:reviewPruneBatch] {
			if err := tx.Delete(ctx, ReviewItemKind, itemID); err != nil {
				return err
			}
		}
		deleted = reviewPruneBatch
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	return done, deleted, nil
}

// pruneInstance removes an expired instance with the items it has left
// (at most a batch; more — which an ended instance never gains — leave it
// to another pass), its reminder mark, and notes it on the definition,
// with its audit record (accessReview.prune).
func (rv *Reviews) pruneInstance(ctx context.Context, id string, budget *int) (int, error) {
	n, deleted := 0, 0
	err := rv.update(ctx, ReviewActor, "accessReview.prune", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		n, deleted = 0, 0
		now := rv.svc.now()
		inst, _, err := getInstance(ctx, tx, id)
		if err != nil || !inst.expired(now, rv.Retention) {
			return nil, ignoreGone(err)
		}
		d, drev, err := getDefinition(ctx, tx, inst.DefinitionID)
		if err != nil {
			return nil, ignoreGone(err) // deleting a definition deletes its instances with it
		}
		ids, err := itemIDs(ctx, tx, id, reviewPruneBatch+1)
		if err != nil || len(ids) > reviewPruneBatch {
			return nil, err
		}
		for _, itemID := range ids {
			if err := tx.Delete(ctx, ReviewItemKind, itemID); err != nil {
				return nil, err
			}
		}
		deleted = len(ids)
		if err := tx.Delete(ctx, ReviewReminderKind, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err := tx.Delete(ctx, ReviewInstanceKind, id); err != nil {
			return nil, err
		}
		// Items counts what the instance held, the batches before this
		// transaction — on this node or another — included: an ended
		// instance's summary counts all its items.
		items := 0
		if inst.Summary != nil {
			items = inst.Summary.Items
		}
		p := ReviewPruned{LastOccurrence: inst.Occurrence}
		if d.Pruned != nil {
			p = *d.Pruned
			p.LastOccurrence = max(p.LastOccurrence, inst.Occurrence)
		}
		p.Instances++
		p.Items += items
		p.Started = p.Started || inst.Status != ReviewStopped
		p.LastDateTime = now
		d.Pruned = &p
		if err := writeDefinition(ctx, tx, d, drev); err != nil {
			return nil, err
		}
		n = 1
		return &reviewRecord{target: "/accessReviews/instances/" + id, details: map[string]any{"definitionId": inst.DefinitionID,
			"occurrence": inst.Occurrence, "status": inst.Status, "endDateTime": inst.EndDateTime, "closedDateTime": inst.closedAt(),
			"items": items, "retention": rv.Retention.String()}}, nil
	})
	if err != nil {
		return 0, err
	}
	*budget -= deleted
	return n, nil
}

// itemIDs lists the ids of up to limit items of an instance, in id order.
func itemIDs(ctx context.Context, r store.Reader, instanceID string, limit int) ([]string, error) {
	var ids []string
	err := store.EachPrefixed(ctx, r, ReviewItemKind, instanceID+".", "", func(o store.Object) (bool, error) {
		ids = append(ids, o.ID)
		return len(ids) < limit, nil
	})
	return ids, err
}
