package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/store"
)

// flowTTL bounds one sign-in attempt, as Entra's ten-minute limit on a
// sign-in's state.
const flowTTL = 10 * time.Minute

// maxCodeAttempts is how many wrong second-factor codes one attempt may
// submit before it must start over (and count as a failure).
const maxCodeAttempts = 5

// flow is a sign-in in progress: who has proved what so far, and what
// conditional access still asks for.
type flow struct {
	id string // record id (digest of the cookie secret)

	UserID        string            `json:"userId"`
	UPN           string            `json:"userPrincipalName"`
	DisplayName   string            `json:"displayName,omitempty"`
	AppID         string            `json:"appId"`
	ReturnTo      string            `json:"returnTo"`
	IP            string            `json:"ip"`
	UserAgent     string            `json:"userAgent,omitempty"`
	CorrelationID string            `json:"correlationId"`
	CSRF          string            `json:"csrf"`
	Started       time.Time         `json:"started"`
	PasswordAt    time.Time         `json:"passwordAt"`
	MFAAt         time.Time         `json:"mfaAt,omitzero"`
	Methods       access.AuthMethod `json:"methods"`
	Satisfied     access.Control    `json:"satisfied"`
	// Steps is what the user must still do, in order.
	Steps []step `json:"steps"`
	// Enrollment is a TOTP secret being enrolled (sealed), not yet proved.
	Enrollment []byte `json:"enrollment,omitempty"`
	// Attempts counts wrong codes.
	Attempts int `json:"attempts"`
	// Details are the authentication steps so far, for the sign-in log.
	Details []AuthenticationStep `json:"details"`
	// PasskeyOnly says the strength asked for takes a passkey: codes do
	// not count.
	PasskeyOnly bool `json:"passkeyOnly,omitempty"`
	// Replaces is the session a step-up started from (its record id): the
	// new session replaces it.
	Replaces string `json:"replaces,omitempty"`
	// SignInRisk is the attempt's risk, assessed when its first factor
	// was proved, with the detections that raised it.
	SignInRisk access.RiskLevel `json:"signInRisk,omitempty"`
	RiskEvents []string         `json:"riskEvents,omitempty"`

	version int64
}

// step is one thing a sign-in still needs.
type step string

const (
	stepMFA            step = "mfa"            // prove a second factor (TOTP or a recovery code)
	stepEnrollMFA      step = "enrollMfa"      // register an authenticator app, then prove it
	stepPasswordChange step = "passwordChange" // set a new password
)

func createFlow(ctx context.Context, st store.Store, f *flow) (string, error) {
	secret, id := newSecret()
	f.id = id
	body, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	r, err := st.CreateRecord(ctx, store.Record{Kind: kindFlow, ID: id, Subject: f.UserID, Body: body, ExpiresAt: f.Started.Add(flowTTL)})
	if err != nil {
		return "", err
	}
	f.version = r.Version
	return secret, nil
}

// errNoFlow means the attempt's cookie names no live attempt.
var errNoFlow = errors.New("no sign-in in progress")

func loadFlow(ctx context.Context, st store.Store, secret string) (*flow, error) {
	if !validSecret(secret) {
		return nil, errNoFlow
	}
	r, err := st.GetRecord(ctx, kindFlow, digest(secret))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoFlow
	}
	if err != nil {
		return nil, err
	}
	var f flow
	if err := json.Unmarshal(r.Body, &f); err != nil {
		return nil, fmt.Errorf("sign-in record: %w", err)
	}
	f.id, f.version = r.ID, r.Version
	return &f, nil
}

// saveFlow writes f if it has not changed since it was read; a second
// submission of the same form racing the first gets store.ErrConflict.
func saveFlow(ctx context.Context, st store.Store, f *flow) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	r, err := st.UpdateRecord(ctx, store.Record{Kind: kindFlow, ID: f.id, Subject: f.UserID, Body: body, ExpiresAt: f.Started.Add(flowTTL), Version: f.version})
	if err != nil {
		return err
	}
	f.version = r.Version
	return nil
}

func endFlow(ctx context.Context, st store.Store, f *flow) {
	_ = st.DeleteRecord(ctx, kindFlow, f.id) // expiry removes it anyway
}

// next is the step the user must do now ("" when none is left).
func (f *flow) next() step {
	if len(f.Steps) == 0 {
		return ""
	}
	return f.Steps[0]
}

// done removes s from the steps.
func (f *flow) done(s step) {
	out := f.Steps[:0]
	for _, x := range f.Steps {
		if x != s {
			out = append(out, x)
		}
	}
	f.Steps = out
}
