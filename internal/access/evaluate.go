package access

import (
	"math/bits"
	"slices"
	"strings"
)

// Rows of Result.scratch, each one policy mask.
const (
	rowWho = iota
	rowExcl
	rowTarget
	rowTmp
	rowLocation
	rowDevice
	rowApplies
	scratchRows
)

// Evaluate decides req against every policy and fills res, reusing its
// memory: after the first call with a given Result it does not allocate.
// It reads only the engine and the request, takes no lock and does no I/O.
//
// A policy applies when every configured condition holds ("all
// assignments are logically ANDed"; an exclude beats an include). Every
// applying enabled policy must be satisfied: a block blocks; otherwise
// unmet controls interrupt the sign-in (or block it, when the client uses
// legacy authentication or Verity cannot apply a control). Report-only
// policies are evaluated and reported but change neither the outcome nor
// the session controls.
func (e *Engine) Evaluate(req *Request, res *Result) {
	res.reset(e)
	res.appliedOnly = req.AppliedPoliciesOnly
	w := e.words
	s := res.scratch
	who, excl := s[rowWho*w:(rowWho+1)*w], s[rowExcl*w:(rowExcl+1)*w]
	target, tmp := s[rowTarget*w:(rowTarget+1)*w], s[rowTmp*w:(rowTmp+1)*w]
	loc, dev := s[rowLocation*w:(rowLocation+1)*w], s[rowDevice*w:(rowDevice+1)*w]
	applies := s[rowApplies*w : (rowApplies+1)*w]
	locTokens := s[scratchRows*w:]

	whoReason := e.who(req, who, excl)
	targetReason := e.target(req, target, tmp)
	clear(excl)
	e.location(req, loc, excl, locTokens)

	client := e.clientOK[clampEnum(uint8(req.ClientApp), uint8(numClientApps))]
	platform := e.platformOK[clampEnum(uint8(req.Platform), uint8(numPlatforms))]
	signIn := e.signInOK[clampEnum(uint8(req.SignInRisk), uint8(numRiskLevels))]
	userRisk := e.userRiskOK[clampEnum(uint8(req.UserRisk), uint8(numRiskLevels))]
	spRisk := e.spRiskOK[clampEnum(uint8(req.ServicePrincipalRisk), uint8(numRiskLevels))]
	insider := e.insiderOK[clampEnum(uint8(req.InsiderRisk), uint8(numInsiderRisks))]
	flow := e.flowOK[clampEnum(uint8(req.AuthenticationFlow), uint8(numTransferMethods))]
	// Device filters run only for policies every earlier condition admits:
	// for the others an earlier condition is the reason anyway.
	for i := range applies {
		applies[i] = e.nonEmpty[i] & who[i] & target[i] & loc[i] & userRisk[i] & signIn[i] & spRisk[i] &
			insider[i] & platform[i] & client[i]
	}
	e.devices(req, applies, dev)
	for i := range applies {
		applies[i] &= dev[i] & flow[i]
	}

	// Policies that do not apply: the first condition, in the documented
	// order, whose mask lacks them. Vectorised over 64 policies at a time.
	copy(res.Policies, e.blank)
	checks := [...]struct {
		mask   []uint64
		reason Reason
	}{
		{e.nonEmpty, ReasonEmptyPolicy}, {who, whoReason}, {target, targetReason}, {loc, ReasonLocation},
		{userRisk, ReasonUserRisk}, {signIn, ReasonSignInRisk}, {spRisk, ReasonServicePrincipalRisk},
		{insider, ReasonInsiderRisk}, {platform, ReasonDevicePlatform}, {client, ReasonClientApps},
		{dev, ReasonDevices}, {flow, ReasonAuthenticationFlow},
	}
	for wi := range applies {
		left := e.valid[wi] &^ applies[wi]
		for c := 0; left != 0 && c < len(checks); c++ {
			fail := left &^ checks[c].mask[wi]
			left &^= fail
			for ; fail != 0; fail &= fail - 1 {
				res.Policies[wi*64+bits.TrailingZeros64(fail)].Reason = checks[c].reason
			}
		}
	}

	// Policies that apply: their grant and session controls.
	sat := satisfied(req)
	legacy := req.ClientApp.Legacy()
	var blocked, interrupted, anyEnforced bool
	res.failing = res.failing[:0]
	for wi, word := range applies {
		for ; word != 0; word &= word - 1 {
			i := wi*64 + bits.TrailingZeros64(word)
			pr := &res.Policies[i]
			p := &e.pol[i]
			pr.Applies, pr.Assumed = true, p.assumed
			if hasBit(e.locAssumed, i) {
				pr.Assumed |= ReasonLocation
			}
			ok, satisfiable := p.grant(req, sat, legacy, pr)
			switch {
			case p.enforced && ok:
				pr.Status = StatusSuccess
			case p.enforced:
				pr.Status = StatusFailure
			case ok:
				pr.Status = StatusReportOnlySuccess
			case satisfiable && (pr.Unmet&interactiveControls != 0 && (pr.AnyOf || pr.Unmet&^interactiveControls == 0)):
				pr.Status = StatusReportOnlyInterrupted
			default:
				pr.Status = StatusReportOnlyFailure
			}
			if !p.enforced {
				continue
			}
			anyEnforced = true
			res.Session.merge(p)
			if !ok {
				res.failing = append(res.failing, int32(i))
			}
			switch {
			case pr.Block || (!ok && !satisfiable):
				blocked = true
			case !ok:
				interrupted = true
			}
		}
	}
	res.mergeUnmet()
	f := &res.Session.SignInFrequency
	if !f.Set {
		f.Interval = DefaultSignInFrequency
	} else if !req.Now.IsZero() {
		last := req.SignInTime
		if f.Secondary && !req.MFATime.IsZero() {
			last = req.MFATime
		}
		limit := f.Interval
		if f.EveryTime {
			limit = everyTimeSkew
		}
		f.Reauthenticate = !last.IsZero() && req.Now.Sub(last) > limit
	}
	switch {
	case blocked:
		res.Outcome = OutcomeBlock
	case interrupted || f.Reauthenticate:
		res.Outcome = OutcomeInterrupt
	case anyEnforced:
		res.Outcome = OutcomeGrant
	}
}

