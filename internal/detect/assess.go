package detect

import (
	"context"
	"fmt"

	"github.com/verityhq/verity/internal/store"
)

// Assessor judges sign-ins in flight (AssessSignIn) against the user's
// recent sign-ins in Verity's audit log — the log every node shares, so
// an attempt on one node is judged against sign-ins made on any other.
type Assessor struct {
	st   store.Store
	opts *RealtimeOptions
	// History is how many of the user's latest sign-ins are read (100).
	History int
}

// NewAssessor returns an assessor over st applying opts (the detectors'
// rules, RealtimeOptionsOf).
func NewAssessor(st store.Store, opts *RealtimeOptions) *Assessor {
	return &Assessor{st: st, opts: opts, History: 100}
}

// Assess returns the risk of the attempt a sign-in record (a Graph signIn
// object, as the sign-in log will hold it) describes. An error (the log
// cannot be read) comes with the risk judged on the attempt alone.
func (a *Assessor) Assess(ctx context.Context, attempt []byte) (SignInRiskResult, error) {
	s, err := signInFromVerity(attempt)
	if err != nil {
		return SignInRiskResult{Level: "none"}, fmt.Errorf("detect: assess: %w", err)
	}
	if s.UserID == "" {
		return AssessSignIn(&s, nil, a.opts), nil
	}
	evs, err := a.st.ListAudit(ctx, store.AuditQuery{Actor: s.UserID, Action: SignInAction, Limit: a.History})
	history := make([]SignIn, 0, len(evs))
	for i := range evs {
		if h, herr := signInFromVerity(evs[i].Details); herr == nil {
			history = append(history, h)
		}
	}
	return AssessSignIn(&s, history, a.opts), err
}
