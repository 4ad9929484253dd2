package access

import (
	"time"
)

// DefaultSignInFrequency is Entra's default user sign-in frequency when no
// policy sets one: "a rolling window of 90 days".
const DefaultSignInFrequency = 90 * 24 * time.Hour

// everyTimeSkew is the clock skew Entra allows for "every time": "we
// don't prompt users more often than once every five minutes".
const everyTimeSkew = 5 * time.Minute

// BrowserMode is the merged persistent browser session setting.
type BrowserMode uint8

// Persistent browser modes; when policies disagree, never wins.
const (
	BrowserNotSet BrowserMode = iota
	BrowserAlways
	BrowserNever
)

var browserNames = enum{"", "always", "never"}

// String returns the Graph name of the value.
func (m BrowserMode) String() string { return browserNames.name(uint8(m)) }

// CAEMode is the merged continuous access evaluation setting, ordered from
// the least to the most restrictive; the most restrictive setting of the
// applying policies wins (disabled only if no policy asks for more).
type CAEMode uint8

// CAE modes.
const (
	CAENotSet CAEMode = iota
	CAEDisabled
	CAEStrictEnforcement
	CAEStrictLocation
)

var caeNames = enum{"", "disabled", "strictEnforcement", "strictLocation"}

// String returns the Graph name of the value.
func (m CAEMode) String() string { return caeNames.name(uint8(m)) }

// Frequency is the merged sign-in frequency: the shortest of the applying
// policies' (every time is shorter than any interval).
type Frequency struct {
	// Set says an applying policy sets it; otherwise Interval is
	// DefaultSignInFrequency.
	Set       bool
	EveryTime bool
	Interval  time.Duration
	// Secondary says only the second factor must be repeated (every
	// applying policy with the shortest frequency says
	// secondaryAuthentication).
	Secondary bool
	// Reauthenticate says the user signed in longer ago than the frequency
	// allows (Request.Now minus SignInTime, or MFATime when Secondary).
	Reauthenticate bool
}

// Session is the merged session controls of the applying enforced
// policies.
type Session struct {
	SignInFrequency            Frequency
	PersistentBrowser          BrowserMode
	ContinuousAccessEvaluation CAEMode
	// DisableResilienceDefaults is set when an applying policy sets it;
	// Verity has no resilience defaults, so it changes nothing.
	DisableResilienceDefaults bool
}

// PolicyResult is one policy's part in a decision.
type PolicyResult struct {
	// Reason is the first condition that does not hold (0 when Applies).
	Reason Reason
	// Assumed lists unsupported conditions the policy was assumed to meet.
	Assumed Reason
	// Unmet lists the controls the sign-in has not satisfied; AnyOf says
	// one of them suffices (operator OR).
	Unmet Control
	// Applies says every condition holds.
	Applies bool
	Status  Status
	// Block says the policy blocks.
	Block bool
	AnyOf bool
}

// Result is the decision for one request. Evaluate fills it; reuse one
// Result per goroutine to evaluate without allocating.
type Result struct {
	Outcome Outcome
	// Unmet is what the user must still satisfy, in prompt order (bit
	// order): every control of the failing AND policies, and for each
	// failing OR policy the first of its controls in prompt order that
	// Verity supports, unless one of its controls is already required.
	Unmet Control
	// Strengths lists the authentication strengths required by the failing
	// policies whose strength is unmet.
	Strengths []*Strength
	Session   Session
	// Policies has one entry per Engine.Policies() entry, in that order.
	Policies []PolicyResult

	engine      *Engine
	appliedOnly bool
	scratch     []uint64
	failing     []int32 // enforced policies that apply and are not satisfied
}

// Engine returns the engine that filled the result.
func (r *Result) Engine() *Engine { return r.engine }

// reset sizes the result for e, keeping its slices' memory.
func (r *Result) reset(e *Engine) {
	r.engine = e
	r.Outcome, r.Unmet, r.Session = OutcomeNotApplied, 0, Session{}
	r.Strengths = r.Strengths[:0]
	n := len(e.policies)
	if cap(r.Policies) < n {
		r.Policies = make([]PolicyResult, n)
	}
	r.Policies = r.Policies[:n]
	if cap(r.failing) < n {
		r.failing = make([]int32, 0, n)
	}
	// One slice holds the request's policy masks and its location tokens.
	need := scratchRows*e.words + e.loc.words
	if cap(r.scratch) < need {
		r.scratch = make([]uint64, need)
	}
	r.scratch = r.scratch[:need]
	clear(r.scratch)
}