// clampEnum maps an out-of-range value to 0 (not given / none) rather
// than panic on a caller's bad constant.
func clampEnum(v, n uint8) uint8 {
	if v >= n {
		return 0
	}
	return v
}

// who fills incl with the policies whose users (or workload identity)
// assignment covers the sign-in. excl is scratch.
func (e *Engine) who(req *Request, incl, excl []uint64) Reason {
	switch req.Identity {
	case IdentityUser:
		if req.UserID == "" {
			return ReasonUsers
		}
		copy(incl, e.usersAll)
		for b := range e.guestIncl {
			if req.GuestType&(1<<b) != 0 {
				orInto(incl, e.guestIncl[b])
				orInto(excl, e.guestExcl[b])
			}
		}
		for i := range e.tenants {
			t := &e.tenants[i]
			if req.GuestType&t.types != 0 && slices.Contains(t.tenants, req.ExternalTenantID) {
				if t.exclude {
					setBit(excl, t.policy)
				} else {
					setBit(incl, t.policy)
				}
			}
		}
		e.addPrincipal(e.userTok, req.UserID, incl, excl)
		if len(e.groupTok) > 0 {
			for _, g := range req.Groups {
				if e.groupIDs.mayHave(g) {
					e.addPrincipal(e.groupTok, g, incl, excl)
				}
			}
		}
		if len(e.roleTok) > 0 {
			for _, r := range req.Roles {
				e.addPrincipal(e.roleTok, r, incl, excl)
			}
		}
		andNotInto(incl, excl)
		return ReasonUsers
	case IdentityServicePrincipal:
		if req.ServicePrincipalID != "" {
			copy(incl, e.spAll)
			e.addPrincipal(e.spTok, req.ServicePrincipalID, incl, excl)
			andNotInto(incl, excl)
		}
	}
	// Managed identities are never covered by conditional access.
	return ReasonWorkloadIdentities
}

