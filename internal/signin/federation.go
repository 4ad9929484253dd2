package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// Federation: signing in through an external OpenID Connect identity
// provider (a directory.IdentityProvider). The sign-in page offers a
// button per provider, and sends a user name whose domain a provider's
// domainHints list straight to it. /signin/federated/{id}/start sends the
// browser to the provider's authorization endpoint (from discovery) with
// the authorization code flow, PKCE S256, a state and a nonce, all kept in
// a single-use "federatedSignIn" record bound to the __Host-verity-
// federation cookie. /signin/federated/callback spends that record,
// redeems the code, verifies the ID token with go-oidc (issuer, audience,
// expiry, signature against the provider's JWKS) and the nonce, maps the
// claims to a user (federatedusers.go: a link record, else just-in-time
// provisioning, else a refusal), and then starts an ordinary attempt
// (flow) with the federated method bits and hands it to advance, so
// conditional access decides and can still ask for Verity's own second
// factor. Every callback is in the sign-in log, with the provider named in
// authenticationDetails.

const (
	kindFederatedSignIn = "federatedSignIn"
	federationCookie    = "__Host-verity-federation"
	// federationCallback is the redirect URI to register at providers:
	// the external URL followed by this path.
	federationCallback = "/signin/federated/callback"
	// sealPurposeVerifier seals a PKCE code verifier in its record.
	sealPurposeVerifier = "federation-pkce-verifier"
	// discoveryTTL is how long a provider's discovery document is reused;
	// its keys are fetched again at once when a token names a new one.
	discoveryTTL = time.Hour
	// federatedMethod names a federated step in authenticationDetails.
	federatedMethod = "Federated identity provider"
	maxProviders    = 50
)

// Sign-in log codes of federated sign-ins (Entra's where it has one). An
// expired, replayed or forged callback (no record, wrong state) is
// CodeFlowExpired.
const (
	// CodeIdentityProviderError: the provider answered with an error,
	// could not be reached, or refused the code.
	CodeIdentityProviderError = 50000
	// CodeFederatedTokenInvalid: the ID token failed verification (issuer,
	// audience, expiry, signature, nonce) or lacks the account's id.
	CodeFederatedTokenInvalid = 50013
	// CodeFederatedUserUnknown: no user is linked to the account and none
	// could be provisioned.
	CodeFederatedUserUnknown = 90072
)

// federatedStart is a sign-in sent to a provider, waiting for its answer:
// the body of a federatedSignIn record, whose id is the digest of the
// federation cookie.
type federatedStart struct {
	id string // the record id, to which Verifier is sealed

	IdentityProviderID string    `json:"identityProviderId"`
	Issuer             string    `json:"issuer"`
	State              string    `json:"state"`
	Nonce              string    `json:"nonce"`
	Verifier           []byte    `json:"verifier"` // the PKCE code verifier, sealed to this record
	RedirectURI        string    `json:"redirectUri"`
	ReturnTo           string    `json:"returnTo"`
	AppID              string    `json:"appId"`
	CorrelationID      string    `json:"correlationId"`
	Started            time.Time `json:"started"`
	// Fresh says the application asked for a fresh sign-in: the provider is
	// asked for one (prompt=login, max_age=0) and its ID token must say it
	// authenticated the user after the request began (auth_time).
	Fresh bool `json:"fresh,omitempty"`
}

// federation holds what federated sign-in keeps between requests: the
// HTTP client for providers and their discovery documents (with go-oidc's
// key sets, which cache the JWKS).
type federation struct {
	client *http.Client
	mu     sync.Mutex
	cache  map[string]*discovered // by identity provider id
}

// discovered is a provider's discovery document as go-oidc read it.
type discovered struct {
	issuer   string
	provider *oidc.Provider
	style    oauth2.AuthStyle // how the token endpoint takes a client secret
	fetched  time.Time
}

func newFederation(c *http.Client) *federation {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return &federation{client: c, cache: map[string]*discovered{}}
}

