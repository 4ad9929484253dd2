package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store"
)

// status is where a signing key is in its life.
type status string

const (
	statusNext    status = "next"    // published, not yet signing
	statusCurrent status = "current" // published and signing
	statusRetired status = "retired" // published until DeleteAt, no longer signing
)

// entry is one key in the lifecycle state. Times come from Options.Now.
type entry struct {
	KID    string                  `json:"kid"`
	Alg    jose.SignatureAlgorithm `json:"alg"`
	Status status                  `json:"status"`
	// ActivateAt is when a next key is due to sign, and when a current or
	// retired key began to.
	ActivateAt time.Time `json:"activateAt"`
	RetiredAt  time.Time `json:"retiredAt,omitzero"`
	DeleteAt   time.Time `json:"deleteAt,omitzero"`
}

// state is the body of the signing state record: every published key.
// All transitions are compare-and-swap writes of this one record, which
// is what keeps nodes that run Maintain together from racing.
type state struct {
	Keys []entry `json:"keys"`
}

func (s *state) find(st status) int {
	return slices.IndexFunc(s.Keys, func(e entry) bool { return e.Status == st })
}

func (s *state) has(kid string) bool {
	return slices.ContainsFunc(s.Keys, func(e entry) bool { return e.KID == kid })
}

// transition is one change of the state: a new key to make (with the
// status and activation time it gets) and kids whose records to delete
// once the new state is stored.
type transition struct {
	why     string
	next    state
	mint    bool
	status  status
	activAt time.Time
	dropped []string
}

// staleLimit bounds how long a node signs from a cached view it cannot
// refresh. A retired key stays published that much longer than
// RetainAfter, so tokens signed from a stale view still verify.
const staleLimit = time.Minute

func (k *Keyring) retire(e *entry, now time.Time) {
	e.Status = statusRetired
	e.RetiredAt = now
	e.DeleteAt = now.Add(k.opts.RetainAfter + staleLimit)
}

// plan returns the first transition due at now, or ok false when the
// state is as it should be. Maintain applies transitions one at a time
// until none is due, so each is small and idempotent.
func (k *Keyring) plan(cur state, now time.Time) (t transition, ok bool) {
	t.next = state{Keys: slices.Clone(cur.Keys)}
	keys := t.next.Keys

	// More than one current key never happens through this code; if the
	// records say so anyway, the most recently activated one wins.
	var currents []int
	for i, e := range keys {
		if e.Status == statusCurrent {
			currents = append(currents, i)
		}
	}
	if len(currents) > 1 {
		newest := slices.MaxFunc(currents, func(a, b int) int { return keys[a].ActivateAt.Compare(keys[b].ActivateAt) })
		for _, i := range currents {
			if i != newest {
				k.retire(&keys[i], now)
			}
		}
		t.why = "retire extra current keys"
		return t, true
	}

	c, n := t.next.find(statusCurrent), t.next.find(statusNext)
	if n >= 0 {
		// The earliest due next key is the one to promote.
		for i, e := range keys {
			if e.Status == statusNext && e.ActivateAt.Before(keys[n].ActivateAt) {
				n = i
			}
		}
	}
	switch {
	case n >= 0 && (c < 0 || !now.Before(keys[n].ActivateAt)):
		if c >= 0 {
			k.retire(&keys[c], now)
		}
		keys[n].Status, keys[n].ActivateAt = statusCurrent, now
		t.why = "promote next key"
		return t, true
	case c < 0 && n < 0:
		t.why, t.mint, t.status, t.activAt = "first signing key", true, statusCurrent, now
		return t, true
	}

	expired := func(e entry) bool { return e.Status == statusRetired && !now.Before(e.DeleteAt) }
	if slices.ContainsFunc(keys, expired) {
		for _, e := range keys {
			if expired(e) {
				t.dropped = append(t.dropped, e.KID)
			}
		}
		t.next.Keys = slices.DeleteFunc(keys, expired)
		t.why = "delete retired keys"
		return t, true
	}

	if n < 0 {
		due := keys[c].ActivateAt.Add(k.opts.RotateEvery)
		switch {
		case keys[c].Alg != k.opts.Algorithm:
			t.why, t.activAt = "algorithm changed", now.Add(k.opts.PublishAhead)
		case !now.Before(due.Add(-k.opts.PublishAhead)):
			t.why, t.activAt = "publish next key", due
			if earliest := now.Add(k.opts.PublishAhead); t.activAt.Before(earliest) {
				t.activAt = earliest // never sign with a key published for less than PublishAhead
			}
		default:
			return transition{}, false
		}
		t.mint, t.status = true, statusNext
		return t, true
	}
	return transition{}, false
}

