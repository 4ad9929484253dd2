package signin

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/store"
)

// maxForm bounds a sign-in form body.
const maxForm = 16 << 10

// dummyHash is verified against when a user name has no password, so that
// a wrong name costs as much time as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, err := authn.HashPassword(authn.GeneratePassword())
	if err != nil {
		panic(err)
	}
	return h
})

// form parses a bounded POST form and checks that it comes from this
// site: the Origin (when the browser sends one) must be this host.
func (s *Service) form(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return errBadForm
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if o != "https://"+r.Host && o != "http://"+r.Host {
			return errBadForm
		}
	}
	return nil
}

var errBadForm = errors.New("the form could not be read, or came from another site")

func (s *Service) getSignIn(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fresh := q.Get("prompt") == "login"
	if s.federatedHint(w, r, q.Get("login_hint"), q.Get("domain_hint"), safeReturn(q.Get("return_to")), q.Get("app"), fresh) {
		return
	}
	p := signInPage{
		Fresh:    fresh,
		CSRF:     s.csrfCookie(w, r),
		ReturnTo: safeReturn(q.Get("return_to")),
		AppID:    q.Get("app"),
		Username: strings.TrimSpace(q.Get("login_hint")),
		Passkeys: s.webauthn != nil,
		RPID:     s.rpID(),
	}
	p.Providers = s.providerButtons(r.Context())
	pq := url.Values{"return_to": {p.ReturnTo}}
	if p.AppID != "" {
		pq.Set("app", p.AppID)
	}
	p.PasskeyQuery = pq.Encode()
	s.page(w, r, http.StatusOK, p)
}

func (s *Service) postSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.form(w, r); err != nil || !s.csrfCookieMatches(r, r.PostFormValue("csrf")) {
		s.page(w, r, http.StatusBadRequest, errorPage{Title: "Sign-in could not continue", Message: "The page was out of date or did not come from this site. Start again.", Retry: "/signin"})
		return
	}
	now := s.opts.Now()
	upn := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	password := r.PostFormValue("password")
	again := signInPage{CSRF: s.csrfCookie(w, r), ReturnTo: safeReturn(r.PostFormValue("return_to")), AppID: r.PostFormValue("app"), Username: upn, Passkeys: s.webauthn != nil, RPID: s.rpID()}
	again.PasskeyQuery = url.Values{"return_to": {again.ReturnTo}, "app": {again.AppID}}.Encode()
	// A user name without a password whose domain an identity provider
	// serves signs in there.
	again.Fresh = r.PostFormValue("prompt") == "login"
	if password == "" && s.federatedHint(w, r, upn, "", again.ReturnTo, again.AppID, again.Fresh) {
		return
	}
	again.Providers = s.providerButtons(ctx)
	if upn == "" || password == "" || len(upn) > 256 || len(password) > authn.MaxPasswordLength {
		again.Error = "Enter your user name and password."
		s.page(w, r, http.StatusBadRequest, again)
		return
	}
	appID := again.AppID
	if appID == "" {
		appID = s.opts.AppID
	}
	ip := clientIP(r)
	ev := &Event{ID: newCorrelationID(), CreatedDateTime: now, UserPrincipalName: upn, AppID: appID, IPAddress: ip.String(),
		ClientAppUsed: "Browser", UserAgent: r.UserAgent(), CorrelationID: newCorrelationID(), IsInteractive: true,
		AuthenticationRequirement: "singleFactorAuthentication", AuthenticationDetails: []AuthenticationStep{},
		ConditionalAccessStatus: "notApplied", AppliedConditionalAccess: []AppliedPolicy{}, RiskLevelDuringSignIn: "none", RiskState: "none"}
	s.locate(ev, ip)
	u, code, _, err := s.passwordCheck(ctx, upn, password, ip, ev)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	switch code {
	case CodeSuccess:
	case CodeLocked:
		s.logFailure(ctx, r, ev)
		again.Error = "Your account is temporarily locked to prevent unauthorized use. Try again later."
		s.page(w, r, http.StatusTooManyRequests, again)
		return
	case CodeDisabled:
		s.logFailure(ctx, r, ev)
		s.page(w, r, http.StatusForbidden, errorPage{Title: "Your account is disabled", Message: "Contact your administrator.", Correlation: ev.CorrelationID})
		return
	default:
		s.logFailure(ctx, r, ev)
		again.Error = "Your account or password is incorrect."
		s.page(w, r, http.StatusUnauthorized, again)
		return
	}
	f := &flow{UserID: u.ID, UPN: upn, DisplayName: u.DisplayName, AppID: appID, ReturnTo: again.ReturnTo,
		IP: ip.String(), UserAgent: r.UserAgent(), CorrelationID: ev.CorrelationID, CSRF: newCorrelationID(),
		Started: now, PasswordAt: now, Methods: access.MethodPassword, Details: ev.AuthenticationDetails}
	s.assessRisk(ctx, f, ev)
	m, err := loadMethods(ctx, s.opts.Store, u.ID)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	if m.MustChangePassword {
		f.Steps = append(f.Steps, stepPasswordChange)
	}
	secret, err := createFlow(ctx, s.opts.Store, f)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	s.setCookie(w, flowCookie, secret, 0)
	s.advance(w, r, f, m)
}