// discover returns p's discovery document, fetched again after
// discoveryTTL or when the issuer changed. go-oidc checks that the
// document names the issuer it was fetched for.
func (f *federation) discover(ctx context.Context, p *directory.IdentityProvider, now time.Time) (*discovered, error) {
	f.mu.Lock()
	d := f.cache[p.ID]
	f.mu.Unlock()
	if d != nil && d.issuer == p.Issuer && now.Sub(d.fetched) < discoveryTTL {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, f.client), p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", p.Issuer, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = prov.Claims(&meta)
	d = &discovered{issuer: p.Issuer, provider: prov, style: oauth2.AuthStyleInHeader, fetched: now}
	// client_secret_basic is the default (OIDC Discovery 3); a provider
	// that lists only client_secret_post gets the secret in the body.
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		d.style = oauth2.AuthStyleInParams
	}
	f.mu.Lock()
	f.cache[p.ID] = d
	f.mu.Unlock()
	return d, nil
}

// oauth2Config is the client configuration at a provider.
func (d *discovered) oauth2Config(p *directory.IdentityProvider, secret, redirectURI string) *oauth2.Config {
	ep := d.provider.Endpoint()
	ep.AuthStyle = d.style
	if secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id in the body, PKCE proves the rest
	}
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: secret, Endpoint: ep, RedirectURL: redirectURI, Scopes: strings.Fields(p.Scope)}
}

func (s *Service) federationRoutes() {
	s.mux.HandleFunc("GET /signin/federated/{id}/start", s.getFederatedStart)
	s.mux.HandleFunc("GET "+federationCallback, s.getFederatedCallback)
}

// identityProvider reads a provider from the store (not the snapshot:
// providers are not part of it, and a sign-in is not the hot path).
func (s *Service) identityProvider(ctx context.Context, id string) (*directory.IdentityProvider, error) {
	o, err := s.opts.Store.Get(ctx, directory.KindIdentityProvider, strings.ToLower(id))
	if err != nil {
		return nil, err
	}
	return directory.IdentityProviders.FromObject(o)
}

// identityProviders lists the providers, by display name.
func (s *Service) identityProviders(ctx context.Context) ([]*directory.IdentityProvider, error) {
	objs, err := s.opts.Store.List(ctx, directory.KindIdentityProvider, store.ListOptions{Limit: maxProviders})
	if err != nil {
		return nil, err
	}
	out := make([]*directory.IdentityProvider, 0, len(objs))
	for _, o := range objs {
		p, err := directory.IdentityProviders.FromObject(o)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *directory.IdentityProvider) int {
		return strings.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName))
	})
	return out, nil
}

// providerButton is one "Sign in with ..." button of the sign-in page.
type providerButton struct{ ID, Name string }

// providerButtons lists the buttons of the sign-in page (none when the
// providers cannot be read: the password form still works).
func (s *Service) providerButtons(ctx context.Context) []providerButton {
	ps, err := s.identityProviders(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "sign-in: list identity providers", "err", err)
		return nil
	}
	out := make([]providerButton, 0, len(ps))
	for _, p := range ps {
		out = append(out, providerButton{ID: p.ID, Name: p.DisplayName})
	}
	return out
}

// federatedHint sends the browser to the identity provider that serves
// the domain of userName (or domainHint), and reports whether it did.
func (s *Service) federatedHint(w http.ResponseWriter, r *http.Request, userName, domainHint, returnTo, appID string, fresh bool) bool {
	domain := strings.ToLower(strings.TrimSpace(domainHint))
	if domain == "" {
		at := strings.LastIndexByte(userName, '@')
		if at < 0 {
			return false
		}
		domain = strings.ToLower(strings.TrimSpace(userName[at+1:]))
	}
	if domain == "" || len(domain) > 253 {
		return false
	}
	ps, err := s.identityProviders(r.Context())
	if err != nil {
		s.log.WarnContext(r.Context(), "sign-in: list identity providers", "err", err)
		return false
	}
	for _, p := range ps {
		if p.ServesDomain(domain) {
			v := url.Values{"return_to": {returnTo}}
			if appID != "" {
				v.Set("app", appID)
			}
			if hint := strings.TrimSpace(userName); hint != "" && len(hint) <= 256 {
				v.Set("login_hint", hint)
			}
			if fresh {
				v.Set("prompt", "login")
			}
			http.Redirect(w, r, "/signin/federated/"+p.ID+"/start?"+v.Encode(), http.StatusSeeOther)
			return true
		}
	}
	return false
}