// planRotate is Rotate's transition: promote the next key now, or, when
// there is none, make a new key current at once.
func (k *Keyring) planRotate(cur state, now time.Time) transition {
	t := transition{next: state{Keys: slices.Clone(cur.Keys)}, why: "rotate on demand"}
	c, n := t.next.find(statusCurrent), t.next.find(statusNext)
	if c >= 0 {
		k.retire(&t.next.Keys[c], now)
	}
	if n >= 0 {
		t.next.Keys[n].Status, t.next.Keys[n].ActivateAt = statusCurrent, now
		return t
	}
	t.mint, t.status, t.activAt = true, statusCurrent, now
	return t
}

// loadState reads the signing state; version 0 means it does not exist yet.
func (k *Keyring) loadState(ctx context.Context) (state, int64, error) {
	r, err := k.st.GetRecord(ctx, kindKeyring, idSigningState)
	if errors.Is(err, store.ErrNotFound) {
		return state{}, 0, nil
	}
	if err != nil {
		return state{}, 0, fmt.Errorf("keyring: read signing state: %w", err)
	}
	var s state
	if err := json.Unmarshal(r.Body, &s); err != nil {
		return state{}, 0, fmt.Errorf("keyring: decode signing state: %w", err)
	}
	return s, r.Version, nil
}

// apply makes t's new key, if any, and stores t's state if the stored
// state is still version; store.ErrConflict when another node came first.
func (k *Keyring) apply(ctx context.Context, t transition, version int64) (string, error) {
	var kid string
	if t.mint {
		kk, body, err := k.generateKey(k.opts.Algorithm)
		if err != nil {
			return "", err
		}
		kid = kk.kid
		// The key record comes first: a state never names a key that is
		// not stored. A crash before the state write leaves an orphan,
		// which Maintain deletes an hour later.
		if _, err := k.st.CreateRecord(ctx, store.Record{Kind: kindSigningKey, ID: kid, Subject: subjectKeyring, Body: body}); err != nil {
			return "", fmt.Errorf("keyring: store new signing key: %w", err)
		}
		t.next.Keys = append(t.next.Keys, entry{KID: kid, Alg: kk.alg, Status: t.status, ActivateAt: t.activAt})
	}
	body, err := json.Marshal(t.next)
	if err != nil {
		return "", fmt.Errorf("keyring: encode signing state: %w", err)
	}
	rec := store.Record{Kind: kindKeyring, ID: idSigningState, Subject: subjectKeyring, Body: body, Version: version}
	if version == 0 {
		_, err = k.st.CreateRecord(ctx, rec)
	} else {
		_, err = k.st.UpdateRecord(ctx, rec)
	}
	if errors.Is(err, store.ErrConflict) {
		if kid != "" {
			// Lost the race: our key was never listed, so nobody uses it.
			// (After any other error the write may have committed, so the
			// key stays, and Maintain removes it later if it is unlisted.)
			if derr := k.st.DeleteRecord(context.WithoutCancel(ctx), kindSigningKey, kid); derr != nil {
				k.opts.Logger.Warn("keyring: delete unlisted signing key", "kid", kid, "error", derr)
			}
		}
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("keyring: store signing state: %w", err)
	}
	for _, d := range t.dropped {
		if err := k.st.DeleteRecord(ctx, kindSigningKey, d); err != nil && !errors.Is(err, store.ErrNotFound) {
			k.opts.Logger.Warn("keyring: delete retired signing key", "kid", d, "error", err)
		}
	}
	k.opts.Logger.Info("keyring: signing keys changed", "why", t.why, "kid", kid, "dropped", t.dropped)
	return kid, nil
}

