package signin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/store"
)

// Passkeys (WebAuthn, with go-webauthn): discoverable credentials that
// sign a user in without a user name or password, and serve as the second
// factor after a password. A passkey with user verification is
// multifactor and phishing-resistant (the amr "hwk", "user"; the strength
// phishingResistant). The browser side is /signin/static/passkey.js; the
// ceremonies' challenges are records ("webauthnChallenge") bound to a
// cookie and used once.

// Passkey is a registered WebAuthn credential of a user.
type Passkey struct {
	Credential webauthn.Credential `json:"credential"`
	Name       string              `json:"name"`
	CreatedAt  time.Time           `json:"createdAt"`
	LastUsedAt time.Time           `json:"lastUsedAt,omitzero"`
}

const (
	kindChallenge   = "webauthnChallenge"
	challengeCookie = "__Host-verity-webauthn"
	challengeTTL    = 5 * time.Minute
	// maxCredentialBody bounds a ceremony's response from the browser.
	maxCredentialBody = 64 << 10
)

// challenge is one WebAuthn ceremony in progress.
type challenge struct {
	Purpose string               `json:"purpose"` // "login", "mfa", "register"
	UserID  string               `json:"userId,omitempty"`
	Session webauthn.SessionData `json:"session"`
}

// newWebAuthn configures the relying party from the external URL: its
// host is the RP ID. WebAuthn does not accept an IP address as RP ID, so
// for a loopback address (verity up) passkeys work at localhost, and for
// any other address they are off.
func newWebAuthn(externalURL, name string) (*webauthn.WebAuthn, error) {
	if externalURL == "" {
		return nil, nil
	}
	u, err := url.Parse(externalURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkeys: external URL %q: not an absolute URL", externalURL)
	}
	host, origin := u.Hostname(), u.Scheme+"://"+u.Host
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.IsLoopback() {
			return nil, nil
		}
		host = "localhost"
		origin = u.Scheme + "://" + net.JoinHostPort("localhost", u.Port())
		if u.Port() == "" {
			origin = u.Scheme + "://localhost"
		}
	}
	return webauthn.New(&webauthn.Config{RPID: host, RPDisplayName: name, RPOrigins: []string{origin}})
}

// passkeyUser is a user as go-webauthn sees it. The user handle is the
// user's object id: opaque, stable, and what the discoverable sign-in
// needs to find the user.
type passkeyUser struct {
	id, name, display string
	creds             []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *passkeyUser) WebAuthnName() string                       { return u.name }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.display }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Service) passkeyUser(ctx context.Context, userID string) (*passkeyUser, *Methods, error) {
	u, ok := s.opts.Live.Current().Directory().User(userID)
	if !ok {
		return nil, nil, errors.New("no such user")
	}
	m, err := loadMethods(ctx, s.opts.Store, userID)
	if err != nil {
		return nil, nil, err
	}
	pu := &passkeyUser{id: u.ID, name: u.UserPrincipalName, display: u.DisplayName}
	for _, p := range m.Passkeys {
		pu.creds = append(pu.creds, p.Credential)
	}
	return pu, m, nil
}

// jsonError answers a passkey call.
func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func jsonOK(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// sameOrigin checks a passkey call comes from this site: fetch sends
// Origin on every POST.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "https://"+r.Host || o == "http://"+r.Host
}

func (s *Service) startCeremony(w http.ResponseWriter, r *http.Request, c *challenge, options any) {
	body, err := json.Marshal(c)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "internal error")
		return
	}
	secret, id := newSecret()
	if _, err := s.opts.Store.CreateRecord(r.Context(), store.Record{Kind: kindChallenge, ID: id, Subject: c.UserID, Body: body,
		ExpiresAt: s.opts.Now().Add(challengeTTL)}); err != nil {
		jsonError(w, http.StatusServiceUnavailable, "try again in a moment")
		return
	}
	s.setCookie(w, challengeCookie, secret, int(challengeTTL.Seconds()))
	jsonOK(w, options)
}