// redirectURI is the callback address the provider sends the browser
// back to: the external URL's, else this request's host over https.
func (s *Service) redirectURI(r *http.Request) string {
	if s.opts.ExternalURL != "" {
		return strings.TrimSuffix(s.opts.ExternalURL, "/") + federationCallback
	}
	return "https://" + r.Host + federationCallback
}

// getFederatedStart sends the browser to a provider's authorization
// endpoint.
func (s *Service) getFederatedStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.opts.Now()
	id := r.PathValue("id")
	if !directory.IsGUID(id) {
		s.noSuchProvider(w, r)
		return
	}
	idp, err := s.identityProvider(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.noSuchProvider(w, r)
		return
	}
	if err != nil {
		s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Sign-in is not available", Message: "Try again in a moment.", Retry: "/signin"})
		return
	}
	q := r.URL.Query()
	st := &federatedStart{IdentityProviderID: idp.ID, Issuer: idp.Issuer, State: randomToken(), Nonce: randomToken(),
		RedirectURI: s.redirectURI(r), ReturnTo: safeReturn(q.Get("return_to")), AppID: boundedApp(q.Get("app")),
		CorrelationID: newCorrelationID(), Started: now, Fresh: q.Get("prompt") == "login"}
	ev := s.federatedEvent(r, st, idp, now)
	d, err := s.fed.discover(ctx, idp, now)
	if err != nil {
		s.log.WarnContext(ctx, "federated sign-in: discovery failed", "identityProvider", idp.ID, "err", err)
		s.federationFailed(w, r, ev, nil, CodeIdentityProviderError, "The identity provider's discovery document could not be read.",
			http.StatusBadGateway, idp.DisplayName+" is not available right now. Try again later, or sign in another way.")
		return
	}
	secret, recID := newSecret()
	verifier := oauth2.GenerateVerifier()
	if st.Verifier, err = s.opts.Sealer.Seal(sealPurposeVerifier, recID, []byte(verifier)); err != nil {
		s.fail(w, r, ev, err)
		return
	}
	body, err := json.Marshal(st)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	if _, err := s.opts.Store.CreateRecord(ctx, store.Record{Kind: kindFederatedSignIn, ID: recID, Subject: idp.ID, Body: body,
		ExpiresAt: now.Add(flowTTL)}); err != nil {
		s.fail(w, r, ev, err)
		return
	}
	s.setCookie(w, federationCookie, secret, int(flowTTL.Seconds()))
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(st.Nonce)}
	if hint := strings.TrimSpace(q.Get("login_hint")); hint != "" && len(hint) <= 256 {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	if st.Fresh {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	http.Redirect(w, r, d.oauth2Config(idp, "", st.RedirectURI).AuthCodeURL(st.State, opts...), http.StatusSeeOther)
}

func (s *Service) noSuchProvider(w http.ResponseWriter, r *http.Request) {
	s.page(w, r, http.StatusNotFound, errorPage{Title: "Page not found", Message: "There is no such way to sign in.", Retry: "/signin"})
}

// boundedApp takes an application id from a query; anything longer than
// an id is dropped.
func boundedApp(s string) string {
	if len(s) > 128 {
		return ""
	}
	return s
}

// getFederatedCallback takes the provider's answer.
func (s *Service) getFederatedCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.opts.Now()
	q := r.URL.Query()
	s.clearCookie(w, federationCookie)
	st, idp, ev, ok := s.takeFederatedStart(w, r, now)
	if !ok {
		return
	}
	if !constantEqual(q.Get("state"), st.State) {
		s.federationFailed(w, r, ev, nil, CodeFlowExpired, "The state returned by the identity provider does not match the sign-in request.",
			http.StatusBadRequest, "This sign-in could not be verified. Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		reason := "The identity provider returned an error: " + clean(e, 64)
		if d := q.Get("error_description"); d != "" {
			reason += ": " + clean(d, 256)
		}
		s.federationFailed(w, r, ev, idp, CodeIdentityProviderError, reason,
			http.StatusUnauthorized, idp.DisplayName+" did not sign you in. Start again, or sign in another way.")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.federationFailed(w, r, ev, idp, CodeIdentityProviderError, "The identity provider's answer has no authorization code.",
			http.StatusBadRequest, idp.DisplayName+" did not sign you in. Start again.")
		return
	}
	d, err := s.fed.discover(ctx, idp, now)
	if err != nil {
		s.log.WarnContext(ctx, "federated sign-in: discovery failed", "identityProvider", idp.ID, "err", err)
		s.federationFailed(w, r, ev, idp, CodeIdentityProviderError, "The identity provider's discovery document could not be read.",
			http.StatusBadGateway, idp.DisplayName+" is not available right now. Try again later.")
		return
	}
	secret, err := directory.IdentityProviderSecret(ctx, s.opts.Store, s.opts.Sealer, idp)
	if err != nil && !errors.Is(err, directory.ErrNoClientSecret) {
		s.fail(w, r, ev, err)
		return
	}
	verifier, err := s.opts.Sealer.Open(sealPurposeVerifier, st.id, st.Verifier)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	tok, err := d.oauth2Config(idp, secret, st.RedirectURI).Exchange(oidc.ClientContext(ctx, s.fed.client), code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		reason := "The identity provider refused the authorization code."
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			reason += " Error: " + clean(re.ErrorCode, 64)
		}
		s.log.WarnContext(ctx, "federated sign-in: token request failed", "identityProvider", idp.ID, "correlation", ev.CorrelationID, "err", errorText(err))
		s.federationFailed(w, r, ev, idp, CodeIdentityProviderError, reason, http.StatusBadGateway, idp.DisplayName+" did not sign you in. Start again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.federationFailed(w, r, ev, idp, CodeFederatedTokenInvalid, "The identity provider's token response has no ID token.",
			http.StatusBadGateway, idp.DisplayName+" did not sign you in. Start again.")
		return
	}
	claims, why := s.verifyIDToken(ctx, d, idp, st, raw)
	if why != "" {
		s.federationFailed(w, r, ev, idp, CodeFederatedTokenInvalid, why, http.StatusUnauthorized, "The sign-in from "+idp.DisplayName+" could not be verified. Start again.")
		return
	}
	s.finishFederated(w, r, st, idp, ev, claims)
}