// maxSteps bounds one Maintain: a handful of transitions and conflicts.
const maxSteps = 16

// Maintain performs every lifecycle transition due now: the first key of
// an empty database, publishing the next key PublishAhead before it is
// due, promoting it, deleting retired keys RetainAfter after they stopped
// signing. It also seals signing keys under the current master key when
// they were sealed under an old one, and removes keys no state lists.
// Running it again, or on several nodes at once, does each transition
// once. Call it every minute or so (Run does).
func (k *Keyring) Maintain(ctx context.Context) error {
	k.maintain.Lock()
	defer k.maintain.Unlock()
	defer k.invalidate()
	var cur state
	for range maxSteps {
		var version int64
		var err error
		if cur, version, err = k.loadState(ctx); err != nil {
			return err
		}
		t, due := k.plan(cur, k.opts.Now())
		if !due {
			return k.tidy(ctx, cur)
		}
		if _, err := k.apply(ctx, t, version); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("keyring: signing keys still changing after %d steps", maxSteps)
}

// Rotate replaces the current signing key now: the next key, already
// published, takes over, or a new key when there is none; the key it
// replaces is retired. It returns the kid of the new current key. Use it
// when a key may be compromised or to test relying parties; Maintain
// rotates on schedule.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	k.maintain.Lock()
	defer k.maintain.Unlock()
	defer k.invalidate()
	for range maxSteps {
		cur, version, err := k.loadState(ctx)
		if err != nil {
			return "", err
		}
		t := k.planRotate(cur, k.opts.Now())
		kid, err := k.apply(ctx, t, version)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return "", err
		}
		if kid == "" {
			kid = t.next.Keys[t.next.find(statusCurrent)].KID
		}
		return kid, nil
	}
	return "", fmt.Errorf("keyring: rotate: signing state still changing after %d tries", maxSteps)
}

// tidy rewraps key records sealed under an old master key and deletes
// key records that cur does not list and that are older than orphanAge.
func (k *Keyring) tidy(ctx context.Context, cur state) error {
	recs, err := k.st.ListRecords(ctx, kindSigningKey, subjectKeyring, 0)
	if err != nil {
		return fmt.Errorf("keyring: list signing keys: %w", err)
	}
	for _, r := range recs {
		if !cur.has(r.ID) {
			if time.Since(r.CreatedAt) >= k.orphanAge {
				if err := k.st.DeleteRecord(ctx, kindSigningKey, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("keyring: delete unlisted signing key: %w", err)
				}
			}
			continue
		}
		var b keyBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			return fmt.Errorf("keyring: signing key %s: decode record: %w", r.ID, err)
		}
		if !k.seal.needsRewrap(b.PrivateKey) {
			continue
		}
		if b.PrivateKey, err = k.seal.rewrap(purposeSigningKey, r.ID, b.PrivateKey); err != nil {
			return fmt.Errorf("keyring: signing key %s: %w", r.ID, err)
		}
		if r.Body, err = json.Marshal(b); err != nil {
			return fmt.Errorf("keyring: signing key %s: encode record: %w", r.ID, err)
		}
		if _, err := k.st.UpdateRecord(ctx, r); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("keyring: rewrap signing key %s: %w", r.ID, err)
		}
	}
	return nil
}

// Run calls Maintain every interval (a minute when interval <= 0) until
// ctx ends, logging failures; a node starts it once.
func (k *Keyring) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Maintain(ctx); err != nil && ctx.Err() == nil {
				k.opts.Logger.Error("keyring: maintain signing keys", "error", err)
			}
		}
	}
}
