package access

import (
	"strconv"
	"time"
)

// WhatIfResponse is the body Graph's POST /identity/conditionalAccess/evaluate
// answers ("value": one whatIfAnalysisResult per policy), plus Verity's
// overall "result".
type WhatIfResponse struct {
	Value  []WhatIfPolicy `json:"value"`
	Result WhatIfResult   `json:"result"`
}

// WhatIfPolicy is Graph's whatIfAnalysisResult: the policy with
// policyApplies and analysisReasons. Verity adds policyResult (the
// sign-in log value: success, failure, reportOnlyInterrupted, ...),
// unmetControls and assumedConditions (unsupported conditions the policy
// was assumed to meet), each only when it has something to say.
type WhatIfPolicy struct {
	ODataType string `json:"@odata.type"`
	*Policy
	PolicyApplies     bool     `json:"policyApplies"`
	AnalysisReasons   string   `json:"analysisReasons"`
	PolicyResult      string   `json:"policyResult"`
	UnmetControls     []string `json:"unmetControls,omitempty"`
	AssumedConditions []string `json:"assumedConditions,omitempty"`
}

// WhatIfResult is the overall decision.
type WhatIfResult struct {
	Outcome                 string         `json:"outcome"` // block, grant, interrupt, notApplied
	UnmetControls           []string       `json:"unmetControls"`
	AuthenticationStrengths []string       `json:"authenticationStrengths,omitempty"`
	SessionControls         WhatIfSessions `json:"sessionControls"`
}

// WhatIfSessions is the merged session controls in Graph's shapes.
type WhatIfSessions struct {
	SignInFrequency            WhatIfFrequency             `json:"signInFrequency"`
	PersistentBrowser          *PersistentBrowser          `json:"persistentBrowser,omitempty"`
	ContinuousAccessEvaluation *ContinuousAccessEvaluation `json:"continuousAccessEvaluation,omitempty"`
	DisableResilienceDefaults  bool                        `json:"disableResilienceDefaults,omitempty"`
}

// WhatIfFrequency is signInFrequencySessionControl plus isDefault (no
// policy sets it: Entra's rolling 90 days) and reauthenticate.
type WhatIfFrequency struct {
	SignInFrequency
	IsDefault      bool `json:"isDefault,omitempty"`
	Reauthenticate bool `json:"reauthenticate,omitempty"`
}

const odataWhatIfResult = "#microsoft.graph.whatIfAnalysisResult"

// WhatIf renders the result in the shape of Graph's evaluate response. It
// allocates; call it off the hot path. With Request.AppliedPoliciesOnly
// only applying policies are listed.
func (r *Result) WhatIf() *WhatIfResponse {
	out := &WhatIfResponse{Value: []WhatIfPolicy{}}
	if r.engine == nil {
		out.Result = WhatIfResult{Outcome: r.Outcome.String(), UnmetControls: []string{}}
		return out
	}
	for i, pr := range r.Policies {
		if r.appliedOnly && !pr.Applies {
			continue
		}
		out.Value = append(out.Value, WhatIfPolicy{
			ODataType: odataWhatIfResult, Policy: r.engine.policies[i],
			PolicyApplies: pr.Applies, AnalysisReasons: pr.Reason.String(), PolicyResult: pr.Status.String(),
			UnmetControls: pr.Unmet.Names(), AssumedConditions: pr.Assumed.Names(),
		})
	}
	res := WhatIfResult{Outcome: r.Outcome.String(), UnmetControls: r.Unmet.Names()}
	if res.UnmetControls == nil {
		res.UnmetControls = []string{}
	}
	for _, s := range r.Strengths {
		res.AuthenticationStrengths = append(res.AuthenticationStrengths, s.ID)
	}
	s := &r.Session
	f := s.SignInFrequency
	wf := WhatIfFrequency{SignInFrequency: SignInFrequency{IsEnabled: true, AuthenticationType: "primaryAndSecondaryAuthentication", FrequencyInterval: "timeBased"},
		IsDefault: !f.Set, Reauthenticate: f.Reauthenticate}
	if f.Secondary {
		wf.AuthenticationType = "secondaryAuthentication"
	}
	if f.EveryTime {
		wf.FrequencyInterval = "everyTime"
	} else {
		wf.Type, wf.Value = durationUnit(f.Interval)
	}
	res.SessionControls = WhatIfSessions{SignInFrequency: wf, DisableResilienceDefaults: s.DisableResilienceDefaults}
	if s.PersistentBrowser != BrowserNotSet {
		res.SessionControls.PersistentBrowser = &PersistentBrowser{IsEnabled: true, Mode: s.PersistentBrowser.String()}
	}
	if s.ContinuousAccessEvaluation != CAENotSet {
		res.SessionControls.ContinuousAccessEvaluation = &ContinuousAccessEvaluation{Mode: s.ContinuousAccessEvaluation.String()}
	}
	out.Result = res
	return out
}

// durationUnit writes d as Graph's type and value: whole days when it is
// some, else hours.
func durationUnit(d time.Duration) (string, int32) {
	if d%(24*time.Hour) == 0 {
		return "days", int32(d / (24 * time.Hour))
	}
	return "hours", int32(d / time.Hour)
}

// String summarises the decision for logs: "interrupt (mfa,compliantDevice)".
func (r *Result) String() string {
	s := r.Outcome.String()
	if r.Unmet != 0 {
		s += " (" + r.Unmet.String() + ")"
	}
	if f := r.Session.SignInFrequency; f.Reauthenticate {
		s += " reauthenticate"
	}
	applied := 0
	for _, p := range r.Policies {
		if p.Applies {
			applied++
		}
	}
	return s + ", " + strconv.Itoa(applied) + " policies apply"
}