// takeFederatedStart spends the request's federated sign-in record: it is
// deleted before anything else, so a callback works once.
func (s *Service) takeFederatedStart(w http.ResponseWriter, r *http.Request, now time.Time) (*federatedStart, *directory.IdentityProvider, *Event, bool) {
	ctx := r.Context()
	ev := s.federatedEvent(r, &federatedStart{CorrelationID: newCorrelationID()}, nil, now)
	expired := func(reason string) {
		s.federationFailed(w, r, ev, nil, CodeFlowExpired, reason, http.StatusBadRequest, "This sign-in expired or was already used. Start again.")
	}
	ck, err := r.Cookie(federationCookie)
	if err != nil || !validSecret(ck.Value) {
		expired("No federated sign-in is in progress in this browser (the state cannot be checked).")
		return nil, nil, nil, false
	}
	rec, err := s.opts.Store.GetRecord(ctx, kindFederatedSignIn, digest(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		expired("The federated sign-in request expired or was already used.")
		return nil, nil, nil, false
	}
	if err != nil {
		s.fail(w, r, ev, err)
		return nil, nil, nil, false
	}
	if err := s.opts.Store.DeleteRecord(ctx, kindFederatedSignIn, rec.ID); errors.Is(err, store.ErrNotFound) {
		expired("The federated sign-in request was already used.")
		return nil, nil, nil, false
	} else if err != nil {
		s.fail(w, r, ev, err)
		return nil, nil, nil, false
	}
	var st federatedStart
	if err := json.Unmarshal(rec.Body, &st); err != nil {
		s.fail(w, r, ev, fmt.Errorf("federated sign-in record: %w", err))
		return nil, nil, nil, false
	}
	st.id = rec.ID
	idp, err := s.identityProvider(ctx, st.IdentityProviderID)
	ev = s.federatedEvent(r, &st, idp, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		expired("The identity provider was removed during the sign-in.")
		return nil, nil, nil, false
	case err != nil:
		s.fail(w, r, ev, err)
		return nil, nil, nil, false
	case idp.Issuer != st.Issuer:
		expired("The identity provider's issuer changed during the sign-in.")
		return nil, nil, nil, false
	}
	return &st, idp, ev, true
}

// freshSkew is the clock difference allowed between Verity and a provider
// when checking that a sign-in is fresh.
const freshSkew = time.Minute

// verifyIDToken verifies an ID token as OpenID Connect Core 3.1.3.7 asks
// and returns its claims, or why it is refused.
func (s *Service) verifyIDToken(ctx context.Context, d *discovered, idp *directory.IdentityProvider, st *federatedStart, raw string) (map[string]any, string) {
	v := d.provider.Verifier(&oidc.Config{ClientID: idp.ClientID, Now: s.opts.Now})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, "The ID token is not valid: " + clean(strings.TrimPrefix(err.Error(), "oidc: "), 300)
	}
	if !constantEqual(tok.Nonce, st.Nonce) {
		return nil, "The ID token's nonce does not match the sign-in request."
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, "The ID token's claims cannot be read."
	}
	if len(tok.Audience) > 1 {
		if azp, _ := claims["azp"].(string); azp != idp.ClientID {
			return nil, "The ID token names several audiences and is not authorized for this client (azp)."
		}
	}
	if st.Fresh {
		// OpenID Connect Core 3.1.2.1: with max_age the ID token carries
		// auth_time. A sign-in older than the request is not the fresh one
		// the application asked for.
		at, ok := claims["auth_time"].(float64)
		if !ok || time.Unix(int64(at), 0).Before(st.Started.Add(-freshSkew)) {
			return nil, "The identity provider did not sign the user in again, as the application asked."
		}
	}
	return claims, ""
}

