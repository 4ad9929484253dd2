package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// User risk, in Microsoft Entra ID Protection's model: a level (low,
// medium, high) and a state (atRisk, confirmedCompromised, remediated,
// dismissed). Detections raise it; conditional access reads it
// (userRiskLevels) on the very next decision.
const (
	UserRiskKind = "userRisk"

	RiskAtRisk               = "atRisk"
	RiskConfirmedCompromised = "confirmedCompromised"
	RiskRemediated           = "remediated"
	RiskDismissed            = "dismissed"
)

var levels = []string{"none", "low", "medium", "high"}

// UserRisk is a user's risk record.
type UserRisk struct {
	UserID     string   `json:"userId"`
	User       string   `json:"userPrincipalName,omitempty"`
	Level      string   `json:"riskLevel"`
	State      string   `json:"riskState"`
	Detections []string `json:"detections"` // alert ids
	// Detail says why the state is what it is (Graph's riskDetail):
	// adminConfirmedUserCompromised, adminDismissedAllRiskForUser,
	// userPerformedSecuredPasswordChange, adminGeneratedTemporaryPassword.
	Detail  string    `json:"riskDetail,omitempty"`
	Updated time.Time `json:"riskLastUpdatedDateTime"`
}

// Active reports whether the risk counts in decisions: atRisk or
// confirmedCompromised (remediated and dismissed do not).
func (r UserRisk) Active() bool {
	return r.State == RiskAtRisk || r.State == RiskConfirmedCompromised
}

// userRiskOf is the risk an alert puts on its user: none when it names
// no user that signed in.
func userRiskOf(a Alert) string {
	switch a.Detector {
	case "bruteForce":
		return "high" // the account signed in after its password was guessed at
	case "mfaFatigue":
		return "high" // someone who had the password got the second factor accepted
	case "sessionReplay":
		return "high" // the session is in two places at once: a stolen cookie or token
	case "impossibleTravel":
		return "medium" // a sign-in from where the user cannot be (or a VPN)
	case "unfamiliarFeatures", "anonymousIP":
		return "low"
	}
	return ""
}

// RaiseUserRisk raises userID's risk to at least level for the alert id,
// atRisk; a dismissed or remediated risk is at risk again.
func RaiseUserRisk(ctx context.Context, st store.Store, userID, upn, level, alertID string) error {
	for range 5 {
		rec, err := st.GetRecord(ctx, UserRiskKind, userID)
		var r UserRisk
		switch {
		case errors.Is(err, store.ErrNotFound):
			r = UserRisk{UserID: userID, User: upn, Level: level, State: RiskAtRisk, Detections: []string{alertID}, Updated: time.Now().UTC()}
			body, _ := json.Marshal(r)
			if _, err := st.CreateRecord(ctx, store.Record{Kind: UserRiskKind, ID: userID, Body: body}); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return err
			}
			return nil
		case err != nil:
			return err
		}
		if err := json.Unmarshal(rec.Body, &r); err != nil {
			return fmt.Errorf("detect: risk of %s: %w", userID, err)
		}
		if slices.Index(levels, level) > slices.Index(levels, r.Level) || !r.Active() {
			r.Level = level
		}
		if r.State != RiskConfirmedCompromised {
			r.State, r.Detail = RiskAtRisk, ""
		}
		if !slices.Contains(r.Detections, alertID) {
			r.Detections = append(r.Detections, alertID)
		}
		r.Updated = time.Now().UTC()
		rec.Body, _ = json.Marshal(r)
		if _, err := st.UpdateRecord(ctx, rec); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("detect: raise the risk of %s: too many concurrent updates", userID)
}

// riskFreshness bounds how late a risk change is seen by a node's
// decisions, as the session cache bounds revocation.
const riskFreshness = 500 * time.Millisecond

// RiskCache answers the user risk level of decisions from the store, each
// user's read at most every riskFreshness.
type RiskCache struct {
	st      store.Store
	mu      sync.Mutex
	entries map[string]riskEntry
}

type riskEntry struct {
	level string
	read  time.Time
}

// NewRiskCache returns a cache over st.
func NewRiskCache(st store.Store) *RiskCache {
	return &RiskCache{st: st, entries: map[string]riskEntry{}}
}