// endCeremony takes the request's ceremony (once: it is deleted) and its
// response body.
func (s *Service) endCeremony(w http.ResponseWriter, r *http.Request, purpose string) (*challenge, []byte, bool) {
	ck, err := r.Cookie(challengeCookie)
	if err != nil || !validSecret(ck.Value) {
		jsonError(w, http.StatusBadRequest, "no passkey request in progress; try again")
		return nil, nil, false
	}
	s.clearCookie(w, challengeCookie)
	rec, err := s.opts.Store.GetRecord(r.Context(), kindChallenge, digest(ck.Value))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "the passkey request expired; try again")
		return nil, nil, false
	}
	if err := s.opts.Store.DeleteRecord(r.Context(), kindChallenge, rec.ID); err != nil {
		jsonError(w, http.StatusBadRequest, "the passkey request was already used; try again")
		return nil, nil, false
	}
	var c challenge
	if json.Unmarshal(rec.Body, &c) != nil || c.Purpose != purpose {
		jsonError(w, http.StatusBadRequest, "the passkey request does not match; try again")
		return nil, nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCredentialBody))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "the passkey response is too large")
		return nil, nil, false
	}
	return &c, body, true
}

// finishRequest rebuilds a request carrying body for go-webauthn's parsers.
func finishRequest(r *http.Request, body []byte) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return r2
}

// postPasskeyLoginBegin starts a sign-in with a discoverable passkey: no
// user name, no password.
func (s *Service) postPasskeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	if s.webauthn == nil || !sameOrigin(r) || !s.csrfCookieMatches(r, r.Header.Get("X-CSRF-Token")) {
		jsonError(w, http.StatusBadRequest, "passkey sign-in is not available here")
		return
	}
	options, sess, err := s.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.startCeremony(w, r, &challenge{Purpose: "login", Session: *sess}, options)
}

func (s *Service) postPasskeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	if s.webauthn == nil || !sameOrigin(r) || !s.csrfCookieMatches(r, r.Header.Get("X-CSRF-Token")) {
		jsonError(w, http.StatusBadRequest, "passkey sign-in is not available here")
		return
	}
	c, body, ok := s.endCeremony(w, r, "login")
	if !ok {
		return
	}
	ctx := r.Context()
	now := s.opts.Now()
	ip := clientIP(r)
	appID := r.URL.Query().Get("app")
	if appID == "" {
		appID = s.opts.AppID
	}
	ev := &Event{ID: newCorrelationID(), CreatedDateTime: now, AppID: appID, IPAddress: ip.String(), ClientAppUsed: "Browser",
		UserAgent: r.UserAgent(), CorrelationID: newCorrelationID(), IsInteractive: true, AuthenticationRequirement: "multiFactorAuthentication",
		ConditionalAccessStatus: "notApplied", AppliedConditionalAccess: []AppliedPolicy{}, RiskLevelDuringSignIn: "none", RiskState: "none"}
	s.locate(ev, ip)
	var found *passkeyUser
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		pu, _, err := s.passkeyUser(ctx, string(userHandle))
		if err != nil {
			return nil, err
		}
		found = pu
		return pu, nil
	}
	cred, err := s.webauthn.FinishDiscoverableLogin(handler, c.Session, finishRequest(r, body))
	step := AuthenticationStep{AuthenticationMethod: "Passkey (device-bound or synced)", Succeeded: err == nil, AuthenticationStepDateTime: now}
	ev.AuthenticationDetails = []AuthenticationStep{step}
	if found != nil {
		ev.UserID, ev.UserPrincipalName, ev.UserDisplayName = found.id, found.name, found.display
	}
	if err != nil {
		ev.Status = Status{ErrorCode: CodeMFAFailed, FailureReason: "The passkey could not be verified."}
		s.logFailure(ctx, r, ev)
		jsonError(w, http.StatusUnauthorized, "That passkey could not be verified for this site.")
		return
	}
	u, _ := s.opts.Live.Current().Directory().User(found.id)
	if u == nil || !u.Enabled() {
		ev.Status = Status{ErrorCode: CodeDisabled, FailureReason: "The user account is disabled."}
		s.logFailure(ctx, r, ev)
		jsonError(w, http.StatusForbidden, "Your account is disabled. Contact your administrator.")
		return
	}
	if err := s.recordPasskeyUse(ctx, found.id, cred, now); err != nil {
		jsonError(w, http.StatusUnauthorized, "That passkey could not be verified for this site.")
		return
	}
	returnTo := safeReturn(r.URL.Query().Get("return_to"))
	f := &flow{UserID: u.ID, UPN: u.UserPrincipalName, DisplayName: u.DisplayName, AppID: appID, ReturnTo: returnTo,
		IP: ip.String(), UserAgent: r.UserAgent(), CorrelationID: ev.CorrelationID, CSRF: newCorrelationID(), Started: now,
		PasswordAt: now, MFAAt: now, Methods: access.MethodFIDO2, Satisfied: access.ControlMFA, Details: ev.AuthenticationDetails}
	s.assessRisk(ctx, f, ev)
	s.continueJSON(w, r, f)
}