// advance evaluates conditional access for the attempt as it stands and
// takes it to its next step, or finishes it.
func (s *Service) advance(w http.ResponseWriter, r *http.Request, f *flow, m *Methods) {
	ctx := r.Context()
	now := s.opts.Now()
	ev := s.event(f, now)
	if ok, err := s.Assigned(f.UserID, f.AppID); err != nil {
		s.fail(w, r, ev, err)
		endFlow(ctx, s.opts.Store, f)
		return
	} else if !ok {
		ev.Status = Status{ErrorCode: CodeNotAssigned, FailureReason: "The signed in user is not assigned to the application."}
		s.deny(w, r, f, ev)
		return
	}
	var res access.Result
	if err := s.evaluate(f, now, &res); err != nil {
		s.fail(w, r, ev, err)
		endFlow(ctx, s.opts.Store, f)
		return
	}
	ev.ConditionalAccessStatus = caStatus(res.Outcome)
	ev.AppliedConditionalAccess = appliedPolicies(&res)
	if res.Outcome == access.OutcomeBlock {
		ev.Status = Status{ErrorCode: CodeBlockedByCA, FailureReason: "Access has been blocked by Conditional Access policies."}
		if res.Unmet&^blockControl != 0 {
			ev.Status = Status{ErrorCode: CodeCannotMeetControls, FailureReason: "A required control cannot be satisfied in this sign-in: " + controlNames(res.Unmet)}
		}
		s.deny(w, r, f, ev)
		return
	}
	steps, why := s.stepsFor(&res, f, m)
	if why != nil {
		ev.Status = *why
		s.deny(w, r, f, ev)
		return
	}
	for _, st := range steps {
		if !containsStep(f.Steps, st) {
			f.Steps = append(f.Steps, st)
		}
	}
	next := f.next()
	if next == "" {
		s.finish(w, r, f, &res, ev)
		return
	}
	if err := saveFlow(ctx, s.opts.Store, f); err != nil {
		s.fail(w, r, ev, err)
		return
	}
	// Entra logs the first factor's success as an interrupted sign-in when
	// more is needed.
	ev.Status = Status{ErrorCode: CodeMFARequired, FailureReason: "Strong authentication is required."}
	if next == stepPasswordChange {
		ev.Status = Status{ErrorCode: CodePasswordChange, FailureReason: "The password must be changed."}
	}
	if err := record(ctx, s.opts.Store, requestID(r), ev, resultInterrupted); err != nil {
		s.fail(w, r, ev, err)
		return
	}
	http.Redirect(w, r, stepPath(next), http.StatusSeeOther)
}

// blockControl is the controls a blocked result may list as unmet because
// of the block itself.
const blockControl = access.Control(0)