// Level returns userID's active risk level ("none" when there is none);
// a store error is returned with "none" for the caller to decide.
func (c *RiskCache) Level(ctx context.Context, userID string) (string, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[userID]
	c.mu.Unlock()
	if ok && now.Sub(e.read) < riskFreshness {
		return e.level, nil
	}
	level := "none"
	rec, err := c.st.GetRecord(ctx, UserRiskKind, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "none", err
	default:
		var r UserRisk
		if json.Unmarshal(rec.Body, &r) == nil && r.Active() && slices.Contains(levels, r.Level) {
			level = r.Level
		}
	}
	c.mu.Lock()
	if len(c.entries) > 100_000 {
		c.entries = map[string]riskEntry{}
	}
	c.entries[userID] = riskEntry{level: level, read: now}
	c.mu.Unlock()
	return level, nil
}

// RiskyUsers lists the users with a risk record.
func RiskyUsers(ctx context.Context, st store.Store, limit int) ([]UserRisk, error) {
	recs, err := st.ListRecords(ctx, UserRiskKind, "", limit)
	if err != nil {
		return nil, err
	}
	out := make([]UserRisk, 0, len(recs))
	for _, r := range recs {
		var u UserRisk
		if err := json.Unmarshal(r.Body, &u); err != nil {
			return nil, fmt.Errorf("detect: risk of %s: %w", r.ID, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// SetUserRiskState records an administrator's verdict on a user's risk:
// confirmedCompromised (level high) or dismissed (level none). A user
// without a risk record gets one.
func SetUserRiskState(ctx context.Context, st store.Store, userID, upn, state string) (UserRisk, error) {
	level := "high"
	if state == RiskDismissed {
		level = "none"
	}
	for range 5 {
		rec, err := st.GetRecord(ctx, UserRiskKind, userID)
		r := UserRisk{UserID: userID, User: upn, Detections: []string{}}
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = store.Record{Kind: UserRiskKind, ID: userID}
		case err != nil:
			return r, err
		default:
			if err := json.Unmarshal(rec.Body, &r); err != nil {
				return r, fmt.Errorf("detect: risk of %s: %w", userID, err)
			}
		}
		r.State, r.Level, r.Updated = state, level, time.Now().UTC()
		r.Detail = "adminConfirmedUserCompromised"
		if state == RiskDismissed {
			r.Detail = "adminDismissedAllRiskForUser"
		}
		rec.Body, _ = json.Marshal(r)
		if rec.Version == 0 {
			_, err = st.CreateRecord(ctx, rec)
		} else {
			_, err = st.UpdateRecord(ctx, rec)
		}
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return r, err
	}
	return UserRisk{}, fmt.Errorf("detect: set the risk of %s: too many concurrent updates", userID)
}

// GetUserRisk returns userID's risk record; a user without one has level
// none.
func GetUserRisk(ctx context.Context, st store.Store, userID string) (UserRisk, error) {
	r := UserRisk{UserID: userID, Level: "none", State: "none", Detections: []string{}}
	rec, err := st.GetRecord(ctx, UserRiskKind, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r, nil
	case err != nil:
		return r, err
	}
	if err := json.Unmarshal(rec.Body, &r); err != nil {
		return r, fmt.Errorf("detect: risk of %s: %w", userID, err)
	}
	return r, nil
}

// RemediateUserRisk marks userID's active risk remediated (level none)
// with why (Graph's riskDetail, e.g. userPerformedSecuredPasswordChange):
// the user proved it is them. It reports whether there was an active
// risk to remediate.
func RemediateUserRisk(ctx context.Context, st store.Store, userID, detail string) (bool, error) {
	for range 5 {
		rec, err := st.GetRecord(ctx, UserRiskKind, userID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var r UserRisk
		if err := json.Unmarshal(rec.Body, &r); err != nil {
			return false, fmt.Errorf("detect: risk of %s: %w", userID, err)
		}
		if !r.Active() {
			return false, nil
		}
		r.State, r.Level, r.Detail, r.Updated = RiskRemediated, "none", detail, time.Now().UTC()
		rec.Body, _ = json.Marshal(r)
		if _, err := st.UpdateRecord(ctx, rec); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return false, err
		}
		return true, nil
	}
	return false, fmt.Errorf("detect: remediate the risk of %s: too many concurrent updates", userID)
}