func (e *Engine) addPrincipal(tok map[string]int32, id string, incl, excl []uint64) {
	if r, ok := tok[id]; ok {
		orInto(incl, e.principal.row(int(r)))
		orInto(excl, e.principal.row(int(r)+1))
	}
}

// target fills m with the policies whose target resources cover the
// sign-in. tmp is scratch.
func (e *Engine) target(req *Request, m, tmp []uint64) Reason {
	switch {
	case len(req.Applications) > 0:
		// The policy applies if it covers any of the applications.
		for _, app := range req.Applications {
			copy(tmp, e.appsAll)
			if r, ok := e.appTok[app]; ok {
				orInto(tmp, e.apps.row(int(r)))
				andNotInto(tmp, e.apps.row(int(r)+1))
			}
			orInto(m, tmp)
		}
		return ReasonApplication
	case req.UserAction != UserActionNone:
		// "All resources" covers user actions too, as Graph's documented
		// evaluate response shows.
		copy(m, e.appsAll)
		if int(req.UserAction) < len(e.actions) {
			orInto(m, e.actions[req.UserAction])
		}
		return ReasonUserActions
	case req.AuthenticationContext != "":
		// Verity's reading, by analogy with user actions: an
		// authentication context is requested while signing in to some
		// resource, which "All resources" covers.
		copy(m, e.appsAll)
		if n, ok := authContextNumber(req.AuthenticationContext); ok && e.authCtx[n] != nil {
			orInto(m, e.authCtx[n])
		}
		return ReasonAuthenticationContext
	}
	return ReasonApplication
}

// location fills m with the policies whose network condition holds. excl
// and tokens are scratch.
func (e *Engine) location(req *Request, m, excl, tokens []uint64) {
	st := e.loc.match(req.IP, req.Country, tokens)
	copy(m, e.locInclAll)
	orInto(m, e.locAssumedIncl)
	for w, word := range st.in {
		for word != 0 {
			t := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			orInto(m, e.locTok.row(2*t))
			orInto(excl, e.locTok.row(2*t+1))
		}
	}
	andNotInto(m, excl)
	// A location the request gives no signal for cannot be evaluated.
	if !st.ipKnown {
		andNotInto(m, e.locNeedsIP)
	}
	if !st.ctKnown {
		andNotInto(m, e.locNeedsCtry)
	}
	orInto(m, e.noLocation)
}

// devices fills m with the policies whose device filter holds, among
// those in candidates; the others pass (another condition fails first).
func (e *Engine) devices(req *Request, candidates, m []uint64) {
	copy(m, e.noFilter)
	for i := range e.filters {
		f := &e.filters[i]
		// A filter on a device the request does not describe cannot be
		// evaluated: the policy does not apply.
		if !hasBit(candidates, f.policy) || req.Device != nil && f.filter.Applies(req.Device) {
			setBit(m, f.policy)
		}
	}
}

// deviceStateControls are the controls a legacy-authentication client can
// never satisfy: it "can't do MFA or pass device state".
const deviceStateControls = ControlMFA | ControlAuthenticationStrength | ControlCompliantDevice | ControlDomainJoinedDevice