// stepsFor turns conditional access's unmet controls into the steps this
// sign-in can offer, or says why it cannot.
func (s *Service) stepsFor(res *access.Result, f *flow, m *Methods) ([]step, *Status) {
	if res.Outcome != access.OutcomeInterrupt {
		return nil, nil
	}
	var steps []step
	unmet := res.Unmet
	if unmet&access.ControlPasswordChange != 0 {
		steps = append(steps, stepPasswordChange)
		unmet &^= access.ControlPasswordChange
	}
	if unmet&(access.ControlMFA|access.ControlAuthenticationStrength) != 0 {
		// A TOTP code on top of the password satisfies MFA and any strength
		// that accepts password + software OATH; a strength that needs a
		// phishing-resistant method takes one of the user's passkeys, and
		// cannot be met without one.
		for _, st := range res.Strengths {
			if st.Satisfied(f.Methods | access.MethodSoftwareOath) {
				continue
			}
			if len(m.Passkeys) == 0 || s.webauthn == nil || !st.Satisfied(f.Methods|access.MethodFIDO2) {
				return nil, &Status{ErrorCode: CodeStrengthUnavailable, FailureReason: "The required authentication strength \"" + st.DisplayName + "\" needs a method this sign-in cannot use."}
			}
			f.PasskeyOnly = true
		}
		switch {
		case m.TOTP == nil && (len(m.Passkeys) == 0 || s.webauthn == nil):
			steps = append(steps, stepEnrollMFA)
		default:
			steps = append(steps, stepMFA)
		}
		unmet &^= access.ControlMFA | access.ControlAuthenticationStrength
	}
	if unmet != 0 {
		return nil, &Status{ErrorCode: CodeCannotMeetControls, FailureReason: "A required control cannot be satisfied in this sign-in: " + controlNames(unmet)}
	}
	if len(steps) == 0 && res.Session.SignInFrequency.Reauthenticate {
		// The user proved the first factor just now; only a second factor
		// can be stale.
		steps = append(steps, stepMFA)
	}
	return steps, nil
}

// evaluate runs conditional access for a browser attempt.
func (s *Service) evaluate(f *flow, now time.Time, res *access.Result) error {
	return s.evaluateAs(f, now, access.ClientAppBrowser, res)
}

// evaluateAs runs conditional access for the attempt from a client app type.
func (s *Service) evaluateAs(f *flow, now time.Time, client access.ClientApp, res *access.Result) error {
	snap := s.opts.Live.Current()
	eng, err := snap.Access()
	if err != nil {
		return err
	}
	req := access.Request{Identity: access.IdentityUser, UserID: f.UserID, Applications: []string{f.AppID},
		ClientApp: client, Platform: platform(f.UserAgent),
		Methods: f.Methods, Satisfied: f.Satisfied, Now: now, SignInTime: f.PasswordAt, MFATime: f.MFAAt,
		UserRisk: s.UserRisk(context.Background(), f.UserID), SignInRisk: f.SignInRisk}
	if ip, err := parseAddr(f.IP); err == nil {
		req.IP = ip
		if s.opts.Countries != nil {
			req.Country, _ = s.opts.Countries.Country(ip)
		}
	}
	req.Resolve(access.SnapshotPrincipals{Snapshot: snap.Directory()})
	eng.Evaluate(&req, res)
	return nil
}

// finish ends a successful attempt: the session, its cookie, the log.
func (s *Service) finish(w http.ResponseWriter, r *http.Request, f *flow, res *access.Result, ev *Event) {
	ctx := r.Context()
	now := s.opts.Now()
	sess := &Session{UserID: f.UserID, UPN: f.UPN, AppID: f.AppID, CreatedAt: now, AuthTime: f.PasswordAt, MFATime: f.MFAAt,
		Methods: f.Methods, IP: f.IP, UserAgent: f.UserAgent, LastSeen: now, IdleTimeout: s.opts.SessionIdle, ExpiresAt: now.Add(s.opts.SessionMax)}
	freq := res.Session.SignInFrequency
	if freq.Set && !freq.EveryTime && freq.Interval > 0 {
		sess.SignInFrequency = freq.Interval
		if end := f.PasswordAt.Add(freq.Interval); end.Before(sess.ExpiresAt) {
			sess.ExpiresAt = end
		}
	}
	sess.EveryTime = freq.Set && freq.EveryTime
	secret, err := createSession(ctx, s.opts.Store, sess)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	ev.SessionID = sess.ID
	ev.Status = Status{ErrorCode: CodeSuccess}
	if f.SignInRisk != access.RiskNone && !f.MFAAt.Before(f.Started) && !f.MFAAt.IsZero() {
		// The user proved a second factor in this sign-in: the risk that
		// asked for it is remediated (Entra's self-remediation).
		ev.RiskState, ev.RiskDetail = "remediated", "userPassedMFADrivenByRiskBasedPolicy"
	}
	if Strength(f.Methods) >= StrengthMultifactor {
		ev.AuthenticationRequirement = "multiFactorAuthentication"
	}
	ev.AuthenticationMethodsUsed = sess.AMR()
	if err := record(ctx, s.opts.Store, requestID(r), ev, resultSuccess); err != nil {
		// No record, no sign-in.
		_ = s.opts.Store.DeleteRecord(ctx, kindSession, sess.ID)
		s.fail(w, r, ev, err)
		return
	}
	endFlow(ctx, s.opts.Store, f)
	if f.Satisfied&access.ControlPasswordChange != 0 && !f.MFAAt.IsZero() && s.opts.UserRiskRemediated != nil {
		// A password changed with a second factor proved: the user's risk
		// is remediated, as a risk policy's passwordChange control asks.
		if err := s.opts.UserRiskRemediated(ctx, f.UserID, "userPerformedSecuredPasswordChange"); err != nil {
			s.log.ErrorContext(ctx, "sign-in: remediate user risk", "user", f.UserID, "err", err)
		}
	}
	if f.Replaces != "" {
		_ = s.opts.Store.DeleteRecord(ctx, kindSession, f.Replaces) // the stepped-up session takes its place
	}
	s.familiar.Remember(f.UPN, authn.NetworkKey(mustAddr(f.IP)))
	maxAge := 0 // a browser-session cookie unless policy keeps the browser signed in
	if res.Session.PersistentBrowser == access.BrowserAlways {
		maxAge = int(time.Until(sess.ExpiresAt).Seconds())
	}
	s.setCookie(w, sessionCookie, secret, maxAge)
	s.clearCookie(w, flowCookie)
	http.Redirect(w, r, safeReturn(f.ReturnTo), http.StatusSeeOther)
}

