package pim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Access reviews in the store. Instances and items carry their parent's
// id as a prefix ("{definition}.{occurrence}", "{instance}.{hash}"), so
// that a definition's instances and an instance's items are one range of
// ids: listed in order, without reading anyone else's.

func getDefinition(ctx context.Context, r store.Reader, id string) (*ReviewDefinition, int64, error) {
	o, err := r.Get(ctx, ReviewDefinitionKind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, ErrReviewNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	var d ReviewDefinition
	if err := json.Unmarshal(o.Body, &d); err != nil {
		return nil, 0, fmt.Errorf("access review %s: %w", id, err)
	}
	return &d, o.Revision, nil
}

// writeDefinition creates d (revision 0) or replaces it if it is still at
// revision: only retention rewrites a definition, to note what it pruned.
func writeDefinition(ctx context.Context, tx store.Tx, d *ReviewDefinition, revision int64) error {
	stored := *d
	stored.Status = "" // worked out from the instances when read
	body, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	obj := store.Object{Kind: ReviewDefinitionKind, ID: d.ID, Body: body}
	if revision == 0 {
		return tx.Create(ctx, obj)
	}
	return tx.Update(ctx, obj, revision)
}

func getInstance(ctx context.Context, r store.Reader, id string) (*ReviewInstance, int64, error) {
	o, err := r.Get(ctx, ReviewInstanceKind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, ErrReviewNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	var inst ReviewInstance
	if err := json.Unmarshal(o.Body, &inst); err != nil {
		return nil, 0, fmt.Errorf("access review instance %s: %w", id, err)
	}
	return &inst, o.Revision, nil
}

// writeInstance creates inst (revision 0) or replaces it if it is still
// at revision: a write based on a stale read fails with store.ErrConflict.
func writeInstance(ctx context.Context, tx store.Tx, inst *ReviewInstance, revision int64) error {
	body, err := json.Marshal(inst)
	if err != nil {
		return err
	}
	obj := store.Object{Kind: ReviewInstanceKind, ID: inst.ID, Body: body}
	if revision == 0 {
		return tx.Create(ctx, obj)
	}
	return tx.Update(ctx, obj, revision)
}

func getItem(ctx context.Context, r store.Reader, id string) (*ReviewItem, int64, error) {
	o, err := r.Get(ctx, ReviewItemKind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, ErrReviewNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	var it ReviewItem
	if err := json.Unmarshal(o.Body, &it); err != nil {
		return nil, 0, fmt.Errorf("access review item %s: %w", id, err)
	}
	return &it, o.Revision, nil
}

// writeItem creates it (revision 0) or replaces it if it is still at
// revision.
func writeItem(ctx context.Context, tx store.Tx, it *ReviewItem, revision int64) error {
	body, err := json.Marshal(it)
	if err != nil {
		return err
	}
	obj := store.Object{Kind: ReviewItemKind, ID: it.ID, Body: body}
	if revision == 0 {
		return tx.Create(ctx, obj)
	}
	return tx.Update(ctx, obj, revision)
}

// eachItem calls fn with every item of an instance (and its revision), in
// id order after after; fn returns false to stop.
func eachItem(ctx context.Context, r store.Reader, instanceID, after string, fn func(*ReviewItem, int64) (bool, error)) error {
	return store.EachPrefixed(ctx, r, ReviewItemKind, instanceID+".", after, func(o store.Object) (bool, error) {
		var it ReviewItem
		if err := json.Unmarshal(o.Body, &it); err != nil {
			return false, fmt.Errorf("access review item %s: %w", o.ID, err)
		}
		return fn(&it, o.Revision)
	})
}

// revisedItem is an item with the revision it was read at.
type revisedItem struct {
	*ReviewItem
	revision int64
}

func itemsOf(ctx context.Context, r store.Reader, instanceID string) ([]revisedItem, error) {
	var out []revisedItem
	err := eachItem(ctx, r, instanceID, "", func(it *ReviewItem, rev int64) (bool, error) {
		out = append(out, revisedItem{it, rev})
		return true, nil
	})
	return out, err
}

// GetReview returns a definition with its status at now.
//
// The instances are read before the definition: retention removes an
// instance and notes it on the definition in one transaction, so a
// pruning that commits between the two reads is seen twice (harmless to
// the status) rather than not at all.
func GetReview(ctx context.Context, r store.Reader, id string, now time.Time) (ReviewDefinition, error) {
	insts, err := ReviewInstances(ctx, r, id)
	if err != nil {
		return ReviewDefinition{}, err
	}
	d, _, err := getDefinition(ctx, r, id)
	if err != nil {
		return ReviewDefinition{}, err
	}
	d.Status = d.status(insts, now)
	return *d, nil
}

// ListReviews lists every definition, with its status at now. As
// GetReview does, it reads the instances — every definition's, in one
// pass — before the definitions.
func ListReviews(ctx context.Context, r store.Reader, now time.Time) ([]ReviewDefinition, error) {
	insts := map[string][]ReviewInstance{}
	err := store.Each(ctx, r, ReviewInstanceKind, func(o store.Object) error {
		var inst ReviewInstance
		if err := json.Unmarshal(o.Body, &inst); err != nil {
			return fmt.Errorf("access review instance %s: %w", o.ID, err)
		}
		insts[inst.DefinitionID] = append(insts[inst.DefinitionID], inst)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []ReviewDefinition
	err = store.Each(ctx, r, ReviewDefinitionKind, func(o store.Object) error {
		var d ReviewDefinition
		if err := json.Unmarshal(o.Body, &d); err != nil {
			return fmt.Errorf("access review %s: %w", o.ID, err)
		}
		d.Status = d.status(insts[d.ID], now)
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReviewInstances lists a definition's instances, oldest first.
func ReviewInstances(ctx context.Context, r store.Reader, definitionID string) ([]ReviewInstance, error) {
	var out []ReviewInstance
	err := store.EachPrefixed(ctx, r, ReviewInstanceKind, definitionID+".", "", func(o store.Object) (bool, error) {
		var inst ReviewInstance
		if err := json.Unmarshal(o.Body, &inst); err != nil {
			return false, fmt.Errorf("access review instance %s: %w", o.ID, err)
		}
		out = append(out, inst)
		return true, nil
	})
	return out, err
}

// GetReviewInstance returns an instance by id.
func GetReviewInstance(ctx context.Context, r store.Reader, id string) (ReviewInstance, error) {
	inst, _, err := getInstance(ctx, r, id)
	if err != nil {
		return ReviewInstance{}, err
	}
	return *inst, nil
}

// ReviewItems lists up to limit items of an instance that keep accepts,
// in id order after the item id after; more says whether the listing
// stopped at limit.
func ReviewItems(ctx context.Context, r store.Reader, instanceID, after string, limit int, keep func(*ReviewItem) bool) (items []ReviewItem, more bool, err error) {
	err = eachItem(ctx, r, instanceID, after, func(it *ReviewItem, _ int64) (bool, error) {
		if keep != nil && !keep(it) {
			return true, nil
		}
		if len(items) == limit {
			more = true
			return false, nil
		}
		items = append(items, *it)
		return true, nil
	})
	return items, more, err
}

// status is a definition's status given its instances: Completed when no
// instance is waiting or running and no occurrence is left, InProgress
// once one has started, else NotStarted. Instances retention removed
// count through d.Pruned.
func (d *ReviewDefinition) status(insts []ReviewInstance, now time.Time) string {
	started, live, last := false, false, d.lastPruned()
	if d.Pruned != nil {
		started = d.Pruned.Started
	}
	for _, inst := range insts {
		last = max(last, inst.Occurrence)
		switch inst.Status {
		case ReviewNotStarted:
			live = true
		case ReviewInProgress:
			live, started = true, true
		case ReviewCompleted, ReviewApplied:
			started = true
		}
	}
	if _, _, _, more := d.nextOccurrence(last, now); !live && !more {
		return ReviewCompleted
	}
	if started {
		return ReviewInProgress
	}
	return ReviewNotStarted
}

// lastPruned is the highest occurrence number retention removed, -1 when
// none: the sweep numbers the next instance after it, so that removing
// old instances never makes an occurrence run again.
func (d *ReviewDefinition) lastPruned() int {
	if d.Pruned == nil {
		return -1
	}
	return d.Pruned.LastOccurrence
}
