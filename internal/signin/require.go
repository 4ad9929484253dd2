package signin

import (
	"net/http"
	"net/url"
	"time"

	"github.com/verityhq/verity/internal/access"
)

// Requirements are what an application asks of a sign-in beyond
// conditional access: OIDC's prompt=login and max_age, and a minimum
// strength from acr_values.
type Requirements struct {
	// Fresh asks for the user to sign in again whatever the session.
	Fresh bool
	// MaxAge is the longest time since the user last entered the password
	// that the application accepts (0: any).
	MaxAge time.Duration
	// Strength is the weakest sign-in the application accepts.
	Strength StrengthLevel
	// LoginHint pre-fills the user name when a sign-in is needed.
	LoginHint string
}

// Require is how an application served by Verity (the OIDC provider, the
// proxy) gets a user: it returns the request's session when the session
// satisfies conditional access for appID and req, evaluated now. Otherwise
// it answers the request itself — a redirect to the sign-in, to the step
// the session lacks (a second factor: step-up), or a page saying access is
// blocked — and returns nil; the browser comes back to returnTo (a path on
// this server) when it is done. Every decision for the application is in
// the sign-in log (not interactive when the session was enough).
func (s *Service) Require(w http.ResponseWriter, r *http.Request, appID, returnTo string, req Requirements) *Session {
	ctx := r.Context()
	now := s.opts.Now()
	sess, err := s.Current(r)
	if err != nil {
		s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Sign-in is not available", Message: "Try again in a moment."})
		return nil
	}
	signIn := func(fresh bool) *Session {
		u := SignInURL(returnTo, appID)
		if req.LoginHint != "" {
			u += "&login_hint=" + url.QueryEscape(req.LoginHint)
		}
		if fresh {
			// An external identity provider must sign the user in again
			// too, not answer from its own session.
			u += "&prompt=login"
		}
		http.Redirect(w, r, u, http.StatusSeeOther)
		return nil
	}
	if sess == nil {
		return signIn(false)
	}
	if req.Fresh || (req.MaxAge > 0 && now.Sub(sess.AuthTime) > req.MaxAge) {
		return signIn(true)
	}
	f := &flow{UserID: sess.UserID, UPN: sess.UPN, AppID: appID, ReturnTo: returnTo, IP: clientIP(r).String(), UserAgent: r.UserAgent(),
		CorrelationID: newCorrelationID(), CSRF: newCorrelationID(), Started: now, PasswordAt: sess.AuthTime, MFAAt: sess.MFATime,
		Methods: sess.Methods, Replaces: sess.ID, Details: []AuthenticationStep{}}
	if sess.Methods&(access.MethodSoftwareOath|access.MethodHardwareOath|access.MethodFIDO2) != 0 {
		f.Satisfied |= access.ControlMFA
	}
	if u, ok := s.opts.Live.Current().Directory().User(sess.UserID); ok {
		f.DisplayName = u.DisplayName
	}
	ev := s.event(f, now)
	ev.IsInteractive = false
	if ok, err := s.Assigned(sess.UserID, appID); err != nil {
		s.fail(w, r, ev, err)
		return nil
	} else if !ok {
		ev.Status = Status{ErrorCode: CodeNotAssigned, FailureReason: "The signed in user is not assigned to the application."}
		s.logFailure(ctx, r, ev)
		s.page(w, r, http.StatusForbidden, errorPage{Title: "You cannot access this application",
			Message: userMessage(CodeNotAssigned), Correlation: ev.CorrelationID, Code: CodeNotAssigned})
		return nil
	}
	var res access.Result
	if err := s.evaluate(f, now, &res); err != nil {
		s.fail(w, r, ev, err)
		return nil
	}
	ev.ConditionalAccessStatus = caStatus(res.Outcome)
	ev.AppliedConditionalAccess = appliedPolicies(&res)
	if res.Outcome == access.OutcomeBlock {
		ev.Status = Status{ErrorCode: CodeBlockedByCA, FailureReason: "Access has been blocked by Conditional Access policies."}
		s.logFailure(ctx, r, ev)
		s.page(w, r, http.StatusForbidden, errorPage{Title: "You cannot access this right now",
			Message: "Your sign-in was successful but does not meet the criteria to access this resource. " + userMessage(CodeBlockedByCA), Correlation: ev.CorrelationID, Code: CodeBlockedByCA})
		return nil
	}
	if res.Session.SignInFrequency.Reauthenticate && !res.Session.SignInFrequency.Secondary {
		return signIn(true)
	}
	m, err := loadMethods(ctx, s.opts.Store, sess.UserID)
	if err != nil {
		s.fail(w, r, ev, err)
		return nil
	}
	steps, why := s.stepsFor(&res, f, m)
	if why != nil {
		ev.Status = *why
		s.logFailure(ctx, r, ev)
		s.page(w, r, http.StatusForbidden, errorPage{Title: "You cannot access this right now",
			Message: "Your sign-in was successful but does not meet the criteria to access this resource. " + userMessage(why.ErrorCode), Correlation: ev.CorrelationID, Code: why.ErrorCode})
		return nil
	}
	if req.Strength > Strength(sess.Methods) {
		if req.Strength >= StrengthPhishingResistant {
			ev.Status = Status{ErrorCode: CodeStrengthUnavailable, FailureReason: "The application asks for a phishing-resistant sign-in."}
			s.logFailure(ctx, r, ev)
			s.page(w, r, http.StatusForbidden, errorPage{Title: "You cannot access this right now",
				Message: userMessage(CodeStrengthUnavailable), Correlation: ev.CorrelationID, Code: CodeStrengthUnavailable})
			return nil
		}
		if m.TOTP == nil {
			steps = append(steps, stepEnrollMFA)
		} else {
			steps = append(steps, stepMFA)
		}
	}
	if res.Session.SignInFrequency.Reauthenticate && len(steps) == 0 {
		steps = append(steps, stepMFA) // a stale second factor: prove it again
	}
	if len(steps) == 0 {
		ev.Status = Status{ErrorCode: CodeSuccess}
		ev.SessionID = sess.ID
		if Strength(sess.Methods) >= StrengthMultifactor {
			ev.AuthenticationRequirement = "multiFactorAuthentication"
		}
		ev.AuthenticationMethodsUsed = sess.AMR()
		if err := record(ctx, s.opts.Store, requestID(r), ev, resultSuccess); err != nil {
			s.fail(w, r, ev, err)
			return nil
		}
		return sess
	}
	// Step up: an attempt that starts from the session, with the password
	// already proved at its time.
	for _, st := range steps {
		if !containsStep(f.Steps, st) {
			f.Steps = append(f.Steps, st)
		}
	}
	secret, err := createFlow(ctx, s.opts.Store, f)
	if err != nil {
		s.fail(w, r, ev, err)
		return nil
	}
	s.setCookie(w, flowCookie, secret, 0)
	ev.Status = Status{ErrorCode: CodeMFARequired, FailureReason: "Strong authentication is required."}
	if err := record(ctx, s.opts.Store, requestID(r), ev, resultInterrupted); err != nil {
		s.fail(w, r, ev, err)
		return nil
	}
	http.Redirect(w, r, stepPath(f.next()), http.StatusSeeOther)
	return nil
}
