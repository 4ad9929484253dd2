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

// TakeLease takes or renews the lease name for holder for ttl, and reports
// whether holder has it: work only one node of a database should do at a
// time (an audit sink, the detection engine) goes to the holder, and
// passes to another node ttl after its holder stops renewing it.
func TakeLease(ctx context.Context, st Store, name, holder string, ttl time.Duration) (bool, error) {
	body, _ := json.Marshal(leaseBody{Holder: holder})
	rec, err := st.GetRecord(ctx, LeaseKind, name)
	switch {
	case errors.Is(err, ErrNotFound):
		_, err := st.CreateRecord(ctx, Record{Kind: LeaseKind, ID: name, Body: body, ExpiresAt: time.Now().Add(ttl)})
		if errors.Is(err, ErrConflict) {
			return false, nil
		}
		return err == nil, err
	case err != nil:
		return false, err
	}
	var lb leaseBody
	if json.Unmarshal(rec.Body, &lb) != nil || lb.Holder != holder {
		return false, nil
	}
	rec.ExpiresAt = time.Now().Add(ttl)
	if _, err := st.UpdateRecord(ctx, rec); err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ReleaseLease gives the lease up when holder has it, so that another
// node takes over at once rather than when it expires.
func ReleaseLease(ctx context.Context, st Store, name, holder string) error {
	rec, err := st.GetRecord(ctx, LeaseKind, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var lb leaseBody
	if json.Unmarshal(rec.Body, &lb) != nil || lb.Holder != holder {
		return nil
	}
	if err := st.DeleteRecord(ctx, LeaseKind, name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
