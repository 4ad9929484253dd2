package pim

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Eligibilities by natural key. PIM holds at most one eligibility per role
// kind, principal, role and scope (ARM refuses a second one:
// RoleAssignmentExists), so that tuple is an eligibility's natural key
// (store.Object.Key), and an activation finds the principal's eligibility,
// and each of its groups', with one keyed read each — whatever the number
// of eligibilities in the tenant.
//
// Eligibilities stored before keys have none. The sweep gives each its
// key, one transaction per eligibility, oldest first; one whose key
// another already holds — a duplicate made before the rule, the newer of
// the two — stays without, and is reported once
// (DuplicateEligibilityAction) for an administrator to remove. When none is left without a key, the sweep
// writes a marker (keysCompleteKind); until it is there, a lookup reads
// every eligibility as before, so that none is missed. Should one without
// a key turn up after the marker (written by a node of an earlier version
// during an upgrade), the next sweep removes the marker before keying it.
const (
	// DuplicateEligibilityAction is the audit action of an eligibility the
	// sweep found to duplicate another (same role kind, principal, role
	// and scope), made before duplicates were refused: the other holds the
	// natural key, this one is left without it, for an administrator to
	// remove.
	DuplicateEligibilityAction = "pim.duplicateEligibility"
	// DuplicateEligibilityKind marks a duplicate reported. It is created
	// with the audit record, so that a duplicate is reported once
	// whichever node sweeps, and removed once the duplicate has gone or
	// got its key.
	DuplicateEligibilityKind = "roleEligibilityDuplicate"

	// keysCompleteKind/keysCompleteID is the marker that every eligibility
	// has its natural key: lookups read by key alone while it is there.
	keysCompleteKind = "roleEligibilityKeys"
	keysCompleteID   = "complete"
)

// duplicateRecord is the requestType of a duplicate's audit record: the
// sweep's finding, no request of anyone's.
const duplicateRecord = "Duplicate"

// eligibilityKey is the natural key of the eligibility of a role kind,
// principal, role and scope: key's normalised tuple, hashed, so that a
// scope of any length makes a short key.
func eligibilityKey(roleKind, principal, role, scope string) string {
	sum := sha256.Sum256([]byte(key(roleKind, principal, role, scope)))
	return "eligibility:" + hex.EncodeToString(sum[:16])
}

// naturalKey is e's eligibilityKey.
func (e *Eligibility) naturalKey() string {
	return eligibilityKey(e.RoleKind, e.PrincipalID, e.RoleDefinitionID, e.Scope)
}

func readEligibility(o store.Object) (*Eligibility, error) {
	var e Eligibility
	if err := json.Unmarshal(o.Body, &e); err != nil {
		return nil, fmt.Errorf("eligibility %s: %w", o.ID, err)
	}
	e.ID = o.ID
	return &e, nil
}

// eligibilityIndex finds eligibilities by natural key: a keyed read once
// every eligibility has its key; before, a look at every eligibility, read
// once per index.
type eligibilityIndex struct {
	r     store.Reader
	byKey map[string][]*Eligibility // every eligibility by key(), while some have no natural key
}