// finishFederated turns a verified account into an attempt and hands it
// to advance.
func (s *Service) finishFederated(w http.ResponseWriter, r *http.Request, st *federatedStart, idp *directory.IdentityProvider, ev *Event, claims map[string]any) {
	ctx := r.Context()
	now := s.opts.Now()
	u, refusal, err := s.federatedUser(r, idp, claims, now)
	if err != nil {
		s.fail(w, r, ev, err)
		return
	}
	if u != nil {
		ev.UserID, ev.UserPrincipalName, ev.UserDisplayName = u.ID, u.UserPrincipalName, u.DisplayName
	}
	if refusal != nil {
		s.federationFailed(w, r, ev, idp, refusal.code, refusal.reason, refusal.status, refusal.message)
		return
	}
	step := federatedStep(idp, true, now, "First factor requirement satisfied by claim in the token")
	f := &flow{UserID: u.ID, UPN: u.UserPrincipalName, DisplayName: u.DisplayName, AppID: ev.AppID, ReturnTo: st.ReturnTo,
		IP: ev.IPAddress, UserAgent: r.UserAgent(), CorrelationID: ev.CorrelationID, CSRF: newCorrelationID(), Started: now,
		PasswordAt: now, Methods: access.MethodFederatedSingleFactor, Details: []AuthenticationStep{step}}
	amr := claimStrings(claims, "amr")
	acr, _ := claims["acr"].(string)
	if idp.MFAClaim.Satisfied(amr, acr) {
		f.Methods = access.MethodFederatedMultiFactor
		f.Satisfied |= access.ControlMFA
		f.MFAAt = now
		f.Details = append(f.Details, federatedStep(idp, true, now, "MFA requirement satisfied by claim in the token"))
	}
	s.assessRisk(ctx, f, ev)
	// A password change cannot be asked of someone who signs in elsewhere.
	var res access.Result
	if err := s.evaluate(f, now, &res); err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	if res.Outcome == access.OutcomeInterrupt && res.Unmet&access.ControlPasswordChange != 0 {
		ev := s.event(f, now)
		ev.ConditionalAccessStatus, ev.AppliedConditionalAccess = caStatus(res.Outcome), appliedPolicies(&res)
		ev.Status = Status{ErrorCode: CodeCannotMeetControls, FailureReason: "A required control cannot be satisfied in this sign-in: passwordChange (the user signs in through an identity provider)"}
		s.deny(w, r, f, ev)
		return
	}
	m, err := loadMethods(ctx, s.opts.Store, u.ID)
	if err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	secret, err := createFlow(ctx, s.opts.Store, f)
	if err != nil {
		s.fail(w, r, s.event(f, now), err)
		return
	}
	s.setCookie(w, flowCookie, secret, 0)
	s.advance(w, r, f, m)
}