// continueJSON starts an attempt that a passkey call identified and
// answers with where the browser goes next.
func (s *Service) continueJSON(w http.ResponseWriter, r *http.Request, f *flow) {
	secret, err := createFlow(r.Context(), s.opts.Store, f)
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, "try again in a moment")
		return
	}
	s.setCookie(w, flowCookie, secret, 0)
	s.advanceJSON(w, r, f)
}

// advanceJSON runs advance and turns its redirect or page into JSON the
// script follows.
func (s *Service) advanceJSON(w http.ResponseWriter, r *http.Request, f *flow) {
	m, err := loadMethods(r.Context(), s.opts.Store, f.UserID)
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, "try again in a moment")
		return
	}
	rec := &capture{header: w.Header()}
	s.advance(rec, r, f, m)
	if loc := rec.header.Get("Location"); loc != "" && rec.status/100 == 3 {
		rec.header.Del("Location")
		rec.header.Del("Content-Type")
		jsonOK(w, map[string]string{"redirect": loc})
		return
	}
	// A page (blocked, an error): the script shows it as the document.
	jsonOK(w, map[string]string{"page": rec.body.String()})
}

// capture records what a handler writes.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) WriteHeader(status int)      { c.status = status }
func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }

// recordPasskeyUse saves the credential's new sign count and flags, and
// refuses a clone: a counter that did not move forward.
func (s *Service) recordPasskeyUse(ctx context.Context, userID string, cred *webauthn.Credential, now time.Time) error {
	if cred.Authenticator.CloneWarning {
		return errors.New("passkey sign counter went backwards: possible clone")
	}
	_, err := updateMethods(ctx, s.opts.Store, userID, func(m *Methods) error {
		for i := range m.Passkeys {
			if bytes.Equal(m.Passkeys[i].Credential.ID, cred.ID) {
				m.Passkeys[i].Credential.Authenticator = cred.Authenticator
				m.Passkeys[i].Credential.Flags = cred.Flags
				m.Passkeys[i].LastUsedAt = now
				return nil
			}
		}
		return errors.New("passkey not registered")
	})
	return err
}

// postPasskeyMFABegin starts a passkey as the second factor of an attempt.
func (s *Service) postPasskeyMFABegin(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowJSON(w, r)
	if !ok {
		return
	}
	pu, _, err := s.passkeyUser(r.Context(), f.UserID)
	if err != nil || len(pu.creds) == 0 {
		jsonError(w, http.StatusBadRequest, "You have no passkey registered.")
		return
	}
	options, sess, err := s.webauthn.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.startCeremony(w, r, &challenge{Purpose: "mfa", UserID: f.UserID, Session: *sess}, options)
}

func (s *Service) postPasskeyMFAFinish(w http.ResponseWriter, r *http.Request) {
	f, ok := s.flowJSON(w, r)
	if !ok {
		return
	}
	c, body, ok := s.endCeremony(w, r, "mfa")
	if !ok {
		return
	}
	ctx := r.Context()
	now := s.opts.Now()
	pu, _, err := s.passkeyUser(ctx, f.UserID)
	if err != nil || c.UserID != f.UserID {
		jsonError(w, http.StatusBadRequest, "the passkey request does not match; try again")
		return
	}
	cred, err := s.webauthn.FinishLogin(pu, c.Session, finishRequest(r, body))
	f.Details = append(f.Details, AuthenticationStep{AuthenticationMethod: "Passkey (device-bound or synced)", Succeeded: err == nil, AuthenticationStepDateTime: now})
	if err == nil {
		err = s.recordPasskeyUse(ctx, f.UserID, cred, now)
	}
	if err != nil {
		f.Attempts++
		_ = saveFlow(ctx, s.opts.Store, f)
		jsonError(w, http.StatusUnauthorized, "That passkey could not be verified for this site.")
		return
	}
	f.Methods |= access.MethodFIDO2
	f.Satisfied |= access.ControlMFA
	f.MFAAt = now
	f.done(stepMFA)
	s.advanceJSON(w, r, f)
}