// deny ends an attempt that conditional access (or the user's methods)
// does not let through.
func (s *Service) deny(w http.ResponseWriter, r *http.Request, f *flow, ev *Event) {
	s.logFailure(r.Context(), r, ev)
	endFlow(r.Context(), s.opts.Store, f)
	s.clearCookie(w, flowCookie)
	s.page(w, r, http.StatusForbidden, errorPage{Title: "You cannot access this right now",
		Message:     "Your sign-in was successful but does not meet the criteria to access this resource. " + userMessage(ev.Status.ErrorCode),
		Correlation: ev.CorrelationID, Code: ev.Status.ErrorCode})
}

// userMessage says what a person can do about a failure, without naming
// policies.
func userMessage(code int) string {
	switch code {
	case CodeBlockedByCA:
		return "Access is blocked from where or how you are signing in."
	case CodeCannotMeetControls:
		return "It requires something this device or app cannot provide, such as a compliant device."
	case CodeStrengthUnavailable:
		return "It requires a stronger sign-in method than you can use here."
	case CodeNotAssigned:
		return "Your administrator has not given you access to this application."
	}
	return ""
}

// fail ends an attempt on an internal error: logged with its cause,
// shown without it.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, ev *Event, err error) {
	s.log.ErrorContext(r.Context(), "sign-in failed", "correlation", ev.CorrelationID, "user", ev.UserID, "err", err)
	ev.Status = Status{ErrorCode: -1, FailureReason: "Internal error."}
	if rerr := record(context.WithoutCancel(r.Context()), s.opts.Store, requestID(r), ev, resultFailure); rerr != nil {
		s.log.ErrorContext(r.Context(), "sign-in: record failure", "correlation", ev.CorrelationID, "err", rerr)
	}
	status := http.StatusInternalServerError
	if errors.Is(err, store.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	s.page(w, r, status, errorPage{Title: "Sign-in is not available", Message: "Something went wrong on our side. Try again in a moment.", Correlation: ev.CorrelationID, Retry: "/signin"})
}

func (s *Service) logFailure(ctx context.Context, r *http.Request, ev *Event) {
	if err := record(ctx, s.opts.Store, requestID(r), ev, resultFailure); err != nil {
		s.log.ErrorContext(ctx, "sign-in: record failure", "correlation", ev.CorrelationID, "err", err)
	}
}

// event starts a log event for the attempt's current state.
func (s *Service) event(f *flow, now time.Time) *Event {
	ev := &Event{ID: newCorrelationID(), CreatedDateTime: now, UserID: f.UserID, UserPrincipalName: f.UPN, UserDisplayName: f.DisplayName,
		AppID: f.AppID, IPAddress: f.IP, ClientAppUsed: "Browser", UserAgent: f.UserAgent, CorrelationID: f.CorrelationID, IsInteractive: true,
		AuthenticationRequirement: "singleFactorAuthentication", AuthenticationDetails: append([]AuthenticationStep{}, f.Details...),
		ConditionalAccessStatus: "notApplied", AppliedConditionalAccess: []AppliedPolicy{}, RiskLevelDuringSignIn: "none", RiskState: "none"}
	if ip, err := parseAddr(f.IP); err == nil {
		s.locate(ev, ip)
	}
	f.showRisk(ev)
	return ev
}

