package oidc

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// authorizer is the library's provider with Verity's own validation of
// authorization requests.
type authorizer struct {
	*op.Provider
	p *Provider
}

var _ op.AuthorizeValidator = authorizer{}

// ValidateAuthRequest checks an authorization request before it is
// stored. Until the redirect URI is known to be registered, errors are
// answered here and never redirected (no open redirect); after that they go
// back to the client.
func (a authorizer) ValidateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ op.Storage, verifier *op.IDTokenHintVerifier) (string, error) {
	c, err := a.p.client(ctx, req.ClientID)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("the client cannot be read now").WithParent(err)
		}
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("client_id names no application that can sign users in here").WithParent(err)
	}
	public, ok := c.flowPublic(req.RedirectURI)
	if !ok {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not a registered redirect URI of this application")
	}
	c.public = public
	if err := op.ValidateAuthReqResponseType(c, req.ResponseType); err != nil {
		return "", err
	}
	if req.MaxAge, err = op.ValidateAuthReqPrompt(req.Prompt, req.MaxAge); err != nil {
		return "", err
	}
	if req.Scopes, err = op.ValidateAuthReqScopes(c, req.Scopes); err != nil {
		return "", err
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return "", oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	switch {
	case req.CodeChallenge == "" && public:
		return "", oidc.ErrInvalidRequest().WithDescription("this client must use PKCE: code_challenge with code_challenge_method S256")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge != "" && !validChallenge(req.CodeChallenge):
		return "", oidc.ErrInvalidRequest().WithDescription("code_challenge must be the base64url SHA-256 of the code verifier (43 characters)")
	}
	sub, err := op.ValidateAuthReqIDTokenHint(ctx, req.IDTokenHint, verifier)
	if err != nil {
		return "", err
	}
	if h, ok := ctx.Value(flowKey{}).(*flowHint); ok {
		h.known, h.public = true, public
	}
	return sub, nil
}

// validChallenge accepts an S256 challenge: 43 base64url characters.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// login is where the library sends the browser for an auth request. It
// asks the sign-in service for a session good enough for the client
// (conditional access for the client as the application, prompt=login,
// max_age, acr_values, login_hint), binds the request to it and sends the
// browser on to the library's callback, which issues the code.
// prompt=none never shows a page: without a session that suffices as it
// is, the client gets login_required or interaction_required.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	ar, err := p.pendingRequest(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.ErrorContext(ctx, "oidc: read auth request", "err", err)
		}
		http.Error(w, "This sign-in request has expired or is not valid. Go back to the application and sign in again.", http.StatusBadRequest)
		return
	}
	req := signin.Requirements{LoginHint: ar.LoginHint, Strength: strengthOf(ar.ACRValues)}
	fresh := slices.Contains(ar.Prompt, oidc.PromptLogin)
	if ar.MaxAge != nil {
		if *ar.MaxAge == 0 {
			fresh = true
		} else {
			req.MaxAge = time.Duration(*ar.MaxAge) * time.Second
		}
	}
	cur, err := p.opts.SignIn.Current(r)
	if err != nil {
		http.Error(w, "Sign-in is not available. Try again in a moment.", http.StatusServiceUnavailable)
		return
	}
	// A sign-in since the request began is the fresh one it asked for.
	if fresh && cur != nil && !cur.AuthTime.Before(ar.Created) {
		fresh = false
	}
	req.Fresh = fresh
	returnTo := pathLogin + "?id=" + url.QueryEscape(ar.ID)
	var sess *signin.Session
	if slices.Contains(ar.Prompt, oidc.PromptNone) {
		if cur == nil || fresh || (ar.HintSubject != "" && cur.UserID != ar.HintSubject) {
			op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired().WithDescription("the user is not signed in"), p.op)
			return
		}
		// Require answers with pages; here its answer is only read.
		rec := &discardWriter{header: http.Header{}}
		if sess = p.opts.SignIn.Require(rec, r, ar.ClientID, returnTo, req); sess == nil {
			if strings.HasPrefix(rec.header.Get("Location"), "/signin?") {
				op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired().WithDescription("the user must sign in again"), p.op)
			} else {
				op.AuthRequestError(w, r, ar, oidc.ErrInteractionRequired().WithDescription("the sign-in needs the user: a second factor, or access is blocked"), p.op)
			}
			return
		}
	} else if sess = p.opts.SignIn.Require(w, r, ar.ClientID, returnTo, req); sess == nil {
		return // Require answered: a sign-in page, a step-up or a block
	}
	// Consent: an application the tenant did not register for itself alone
	// (signInAudience other than AzureADMyOrg: a multi-tenant or public
	// application) learns who the user is only after the user agrees, once;
	// prompt=consent asks again.
	if need, err := p.needConsent(ctx, ar, sess); err != nil {
		http.Error(w, "Sign-in is not available. Try again in a moment.", http.StatusServiceUnavailable)
		return
	} else if need {
		switch {
		case r.URL.Query().Get("consent") == "denied":
			op.AuthRequestError(w, r, ar, oidc.ErrAccessDenied().WithDescription("the user declined to share their identity with the application"), p.op)
		case slices.Contains(ar.Prompt, oidc.PromptNone):
			// consent_required (OpenID Connect Core 3.1.2.6).
			e := oidc.ErrInteractionRequired().WithDescription("the user has not agreed to share their identity with the application")
			e.ErrorType = "consent_required"
			op.AuthRequestError(w, r, ar, e, p.op)
		default:
			p.opts.SignIn.AskConsent(w, r, sess, ar.ClientID, ar.Scopes, returnTo)
		}
		return
	}
	ar.SignedIn, ar.UserID, ar.AuthTime, ar.MFATime = true, sess.UserID, sess.AuthTime, sess.MFATime
	ar.Methods, ar.AMR, ar.ACR, ar.SID = sess.Methods, sess.AMR(), sess.ACR(), sess.ID
	if _, err := p.opts.Store.UpdateRecord(ctx, store.Record{Kind: kindAuthRequest, ID: ar.ID, Subject: ar.ClientID,
		Body: marshal(ar), ExpiresAt: ar.Created.Add(authRequestLifetime), Version: ar.version}); err != nil {
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			p.log.ErrorContext(ctx, "oidc: record sign-in on auth request", "err", err)
		}
		http.Error(w, "This sign-in request has expired or was completed elsewhere. Go back to the application and sign in again.", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, pathCallback+"?id="+url.QueryEscape(ar.ID), http.StatusFound)
}

