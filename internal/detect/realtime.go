package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// SignInRiskResult is the risk of a sign-in attempt in flight.
type SignInRiskResult struct {
	Level string // none, low, medium, high
	// EventTypes are the Entra riskEventType names of what was seen:
	// anonymizedIPAddress, impossibleTravel, unfamiliarFeatures,
	// anomalousToken.
	EventTypes []string
	Detail     string // what was seen, for the log
}

// RealtimeOptions are the rules AssessSignIn applies: the detectors it
// shares them with, as configured (nil: that rule is not assessed).
// AssessSignIn reads only their settings, never their state: it is safe
// for concurrent use, also while the detectors observe.
type RealtimeOptions struct {
	AnonymousIP        *AnonymousIP
	ImpossibleTravel   *ImpossibleTravel
	UnfamiliarFeatures *UnfamiliarFeatures
	SessionReplay      *SessionReplay
}

// RealtimeOptionsOf returns the options of the detectors in ds (the
// engine's, as configured), so that an attempt is judged in flight by the
// rules and thresholds the detectors apply to the log afterwards.
func RealtimeOptionsOf(ds []Detector) *RealtimeOptions {
	o := &RealtimeOptions{}
	for _, d := range ds {
		switch d := d.(type) {
		case *AnonymousIP:
			o.AnonymousIP = d
		case *ImpossibleTravel:
			o.ImpossibleTravel = d
		case *UnfamiliarFeatures:
			o.UnfamiliarFeatures = d
		case *SessionReplay:
			o.SessionReplay = d
		}
	}
	return o
}

// RiskEventType is the Entra riskEventType of a detector's alerts, "" for
// a detector that has none.
func RiskEventType(detector string) string {
	switch detector {
	case "anonymousIP":
		return "anonymizedIPAddress"
	case "impossibleTravel":
		return "impossibleTravel"
	case "unfamiliarFeatures":
		return "unfamiliarFeatures"
	case "sessionReplay":
		return "anomalousToken"
	}
	return ""
}

var riskRank = map[string]int{"none": 0, "low": 1, "medium": 2, "high": 3}

// AssessSignIn is the risk of attempt, a sign-in in flight whose password
// was accepted, judged by the detectors' rules against history — the
// user's recent sign-ins, newest first (the log's order; up to ~100 are
// plenty: the rules read its successful interactive sign-ins, and the
// unfamiliar-properties rule needs them to reach back its learning
// period, else the user is still learning). It reads nothing else.
//
// Levels, after Entra ID Protection's: an anonymising address is medium
// (Entra's anonymous IP address); impossible travel since the user's
// previous sign-in is medium — a physical impossibility, but also what a
// VPN or a mislocated mobile address looks like, so it asks for a second
// factor (Microsoft's recommended sign-in risk policy: MFA at medium and
// high) rather than refusing, which Entra keeps for high confidence;
// unfamiliar properties are low, or medium when every known property is
// new; the session used from far away within the hour is high (medium on
// networks alone). The result is the highest, except that impossible
// travel together with unfamiliar properties is high, as Sentinel rates
// Identity Protection's atypical-travel and unfamiliar-properties alerts
// when they coincide.
func AssessSignIn(attempt *SignIn, history []SignIn, opts *RealtimeOptions) SignInRiskResult {
	res := SignInRiskResult{Level: "none"}
	if attempt == nil || opts == nil || attempt.User == "" {
		return res
	}
	a := *attempt
	a.Success, a.Code = true, 0 // judged as the sign-in it is about to be
	var details []string
	add := func(eventType, level, detail string) {
		res.EventTypes = append(res.EventTypes, eventType)
		if riskRank[level] > riskRank[res.Level] {
			res.Level = level
		}
		details = append(details, detail)
	}
	// past yields the user's earlier sign-ins, newest first, whatever the
	// order history came in.
	past := func(yield func(h *SignIn) bool) {
		n := len(history)
		reverse := n > 1 && history[0].Time.Before(history[n-1].Time)
		for i := range n {
			h := &history[i]
			if reverse {
				h = &history[n-1-i]
			}
			if sameUser(h, &a) && !h.Time.After(a.Time) && !yield(h) {
				return
			}
		}
	}

	if d := opts.AnonymousIP; d != nil && d.anonymous(&a) {
		add("anonymizedIPAddress", "medium", fmt.Sprintf("anonymising address %s", a.IP))
	}
	travel := false
	if d := opts.ImpossibleTravel; d != nil && d.eligible(&a) {
		for h := range past {
			if !d.eligible(h) {
				continue
			}
			prev, cur := placeOf(h), placeOf(&a)
			if km, kmh, ok := d.impossible(prev, cur); ok {
				travel = true
				speed := "at once"
				if !math.IsInf(kmh, 1) {
					speed = fmt.Sprintf("%.0f km/h", kmh)
				}
				add("impossibleTravel", "medium", fmt.Sprintf("impossible travel: %.0f km from %s since the sign-in at %s (%s)",
					km, prev.where(), h.Time.Format("2006-01-02 15:04Z07:00"), speed))
			}
			break
		}
	}
	unfamiliar := false
	if d := opts.UnfamiliarFeatures; d != nil && d.eligible(&a) {
		var learned []*SignIn
		for h := range past {
			if d.eligible(h) {
				learned = append(learned, h)
			}
		}
		var p *profile
		for _, h := range slices.Backward(learned) { // oldest first, as the detector learns
			day, pr := dayOf(h.Time), propsOf(h, nil)
			if !d.current(p, day) {
				p = newProfile(day)
			}
			p.learn(&pr, day)
		}
		day := dayOf(a.Time)
		if d.current(p, day) {
			pr := propsOf(&a, nil)
			if _, fresh, sev := d.judge(p, &pr, day); sev != "" {
				unfamiliar = true
				add("unfamiliarFeatures", sev, "unfamiliar properties: "+describeProps(&a, fresh))
			}
		}
	}
	if d := opts.SessionReplay; d != nil && d.eligible(&a) {
		session := sessionOf(&a)
		for h := range past {
			if sessionOf(h) != session || !d.eligible(h) {
				continue
			}
			prev, cur := useOf(h), useOf(&a)
			if _, sev := d.replayed(&prev, &cur); sev != "" {
				add("anomalousToken", sev, fmt.Sprintf("its session was used from %s at %s", h.IP, h.Time.Format("2006-01-02 15:04Z07:00")))
			}
			break
		}
	}
	if travel && unfamiliar {
		res.Level = "high"
	}
	res.Detail = strings.Join(details, "; ")
	return res
}

// sameUser reports whether two sign-ins are of one user: by id when both
// have one, else by name.
func sameUser(a, b *SignIn) bool {
	if a.UserID != "" && b.UserID != "" {
		return a.UserID == b.UserID
	}
	return a.User == b.User
}