// showRisk puts the attempt's sign-in risk in its log event.
func (f *flow) showRisk(ev *Event) {
	if f.SignInRisk != access.RiskNone {
		ev.RiskLevelDuringSignIn, ev.RiskState, ev.RiskEventTypesV2 = f.SignInRisk.String(), "atRisk", f.RiskEvents
	}
}

// assessRisk sets the attempt's sign-in risk once its first factor is
// proved: conditional access sees it in every decision of the flow, and
// the sign-in log shows it.
func (s *Service) assessRisk(ctx context.Context, f *flow, ev *Event) {
	if s.opts.SignInRisk == nil {
		return
	}
	probe := *ev
	probe.UserID, probe.UserPrincipalName, probe.Status = f.UserID, f.UPN, Status{ErrorCode: CodeSuccess}
	a := s.opts.SignInRisk(ctx, &probe)
	f.SignInRisk, f.RiskEvents = a.Level, a.EventTypes
	if a.Level != access.RiskNone {
		s.log.WarnContext(ctx, "sign-in: risky sign-in", "user", f.UPN, "risk", a.Level.String(), "detections", a.EventTypes, "correlationId", f.CorrelationID)
	}
}

// locate fills the event's location from the address.
func (s *Service) locate(ev *Event, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	if s.opts.Locate != nil {
		if l, asn, ok := s.opts.Locate(ip); ok {
			ev.Location, ev.AutonomousSystemNumber = l, asn
		}
	}
	if s.opts.Countries != nil && ev.Location.CountryOrRegion == "" {
		ev.Location.CountryOrRegion, _ = s.opts.Countries.Country(ip)
	}
	locs := s.opts.Live.Current().Directory().Locations()
	for i := range locs {
		if locs[i].ContainsIP(ip) || locs[i].ContainsCountry(ev.Location.CountryOrRegion) {
			ev.Location.NamedLocations = append(ev.Location.NamedLocations, locs[i].ID)
		}
	}
}

// withFlow loads the attempt a step page belongs to, or shows why it
// cannot continue.
func (s *Service) withFlow(w http.ResponseWriter, r *http.Request, want step) (*flow, bool) {
	c, err := r.Cookie(flowCookie)
	if err != nil {
		s.expired(w, r)
		return nil, false
	}
	f, err := loadFlow(r.Context(), s.opts.Store, c.Value)
	if errors.Is(err, errNoFlow) {
		s.expired(w, r)
		return nil, false
	}
	if err != nil {
		s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Sign-in is not available", Message: "Try again in a moment.", Retry: "/signin"})
		return nil, false
	}
	if f.next() != want {
		if next := f.next(); next != "" {
			http.Redirect(w, r, stepPath(next), http.StatusSeeOther)
		} else {
			s.expired(w, r)
		}
		return nil, false
	}
	if r.Method == http.MethodPost {
		if err := s.form(w, r); err != nil || !constantEqual(r.PostFormValue("csrf"), f.CSRF) {
			s.page(w, r, http.StatusBadRequest, errorPage{Title: "Sign-in could not continue", Message: "The page was out of date or did not come from this site. Start again.", Retry: "/signin"})
			return nil, false
		}
	}
	return f, true
}

func (s *Service) expired(w http.ResponseWriter, r *http.Request) {
	s.clearCookie(w, flowCookie)
	s.page(w, r, http.StatusBadRequest, errorPage{Title: "Your sign-in timed out", Message: "Sign-in has to finish within ten minutes. Start again.", Retry: "/signin", Code: CodeFlowExpired})
}

func stepPath(s step) string {
	switch s {
	case stepMFA:
		return "/signin/mfa"
	case stepEnrollMFA:
		return "/signin/enroll"
	case stepPasswordChange:
		return "/signin/password"
	}
	return "/signin"
}