// federatedStep is the authenticationDetails entry of a federated step.
func federatedStep(idp *directory.IdentityProvider, ok bool, now time.Time, result string) AuthenticationStep {
	return AuthenticationStep{AuthenticationMethod: federatedMethod, AuthenticationMethodDetail: idp.DisplayName + " (" + idp.Issuer + ")",
		Succeeded: ok, AuthenticationStepDateTime: now, AuthenticationStepResult: result}
}

// federatedEvent starts the log event of a federated sign-in.
func (s *Service) federatedEvent(r *http.Request, st *federatedStart, idp *directory.IdentityProvider, now time.Time) *Event {
	appID := st.AppID
	if appID == "" {
		appID = s.opts.AppID
	}
	ip := clientIP(r)
	ev := &Event{ID: newCorrelationID(), CreatedDateTime: now, AppID: appID, IPAddress: ip.String(), ClientAppUsed: "Browser",
		UserAgent: r.UserAgent(), CorrelationID: st.CorrelationID, IsInteractive: true, AuthenticationRequirement: "singleFactorAuthentication",
		AuthenticationDetails: []AuthenticationStep{}, ConditionalAccessStatus: "notApplied", AppliedConditionalAccess: []AppliedPolicy{},
		RiskLevelDuringSignIn: "none", RiskState: "none"}
	if idp != nil {
		ev.AuthenticationDetails = append(ev.AuthenticationDetails, federatedStep(idp, false, now, ""))
	}
	s.locate(ev, ip)
	return ev
}

// federationFailed logs a failed federated sign-in with its reason and
// shows a page that says what to do, never why in detail.
func (s *Service) federationFailed(w http.ResponseWriter, r *http.Request, ev *Event, idp *directory.IdentityProvider, code int, reason string, status int, message string) {
	ev.Status = Status{ErrorCode: code, FailureReason: reason}
	for i := range ev.AuthenticationDetails {
		if ev.AuthenticationDetails[i].AuthenticationMethod == federatedMethod && !ev.AuthenticationDetails[i].Succeeded {
			ev.AuthenticationDetails[i].AuthenticationStepResult = reason
		}
	}
	if idp != nil && len(ev.AuthenticationDetails) == 0 {
		ev.AuthenticationDetails = append(ev.AuthenticationDetails, federatedStep(idp, false, ev.CreatedDateTime, reason))
	}
	s.logFailure(r.Context(), r, ev)
	s.page(w, r, status, errorPage{Title: "You could not be signed in", Message: message, Correlation: ev.CorrelationID, Code: code, Retry: "/signin"})
}

// clean makes text from a provider fit for the log: printable, at most
// max runes.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// errorText is an error for the server log, without a response body that
// might echo a request.
func errorText(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Sprintf("token endpoint answered %d %s", status, clean(re.ErrorCode, 64))
	}
	return err.Error()
}

// randomToken is a fresh random value for state and nonce.
func randomToken() string {
	s, _ := newSecret()
	return s
}