// needConsent reports whether the user must still agree to share the
// requested scopes with the client: only for applications that are not
// the tenant's own (signInAudience other than AzureADMyOrg), and again
// for prompt=consent unless the agreement came after the request began.
func (p *Provider) needConsent(ctx context.Context, ar *authRequest, sess *signin.Session) (bool, error) {
	app, ok := p.opts.Live.Current().Directory().ApplicationByAppID(ar.ClientID)
	if !ok || app.SignInAudience == "" || app.SignInAudience == directory.AudienceMyOrg {
		return false, nil
	}
	ok, at, err := p.opts.SignIn.Consented(ctx, sess.UserID, ar.ClientID, ar.Scopes)
	if err != nil {
		return false, err
	}
	if slices.Contains(ar.Prompt, oidc.PromptConsent) && at.Before(ar.Created) {
		return true, nil
	}
	return !ok, nil
}

// pendingRequest returns the auth request id, if it is still within its
// lifetime.
func (p *Provider) pendingRequest(ctx context.Context, id string) (*authRequest, error) {
	if !validID(id) {
		return nil, store.ErrNotFound
	}
	ar, err := loadAuthRequest(ctx, p.opts.Store, id)
	if err != nil {
		return nil, err
	}
	if p.opts.Now().Sub(ar.Created) > authRequestLifetime {
		return nil, store.ErrNotFound
	}
	return ar, nil
}

// validID accepts the shape of newID: 32 lower-case hex digits.
func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// strengthOf is the weakest of the acr values Verity knows in acr_values:
// the client accepts any of them. Unknown values ask for nothing.
func strengthOf(values []string) signin.StrengthLevel {
	min := signin.StrengthNone
	for _, v := range values {
		var l signin.StrengthLevel
		switch v {
		case signin.ACRPassword:
			l = signin.StrengthPassword
		case signin.ACRMultifactor:
			l = signin.StrengthMultifactor
		case signin.ACRPhishingResistant:
			l = signin.StrengthPhishingResistant
		default:
			continue
		}
		if min == signin.StrengthNone || l < min {
			min = l
		}
	}
	return min
}

// discardWriter takes a response and keeps only its headers and status:
// how prompt=none asks the sign-in service without showing its pages.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
