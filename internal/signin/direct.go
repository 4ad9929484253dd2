package signin

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
)

// Direct is a sign-in without pages: the API's POST /api/v1/login, which
// `verity login` uses. It goes through the same lockout, conditional
// access and sign-in log as the pages; what it cannot do is show a step,
// so a second factor is a TOTP code sent with the password, and anything
// else conditional access asks for is a refusal that says what to do.
type Direct struct {
	UPN, Password string
	// OTP is a code from the user's authenticator app ("" when none).
	OTP       string
	AppID     string
	ClientApp access.ClientApp
	IP        netip.Addr
	UserAgent string
	RequestID string
}

// DirectResult is the outcome of a direct sign-in. Code is the sign-in
// log's error code (CodeSuccess when UserID is signed in).
type DirectResult struct {
	UserID string
	// Account is the id of the user the name belongs to, whether or not
	// the sign-in succeeded ("" for an unknown name), for the audit record.
	Account     string
	Code        int
	Reason      string
	LockedUntil time.Time
	Correlation string
	// Methods are the methods the sign-in used.
	Methods access.AuthMethod
}

// SignInDirect signs a user in with a password (and a TOTP code when
// conditional access asks for a second factor). The error is for
// failures of Verity itself; a refused sign-in is a result.
func (s *Service) SignInDirect(ctx context.Context, d Direct) (DirectResult, error) {
	now := s.opts.Now()
	upn := strings.ToLower(strings.TrimSpace(d.UPN))
	appID := d.AppID
	if appID == "" {
		appID = s.opts.AppID
	}
	ev := &Event{ID: newCorrelationID(), CreatedDateTime: now, UserPrincipalName: upn, AppID: appID, IPAddress: d.IP.String(),
		ClientAppUsed: clientAppName(d.ClientApp), UserAgent: d.UserAgent, CorrelationID: newCorrelationID(), IsInteractive: true,
		AuthenticationRequirement: "singleFactorAuthentication", AuthenticationDetails: []AuthenticationStep{},
		ConditionalAccessStatus: "notApplied", AppliedConditionalAccess: []AppliedPolicy{}, RiskLevelDuringSignIn: "none", RiskState: "none"}
	s.locate(ev, d.IP)
	res := DirectResult{Correlation: ev.CorrelationID}
	refuse := func(code int, reason, result string) (DirectResult, error) {
		ev.Status = Status{ErrorCode: code, FailureReason: reason}
		res.Code, res.Reason = code, reason
		if err := record(ctx, s.opts.Store, d.RequestID, ev, result); err != nil {
			return DirectResult{}, err
		}
		return res, nil
	}
	if upn == "" || d.Password == "" || len(upn) > 256 || len(d.Password) > authn.MaxPasswordLength {
		return refuse(CodeInvalidCredentials, "Invalid username or password.", resultFailure)
	}
	u, code, until, err := s.passwordCheck(ctx, upn, d.Password, d.IP, ev)
	if err != nil {
		return DirectResult{}, err
	}
	if u != nil {
		res.Account = u.ID
	}
	if code != CodeSuccess {
		res.LockedUntil = until
		return refuse(code, ev.Status.FailureReason, resultFailure)
	}
	m, err := loadMethods(ctx, s.opts.Store, u.ID)
	if err != nil {
		return DirectResult{}, err
	}
	if m.MustChangePassword {
		return refuse(CodePasswordChange, "The password must be changed: sign in once in a browser to set a new one.", resultInterrupted)
	}
	f := &flow{UserID: u.ID, UPN: upn, AppID: appID, IP: d.IP.String(), UserAgent: d.UserAgent, Started: now, PasswordAt: now,
		Methods: access.MethodPassword}
	s.assessRisk(ctx, f, ev)
	f.showRisk(ev)
	// A code sent with the password counts whether or not a policy asks
	// for it: the session is as strong as what was proved.
	if d.OTP != "" {
		passed := false
		_, err := updateMethods(ctx, s.opts.Store, u.ID, func(m *Methods) error {
			passed = false
			if m.TOTP == nil {
				return errWrongCode
			}
			secret, err := s.opts.Sealer.Open(sealPurposeTOTP, u.ID, m.TOTP.Secret)
			if err != nil {
				return err
			}
			step, ok := authn.VerifyTOTP(string(secret), strings.TrimSpace(d.OTP), now, m.TOTP.LastStep)
			if !ok {
				return errWrongCode
			}
			m.TOTP.LastStep, passed = step, true
			return nil
		})
		if err != nil && !errors.Is(err, errWrongCode) {
			return DirectResult{}, err
		}
		ev.AuthenticationDetails = append(ev.AuthenticationDetails, AuthenticationStep{AuthenticationMethod: "OATH verification code", Succeeded: passed, AuthenticationStepDateTime: now})
		if !passed {
			return refuse(CodeMFAFailed, "The authenticator code is wrong or was already used.", resultFailure)
		}
		f.Methods |= access.MethodSoftwareOath
		f.Satisfied |= access.ControlMFA
		f.MFAAt = now
	}
	var car access.Result
	if err := s.evaluateAs(f, now, d.ClientApp, &car); err != nil {
		return DirectResult{}, err
	}
	ev.ConditionalAccessStatus = caStatus(car.Outcome)
	ev.AppliedConditionalAccess = appliedPolicies(&car)
	switch car.Outcome {
	case access.OutcomeBlock:
		return refuse(CodeBlockedByCA, "Access has been blocked by Conditional Access policies.", resultFailure)
	case access.OutcomeInterrupt:
		steps, why := s.stepsFor(&car, f, m)
		if why != nil {
			return refuse(why.ErrorCode, why.FailureReason, resultFailure)
		}
		for _, st := range steps {
			switch st {
			case stepMFA:
				if m.TOTP == nil || f.PasskeyOnly {
					return refuse(CodeStrengthUnavailable, "This sign-in needs a passkey: sign in in a browser.", resultFailure)
				}
				return refuse(CodeMFARequired, "Strong authentication is required: send a code from your authenticator app.", resultInterrupted)
			case stepEnrollMFA:
				return refuse(CodeMFARequired, "Strong authentication is required and no authenticator app is registered: sign in once in a browser to set one up.", resultInterrupted)
			case stepPasswordChange:
				return refuse(CodePasswordChange, "The password must be changed: sign in once in a browser to set a new one.", resultInterrupted)
			}
		}
	}
	ev.Status = Status{ErrorCode: CodeSuccess}
	if Strength(f.Methods) >= StrengthMultifactor {
		ev.AuthenticationRequirement = "multiFactorAuthentication"
	}
	if f.SignInRisk != access.RiskNone && !f.MFAAt.IsZero() {
		ev.RiskState, ev.RiskDetail = "remediated", "userPassedMFADrivenByRiskBasedPolicy"
	}
	ev.AuthenticationMethodsUsed = (&Session{Methods: f.Methods}).AMR()
	if err := record(ctx, s.opts.Store, d.RequestID, ev, resultSuccess); err != nil {
		return DirectResult{}, err
	}
	s.familiar.Remember(upn, authn.NetworkKey(d.IP))
	res.UserID, res.Code, res.Methods = u.ID, CodeSuccess, f.Methods
	return res, nil
}

func clientAppName(c access.ClientApp) string {
	switch c {
	case access.ClientAppBrowser:
		return "Browser"
	case access.ClientAppMobileAndDesktop:
		return "Mobile Apps and Desktop clients"
	}
	return "Other clients"
}