// satisfied is what the sign-in has already satisfied, from the request's
// claims, methods and device. Claims of unsupported controls are ignored.
func satisfied(req *Request) Control {
	sat := req.Satisfied &^ (unsupportedControls | ControlAuthenticationStrength)
	if mfaStrength.Satisfied(req.Methods) {
		sat |= ControlMFA
	}
	if d := req.Device; d != nil && d.Registered {
		if d.IsCompliant != nil && *d.IsCompliant {
			sat |= ControlCompliantDevice
		}
		if strings.EqualFold(d.TrustType, "ServerAD") {
			sat |= ControlDomainJoinedDevice
		}
	}
	if req.ClientApp.Legacy() {
		sat &^= deviceStateControls
	}
	return sat
}

// grant decides an applying policy's grant and session controls: ok when
// satisfied, satisfiable when the user could still satisfy it. It fills
// pr.Block, pr.Unmet and pr.AnyOf.
func (p *compiled) grant(req *Request, sat Control, legacy bool, pr *PolicyResult) (ok, satisfiable bool) {
	if p.block {
		pr.Block = true
		return false, false
	}
	met := p.controls & sat
	if p.strength != nil && !legacy && (p.strength.Satisfied(req.Methods) || p.strength == mfaStrength && sat&ControlMFA != 0) {
		met |= ControlAuthenticationStrength
	}
	unmet := p.controls &^ met
	anyOf := !p.and && bits.OnesCount32(uint32(p.controls)) > 1
	ok = p.controls == 0 || (anyOf && met != 0) || (!anyOf && unmet == 0)
	if ok && p.session == 0 {
		return true, true
	}
	if ok {
		unmet = 0 // the grant is met; only the session controls are not
	}
	pr.Unmet, pr.AnyOf = unmet|p.session, anyOf && !ok
	satisfiable = !legacy && p.session == 0
	if anyOf {
		satisfiable = satisfiable && unmet&^unsupportedControls != 0
	} else {
		satisfiable = satisfiable && unmet&unsupportedControls == 0
	}
	return false, satisfiable
}

// merge adds an applying enforced policy's session controls.
func (s *Session) merge(p *compiled) {
	if p.sif.set {
		f := &s.SignInFrequency
		shorter := !f.Set || (p.sif.everyTime && !f.EveryTime) || (!f.EveryTime && !p.sif.everyTime && p.sif.interval < f.Interval)
		same := f.Set && p.sif.everyTime == f.EveryTime && p.sif.interval == f.Interval
		switch {
		case shorter:
			*f = Frequency{Set: true, EveryTime: p.sif.everyTime, Interval: p.sif.interval, Secondary: p.sif.secondary}
		case same:
			f.Secondary = f.Secondary && p.sif.secondary
		}
	}
	s.PersistentBrowser = max(s.PersistentBrowser, p.browser)
	s.ContinuousAccessEvaluation = max(s.ContinuousAccessEvaluation, p.cae)
	s.DisableResilienceDefaults = s.DisableResilienceDefaults || p.disableResilience
}

// mergeUnmet computes Result.Unmet and Strengths from the failing enforced
// policies: all controls of AND policies first, then for each OR policy
// nothing if one of its controls is already required, else its first
// supported control in prompt order.
func (r *Result) mergeUnmet() {
	e := r.engine
	var need Control
	for _, i := range r.failing {
		if pr := &r.Policies[i]; !pr.AnyOf {
			need |= pr.Unmet
		}
	}
	for _, i := range r.failing {
		pr := &r.Policies[i]
		if !pr.AnyOf || pr.Unmet&need != 0 {
			continue
		}
		alt := pr.Unmet &^ e.pol[i].session
		if supported := alt &^ unsupportedControls; supported != 0 {
			alt = supported
		}
		need |= alt & -alt // lowest bit: first in prompt order
		need |= e.pol[i].session
	}
	r.Unmet = need
	if need&ControlAuthenticationStrength == 0 {
		return
	}
	for _, i := range r.failing {
		if st := e.pol[i].strength; r.Policies[i].Unmet&ControlAuthenticationStrength != 0 && !slices.Contains(r.Strengths, st) {
			r.Strengths = append(r.Strengths, st)
		}
	}
}