// flowJSON loads the attempt a passkey call belongs to: its cookie, its
// CSRF token in X-CSRF-Token, this origin, and a second factor to do.
func (s *Service) flowJSON(w http.ResponseWriter, r *http.Request) (*flow, bool) {
	if s.webauthn == nil || !sameOrigin(r) {
		jsonError(w, http.StatusBadRequest, "passkeys are not available here")
		return nil, false
	}
	ck, err := r.Cookie(flowCookie)
	if err != nil {
		jsonError(w, http.StatusBadRequest, "Your sign-in timed out. Start again.")
		return nil, false
	}
	f, err := loadFlow(r.Context(), s.opts.Store, ck.Value)
	if err != nil || f.next() != stepMFA || !constantEqual(r.Header.Get("X-CSRF-Token"), f.CSRF) {
		jsonError(w, http.StatusBadRequest, "Your sign-in timed out. Start again.")
		return nil, false
	}
	return f, true
}

// postPasskeyRegisterBegin registers a passkey for the signed-in user. As
// with any change of authentication methods, the session must have
// proved a second factor (or a passkey) in the last hour.
func (s *Service) postPasskeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.registrationSession(w, r)
	if !ok {
		return
	}
	pu, _, err := s.passkeyUser(r.Context(), sess.UserID)
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, "try again in a moment")
		return
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range pu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	options, ws, err := s.webauthn.BeginRegistration(pu,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationRequired}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.startCeremony(w, r, &challenge{Purpose: "register", UserID: sess.UserID, Session: *ws}, options)
}

func (s *Service) postPasskeyRegisterFinish(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.registrationSession(w, r)
	if !ok {
		return
	}
	c, body, ok := s.endCeremony(w, r, "register")
	if !ok {
		return
	}
	ctx := r.Context()
	pu, _, err := s.passkeyUser(ctx, sess.UserID)
	if err != nil || c.UserID != sess.UserID {
		jsonError(w, http.StatusBadRequest, "the passkey request does not match; try again")
		return
	}
	cred, err := s.webauthn.FinishRegistration(pu, c.Session, finishRequest(r, body))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "The passkey could not be registered.")
		return
	}
	now := s.opts.Now()
	if _, err := updateMethods(ctx, s.opts.Store, sess.UserID, func(m *Methods) error {
		if len(m.Passkeys) >= maxPasskeys {
			return errTooManyPasskeys
		}
		m.Passkeys = append(m.Passkeys, Passkey{Credential: *cred, Name: "Passkey registered " + now.UTC().Format("2006-01-02"), CreatedAt: now})
		return nil
	}); err != nil {
		if errors.Is(err, errTooManyPasskeys) {
			jsonError(w, http.StatusConflict, "You already have the most passkeys allowed; remove one first.")
			return
		}
		jsonError(w, http.StatusServiceUnavailable, "try again in a moment")
		return
	}
	jsonOK(w, map[string]string{"redirect": "/signin/session?registered=passkey"})
}

const maxPasskeys = 20

var errTooManyPasskeys = errors.New("too many passkeys")

// registrationSession is the session that may add a passkey.
func (s *Service) registrationSession(w http.ResponseWriter, r *http.Request) (*Session, bool) {
	if s.webauthn == nil || !sameOrigin(r) || !s.csrfCookieMatches(r, r.Header.Get("X-CSRF-Token")) {
		jsonError(w, http.StatusBadRequest, "passkeys are not available here")
		return nil, false
	}
	sess, err := s.Current(r)
	if err != nil || sess == nil {
		jsonError(w, http.StatusUnauthorized, "Sign in first.")
		return nil, false
	}
	if Strength(sess.Methods) < StrengthMultifactor || s.opts.Now().Sub(sess.MFATime) > time.Hour {
		jsonError(w, http.StatusForbidden, "To add a passkey, sign in again with your second factor first.")
		return nil, false
	}
	return sess, true
}