func containsStep(steps []step, s step) bool {
	for _, x := range steps {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Service) getMFA(w http.ResponseWriter, r *http.Request) {
	f, ok := s.withFlow(w, r, stepMFA)
	if !ok {
		return
	}
	p, err := s.mfaPage(r, f)
	if err != nil {
		s.fail(w, r, s.event(f, s.opts.Now()), err)
		return
	}
	p.Recovery = p.TOTP && r.URL.Query().Get("method") == "recovery"
	s.page(w, r, http.StatusOK, p)
}

// mfaPage offers the second factors the user has and the attempt accepts.
func (s *Service) mfaPage(r *http.Request, f *flow) (mfaPage, error) {
	m, err := loadMethods(r.Context(), s.opts.Store, f.UserID)
	if err != nil {
		return mfaPage{}, err
	}
	return mfaPage{CSRF: f.CSRF, Passkey: s.webauthn != nil && len(m.Passkeys) > 0, TOTP: m.TOTP != nil && !f.PasskeyOnly, RPID: s.rpID()}, nil
}

func (s *Service) postMFA(w http.ResponseWriter, r *http.Request) {
	f, ok := s.withFlow(w, r, stepMFA)
	if !ok {
		return
	}
	ctx := r.Context()
	now := s.opts.Now()
	code := strings.TrimSpace(r.PostFormValue("code"))
	recovery := strings.TrimSpace(r.PostFormValue("recovery"))
	if f.PasskeyOnly {
		// The strength asked for takes a passkey: codes do not count.
		code, recovery = "", ""
	}
	method := "OATH verification code"
	var passed bool
	m, err := updateMethods(ctx, s.opts.Store, f.UserID, func(m *Methods) error {
		passed = false
		switch {
		case recovery != "":
			rest, ok := authn.UseRecoveryCode(m.RecoveryCodes, recovery)
			if ok {
				m.RecoveryCodes, passed = rest, true
			}
		case m.TOTP != nil:
			secret, err := s.opts.Sealer.Open(sealPurposeTOTP, f.UserID, m.TOTP.Secret)
			if err != nil {
				return err
			}
			step, ok := authn.VerifyTOTP(string(secret), code, now, m.TOTP.LastStep)
			if ok {
				m.TOTP.LastStep, passed = step, true
			}
		}
		if !passed {
			return errWrongCode // nothing to save
		}
		return nil
	})
	if recovery != "" {
		method = "Recovery code"
	}
	if err != nil && !errors.Is(err, errWrongCode) {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	f.Details = append(f.Details, AuthenticationStep{AuthenticationMethod: method, Succeeded: passed, AuthenticationStepDateTime: now})
	if !passed {
		f.Attempts++
		if f.Attempts >= maxCodeAttempts {
			ev := s.event(f, now)
			ev.Status = Status{ErrorCode: CodeMFAFailed, FailureReason: "Authentication failed during strong authentication request."}
			s.logFailure(ctx, r, ev)
			endFlow(ctx, s.opts.Store, f)
			s.clearCookie(w, flowCookie)
			s.page(w, r, http.StatusUnauthorized, errorPage{Title: "Too many wrong codes", Message: "Start again.", Retry: "/signin", Correlation: f.CorrelationID, Code: CodeMFAFailed})
			return
		}
		if err := saveFlow(ctx, s.opts.Store, f); err != nil {
			s.expired(w, r)
			return
		}
		p, _ := s.mfaPage(r, f)
		p.Recovery, p.Error = recovery != "", "That code didn't work. Check it and try again."
		s.page(w, r, http.StatusUnauthorized, p)
		return
	}
	f.Methods |= access.MethodSoftwareOath
	f.Satisfied |= access.ControlMFA
	f.MFAAt = now
	f.done(stepMFA)
	s.advance(w, r, f, m)
}

var errWrongCode = errors.New("wrong code")

func (s *Service) getEnroll(w http.ResponseWriter, r *http.Request) {
	f, ok := s.withFlow(w, r, stepEnrollMFA)
	if !ok {
		return
	}
	ctx := r.Context()
	var secret, url string
	var qr []byte
	if len(f.Enrollment) == 0 {
		e, err := authn.NewTOTPEnrollment(s.opts.Issuer, f.UPN)
		if err != nil {
			s.fail(w, r, s.event(f, s.opts.Now()), err)
			return
		}
		if f.Enrollment, err = s.opts.Sealer.Seal(sealPurposeEnroll, f.id, []byte(e.Secret)); err != nil {
			s.fail(w, r, s.event(f, s.opts.Now()), err)
			return
		}
		if err := saveFlow(ctx, s.opts.Store, f); err != nil {
			s.expired(w, r)
			return
		}
		secret, url, qr = e.Secret, e.URL, e.QRCode
	} else {
		b, err := s.opts.Sealer.Open(sealPurposeEnroll, f.id, f.Enrollment)
		if err != nil {
			s.fail(w, r, s.event(f, s.opts.Now()), err)
			return
		}
		secret = string(b)
		e, err := authn.TOTPEnrollmentFor(s.opts.Issuer, f.UPN, secret)
		if err != nil {
			s.fail(w, r, s.event(f, s.opts.Now()), err)
			return
		}
		url, qr = e.URL, e.QRCode
	}
	s.page(w, r, http.StatusOK, enrollPage{CSRF: f.CSRF, Secret: groupSecret(secret), URL: url,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(qr)), Account: f.UPN, Issuer: s.opts.Issuer})
}

// sealPurposeEnroll seals a TOTP secret while it is being enrolled.
const sealPurposeEnroll = "totp-enrollment"

func (s *Service) postEnroll(w http.ResponseWriter, r *http.Request) {
	f, ok := s.withFlow(w, r, stepEnrollMFA)
	if !ok {
		return
	}
	ctx := r.Context()
	now := s.opts.Now()
	if len(f.Enrollment) == 0 {
		http.Redirect(w, r, "/signin/enroll", http.StatusSeeOther)
		return
	}
	b, err := s.opts.Sealer.Open(sealPurposeEnroll, f.id, f.Enrollment)
	if err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	step, ok := authn.VerifyTOTP(string(b), strings.TrimSpace(r.PostFormValue("code")), now, 0)
	if !ok {
		f.Attempts++
		if f.Attempts >= maxCodeAttempts {
			ev := s.event(f, now)
			ev.Status = Status{ErrorCode: CodeMFAFailed, FailureReason: "Authenticator registration failed: too many wrong codes."}
			s.logFailure(ctx, r, ev)
			endFlow(ctx, s.opts.Store, f)
			s.clearCookie(w, flowCookie)
			s.page(w, r, http.StatusUnauthorized, errorPage{Title: "Too many wrong codes", Message: "Start again.", Retry: "/signin", Correlation: f.CorrelationID})
			return
		}
		_ = saveFlow(ctx, s.opts.Store, f)
		http.Redirect(w, r, "/signin/enroll?error=code", http.StatusSeeOther)
		return
	}
	sealed, err := s.opts.Sealer.Seal(sealPurposeTOTP, f.UserID, b)
	if err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	codes, hashes, err := authn.NewRecoveryCodes(10)
	if err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	if _, err := updateMethods(ctx, s.opts.Store, f.UserID, func(m *Methods) error {
		m.TOTP = &TOTPMethod{Secret: sealed, LastStep: step, EnrolledAt: now}
		m.RecoveryCodes = hashes
		return nil
	}); err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	f.Enrollment = nil
	f.Details = append(f.Details, AuthenticationStep{AuthenticationMethod: "OATH verification code", Succeeded: true, AuthenticationStepDateTime: now, AuthenticationStepResult: "Authenticator app registered"})
	f.Methods |= access.MethodSoftwareOath
	f.Satisfied |= access.ControlMFA
	f.MFAAt = now
	f.done(stepEnrollMFA)
	if err := saveFlow(ctx, s.opts.Store, f); err != nil {
		s.expired(w, r)
		return
	}
	// The codes are shown once, on this response; the page's form
	// continues the sign-in.
	s.page(w, r, http.StatusOK, recoveryPage{CSRF: f.CSRF, Codes: codes})
}

// postContinue resumes an attempt after a page that only informs (the
// recovery codes).
func (s *Service) postContinue(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(flowCookie)
	if err != nil {
		s.expired(w, r)
		return
	}
	f, err := loadFlow(r.Context(), s.opts.Store, c.Value)
	if err != nil {
		s.expired(w, r)
		return
	}
	if err := s.form(w, r); err != nil || !constantEqual(r.PostFormValue("csrf"), f.CSRF) {
		s.page(w, r, http.StatusBadRequest, errorPage{Title: "Sign-in could not continue", Message: "The page was out of date or did not come from this site. Start again.", Retry: "/signin"})
		return
	}
	m, err := loadMethods(r.Context(), s.opts.Store, f.UserID)
	if err != nil {
		s.fail(w, r, s.event(f, s.opts.Now()), err)
		return
	}
	s.advance(w, r, f, m)
}

func groupSecret(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}
