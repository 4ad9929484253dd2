package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// LeaseKind is the record kind of leases.
const LeaseKind = "lease"

type leaseBody struct {
	Holder string `json:"holder"`
}

// Lease is work only one node of a database should do at a time (an
// audit sink, the detection engine): Hold takes or renews it for the
// holder, and it passes to another node ttl after its holder stops
// renewing it. A holder renews it in the store at most every third of
// ttl: in between it holds it still, so reads on a busy path do not each
// write the lease.
type Lease struct {
	st      Store
	name    string
	holder  string
	ttl     time.Duration
	renewed time.Time // when Hold last renewed it; zero when not held
	now     func() time.Time
}

// NewLease returns the lease name of st for holder.
func NewLease(st Store, name, holder string, ttl time.Duration) *Lease {
	return &Lease{st: st, name: name, holder: holder, ttl: ttl, now: time.Now}
}

// Hold takes or renews the lease and reports whether the holder has it.
func (l *Lease) Hold(ctx context.Context) (bool, error) {
	now := l.now()
	if !l.renewed.IsZero() && now.Sub(l.renewed) < l.ttl/3 {
		return true, nil
	}
	held, err := l.take(ctx, now)
	if held && err == nil {
		l.renewed = now
	} else {
		l.renewed = time.Time{}
	}
	return held, err
}

func (l *Lease) take(ctx context.Context, now time.Time) (bool, error) {
	body, _ := json.Marshal(leaseBody{Holder: l.holder})
	rec, err := l.st.GetRecord(ctx, LeaseKind, l.name)
	switch {
	case errors.Is(err, ErrNotFound):
		_, err := l.st.CreateRecord(ctx, Record{Kind: LeaseKind, ID: l.name, Body: body, ExpiresAt: now.Add(l.ttl)})
		if errors.Is(err, ErrConflict) {
			return false, nil
		}
		return err == nil, err
	case err != nil:
		return false, err
	}
	var lb leaseBody
	if json.Unmarshal(rec.Body, &lb) != nil || lb.Holder != l.holder {
		return false, nil
	}
	rec.ExpiresAt = now.Add(l.ttl)
	if _, err := l.st.UpdateRecord(ctx, rec); err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Release gives the lease up when the holder has it, so that another
// node takes over at once rather than when it expires.
func (l *Lease) Release(ctx context.Context) error {
	l.renewed = time.Time{}
	rec, err := l.st.GetRecord(ctx, LeaseKind, l.name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var lb leaseBody
	if json.Unmarshal(rec.Body, &lb) != nil || lb.Holder != l.holder {
		return nil
	}
	if err := l.st.DeleteRecord(ctx, LeaseKind, l.name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