// indexEligibilities opens an index on r (a transaction's reader, so that
// what it finds holds until commit).
func indexEligibilities(ctx context.Context, r store.Reader) (*eligibilityIndex, error) {
	x := &eligibilityIndex{r: r}
	_, err := r.Get(ctx, keysCompleteKind, keysCompleteID)
	if err == nil {
		return x, nil // every eligibility has its key
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	x.byKey = map[string][]*Eligibility{}
	err = eachEligibility(ctx, r, func(e *Eligibility) error {
		k := key(e.RoleKind, e.PrincipalID, e.RoleDefinitionID, e.Scope)
		x.byKey[k] = append(x.byKey[k], e)
		return nil
	})
	return x, err
}

// of returns the eligibilities of the role kind, principal, role and
// scope, compared as natural keys are (role, scope and principal
// regardless of case): at most one, except duplicates made before they
// were refused, which are found until an administrator removes them.
func (x *eligibilityIndex) of(ctx context.Context, roleKind, principal, role, scope string) ([]*Eligibility, error) {
	k := key(roleKind, principal, role, scope)
	if x.byKey != nil {
		return x.byKey[k], nil
	}
	o, err := x.r.GetByKey(ctx, EligibilityKind, eligibilityKey(roleKind, principal, role, scope))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := readEligibility(o)
	if err != nil {
		return nil, err
	}
	if key(e.RoleKind, e.PrincipalID, e.RoleDefinitionID, e.Scope) != k {
		return nil, nil // the stored key does not say what the body does
	}
	return []*Eligibility{e}, nil
}

// errEligibilityExists refuses an eligibility where e, in force or to
// start, holds the role for the principal at the scope.
func errEligibilityExists(e *Eligibility, now time.Time) *Error {
	when := "in force"
	if now.Before(e.StartDateTime) {
		when = "from " + e.StartDateTime.UTC().Format(time.RFC3339)
	}
	if e.EndDateTime == nil {
		when += " without an end"
	} else {
		when += " until " + e.EndDateTime.UTC().Format(time.RFC3339)
	}
	return &Error{Code: ErrEligibilityExists.Code, Message: fmt.Sprintf("the principal already has an eligibility for this role at this scope: %s, %s; extend it (AdminExtend) or remove it (AdminRemove) first",
		e.ID, when)}
}

// sweepEligibilities reads every eligibility once for the sweep: it
// returns those in their last extendWindow (for reminders), and gives
// those without a natural key theirs.
func (s *Service) sweepEligibilities(ctx context.Context, now time.Time) ([]expiring, error) {
	var due []expiring
	var keyless []*Eligibility
	err := store.Each(ctx, s.st, EligibilityKind, func(o store.Object) error {
		e, err := readEligibility(o)
		if err != nil {
			return err
		}
		if endsSoon(e.EndDateTime, now) {
			due = append(due, e.expiring())
		}
		if o.Key == "" {
			keyless = append(keyless, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return due, s.keyEligibilities(ctx, keyless, now)
}

// keyEligibilities gives the eligibilities in keyless their natural keys,
// oldest first, so that of duplicates the oldest gets it; reports each
// duplicate left without; and keeps the marker that every eligibility has
// its key.
func (s *Service) keyEligibilities(ctx context.Context, keyless []*Eligibility, now time.Time) error {
	_, err := s.st.Get(ctx, keysCompleteKind, keysCompleteID)
	complete := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if complete && len(keyless) > 0 {
		// Written after the marker, by a node of an earlier version: lookups
		// read everything again until it has its key.
		if err := s.setKeysComplete(ctx, false, now); err != nil {
			return err
		}
		complete = false
	}
	slices.SortFunc(keyless, func(a, b *Eligibility) int {
		return cmp.Or(a.CreatedDateTime.Compare(b.CreatedDateTime), strings.Compare(a.ID, b.ID))
	})
	var left []string
	for _, e := range keyless {
		keyed, err := s.keyEligibility(ctx, e.ID)
		if err != nil {
			return fmt.Errorf("key eligibility %s: %w", e.ID, err)
		}
		if keyed {
			continue
		}
		left = append(left, e.ID)
		if err := s.reportDuplicate(ctx, e.ID, now); err != nil {
			return fmt.Errorf("report duplicate eligibility %s: %w", e.ID, err)
		}
	}
	if err := s.pruneDuplicateMarks(ctx, left); err != nil {
		return err
	}
	if len(left) == 0 && !complete {
		return s.setKeysComplete(ctx, true, now)
	}
	return nil
}

// keyEligibility gives eligibility id its natural key, unless another
// holds it: keyed reports whether it has it now (or has gone). Several
// nodes may do it at once: updates are serialised, and the second finds
// it done.
func (s *Service) keyEligibility(ctx context.Context, id string) (keyed bool, err error) {
	_, err = s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		o, err := tx.Get(ctx, EligibilityKind, id)
		if errors.Is(err, store.ErrNotFound) {
			keyed = true // removed meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		if keyed = o.Key != ""; keyed {
			return nil
		}
		e, err := readEligibility(o)
		if err != nil {
			return err
		}
		k := e.naturalKey()
		if _, err := tx.GetByKey(ctx, EligibilityKind, k); err == nil || !errors.Is(err, store.ErrNotFound) {
			return err // held by another (err nil): a duplicate
		}
		o.Key, keyed = k, true
		return tx.Update(ctx, o, o.Revision)
	})
	return keyed, err
}

// duplicateMark is the body of a DuplicateEligibilityKind object.
type duplicateMark struct {
	EligibilityID    string    `json:"eligibilityId"`
	KeptID           string    `json:"keptEligibilityId"`
	RecordedDateTime time.Time `json:"recordedDateTime"`
}

// reportDuplicate records, once, that eligibility id duplicates the one
// holding its natural key — unless it has gone or got the key meanwhile.
func (s *Service) reportDuplicate(ctx context.Context, id string, now time.Time) error {
	return s.update(ctx, AuditActor, DuplicateEligibilityAction, func(ctx context.Context, tx store.Tx) (*Request, error) {
		if _, err := tx.Get(ctx, DuplicateEligibilityKind, id); !errors.Is(err, store.ErrNotFound) {
			return nil, err // reported already (err nil), or the store failed
		}
		o, err := tx.Get(ctx, EligibilityKind, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && o.Key != "" {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		e, err := readEligibility(o)
		if err != nil {
			return nil, err
		}
		kept, err := tx.GetByKey(ctx, EligibilityKind, e.naturalKey())
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil // the next sweep gives it the key
		}
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(duplicateMark{EligibilityID: id, KeptID: kept.ID, RecordedDateTime: now})
		if err != nil {
			return nil, err
		}
		if err := tx.Create(ctx, store.Object{Kind: DuplicateEligibilityKind, ID: id, Body: body}); err != nil {
			return nil, err
		}
		rec := &Request{ID: id, RequestType: duplicateRecord, Target: TargetEligibility, Status: "RemovalAdvised", PrincipalID: e.PrincipalID,
			RoleDefinitionID: e.RoleDefinitionID, Scope: e.Scope, RoleKind: e.RoleKind, TargetID: id,
			auditDetails: map[string]any{"keptScheduleId": kept.ID}}
		if e.EndDateTime != nil {
			rec.ScheduleInfo.Expiration = Expiration{Type: "AfterDateTime", EndDateTime: e.EndDateTime}
		}
		return rec, nil
	})
}

// pruneDuplicateMarks removes the marks of duplicates no longer among
// left (removed, or keyed once the other went).
func (s *Service) pruneDuplicateMarks(ctx context.Context, left []string) error {
	return s.pruneMarks(ctx, DuplicateEligibilityKind, func(o store.Object) (bool, error) {
		return !slices.Contains(left, o.ID), nil
	})
}

// pruneMarks deletes, in one transaction, the objects of kind that done
// says are done with. It records nothing: marks are the sweep's own
// bookkeeping, and removing one changes no access and tells nobody
// anything.
func (s *Service) pruneMarks(ctx context.Context, kind string, done func(store.Object) (bool, error)) error {
	var ids []string
	if err := store.Each(ctx, s.st, kind, func(o store.Object) error {
		ok, err := done(o)
		if ok {
			ids = append(ids, o.ID)
		}
		return err
	}); err != nil || len(ids) == 0 {
		return err
	}
	_, err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, id := range ids {
			if err := tx.Delete(ctx, kind, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	return err
}

// setKeysComplete writes (complete) or removes the marker that every
// eligibility has its natural key. It records nothing: the marker changes
// how eligibilities are found, not who holds what.
func (s *Service) setKeysComplete(ctx context.Context, complete bool, now time.Time) error {
	_, err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Get(ctx, keysCompleteKind, keysCompleteID)
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		case !complete && err == nil:
			return tx.Delete(ctx, keysCompleteKind, keysCompleteID)
		case complete && err != nil:
			body, err := json.Marshal(map[string]time.Time{"completedDateTime": now})
			if err != nil {
				return err
			}
			return tx.Create(ctx, store.Object{Kind: keysCompleteKind, ID: keysCompleteID, Body: body})
		}
		return nil
	})
	if err != nil && complete {
		return fmt.Errorf("mark every eligibility keyed: %w", err)
	}
	if err != nil {
		return fmt.Errorf("unmark every eligibility keyed: %w", err)
	}
	return nil
}
