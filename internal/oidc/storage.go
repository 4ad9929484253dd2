package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// storage is the library's op.Storage over Verity's store, directory and
// keyring.
type storage struct{ p *Provider }

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

func (s *storage) now() time.Time { return s.p.opts.Now() }

// op.AuthRequest of an authRequest.

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return a.ACR }
func (a *authRequest) GetAMR() []string      { return a.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.ResponseType) }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.UserID }
func (a *authRequest) Done() bool                         { return a.SignedIn }

// LogValue names the client and redirect URI in the library's error logs,
// never the state, nonce or challenge.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", a.ClientID), slog.String("redirect_uri", a.RedirectURI))
}

// CreateAuthRequest stores a validated authorization request.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	h, ok := ctx.Value(flowKey{}).(*flowHint)
	if !ok || !h.known {
		return nil, errors.New("auth request was not validated")
	}
	now := s.now()
	ar := &authRequest{ID: newID(), ClientID: strings.ToLower(req.ClientID), RedirectURI: req.RedirectURI, Scopes: req.Scopes,
		State: req.State, Nonce: req.Nonce, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod), Prompt: req.Prompt,
		MaxAge: req.MaxAge, LoginHint: req.LoginHint, HintSubject: hintSubject, ACRValues: req.ACRValues, Public: h.public, Created: now}
	r, err := s.p.opts.Store.CreateRecord(ctx, store.Record{Kind: kindAuthRequest, ID: ar.ID, Subject: ar.ClientID,
		Body: marshal(ar), ExpiresAt: now.Add(authRequestLifetime)})
	if err != nil {
		return nil, fmt.Errorf("store auth request: %w", err)
	}
	ar.version = r.Version
	return ar, nil
}

// AuthRequestByID returns a pending auth request.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.p.pendingRequest(ctx, id)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("the auth request has expired or is unknown")
	}
	return ar, nil
}

// SaveAuthCode records the code for a signed-in request: the code record
// holds the request, and the auth request is deleted, so that one sign-in
// gives one code.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	st := s.p.opts.Store
	ar, err := loadAuthRequest(ctx, st, id)
	if err != nil {
		return oidc.ErrInvalidRequest().WithDescription("the auth request has expired or is unknown")
	}
	if !ar.SignedIn {
		return oidc.ErrInteractionRequired()
	}
	now := s.now()
	// The record outlives the code so that a replay within an access
	// token's lifetime still finds it and revokes what was issued.
	rec := codeRecord{Request: *ar, RequestID: id, ExpiresAt: now.Add(s.p.opts.CodeLifetime)}
	if _, err := st.CreateRecord(ctx, store.Record{Kind: kindCode, ID: digest(code), Subject: id, Body: marshal(rec),
		ExpiresAt: now.Add(s.p.opts.CodeLifetime + s.p.opts.AccessTokenLifetime)}); err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	if err := st.DeleteRecord(ctx, kindAuthRequest, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store code: end auth request: %w", err)
	}
	return nil
}

// AuthRequestByCode redeems a code, once: the first call marks it redeemed
// by compare-and-swap, so of two concurrent redemptions one wins. A code
// presented again revokes everything its first redemption issued.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	if !validSecret(code, codePrefix) {
		return nil, errors.New("not a code")
	}
	st := s.p.opts.Store
	id := digest(code)
	r, err := st.GetRecord(ctx, kindCode, id)
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	c, err := decode[codeRecord](r)
	if err != nil {
		return nil, err
	}
	if !c.Redeemed && !s.now().Before(c.ExpiresAt) {
		return nil, errors.New("code expired")
	}
	if !c.Redeemed {
		c.Redeemed = true
		r.Body = marshal(c)
		if _, err = st.UpdateRecord(ctx, r); err == nil {
			ar := c.Request
			ar.ID = c.RequestID
			ar.codeID = id
			return &ar, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("redeem code: %w", err)
		}
	}
	// Replay: revoke the grant, and mark the code so that a first
	// redemption still under way revokes what it issues.
	if r, err := st.GetRecord(ctx, kindCode, id); err == nil {
		if c, err := decode[codeRecord](r); err == nil && !c.Replayed {
			c.Replayed = true
			r.Body = marshal(c)
			_, _ = st.PutRecord(ctx, r)
		}
	}
	if err := revokeGrant(ctx, st, c.RequestID); err != nil {
		return nil, err
	}
	s.p.log.WarnContext(ctx, "oidc: authorization code presented again; its grant is revoked", "client", c.Request.ClientID, "user", c.Request.UserID, "grant", c.RequestID)
	return nil, errors.New("code already redeemed")
}

// DeleteAuthRequest is called once tokens are issued. SaveAuthCode ended
// the request already, so there is nothing to write.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// ccRequest is a client credentials token request: the application's
// service principal is the subject.
type ccRequest struct {
	appID, spID string
}

func (c *ccRequest) GetSubject() string    { return c.spID }
func (c *ccRequest) GetAudience() []string { return []string{c.appID} }
func (c *ccRequest) GetScopes() []string   { return nil }

// refreshRequest is a refresh token being used: its record, as read, and
// its grant.
type refreshRequest struct {
	g       *grant
	rec     store.Record
	body    *refreshRecord
	scopes  []string
	current string
}

func (r *refreshRequest) GetAMR() []string            { return r.g.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.g.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.g.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.g.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.g.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// Access token ids (jti) name what makes the token valid, so that
// userinfo and introspection check it without a record per token:
// "u.{grant id}.{random}" for a user's token, "c.{app id}.{random}" for a
// client credentials token.
func userTokenID(grantID string) string { return "u." + grantID + "." + newID() }
func appTokenID(appID string) string    { return "c." + appID + "." + newID() }

func parseTokenID(jti string) (kind, owner string, ok bool) {
	parts := strings.Split(jti, ".")
	if len(parts) != 3 || (parts[0] != "u" && parts[0] != "c") || parts[1] == "" || !validID(parts[2]) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// CreateAccessToken issues an access token without a refresh token: for
// a code flow without offline_access (the grant lives as long as the
// access token) and for client credentials.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	exp := s.now().Add(s.p.opts.AccessTokenLifetime)
	switch r := req.(type) {
	case *authRequest:
		if err := s.createGrant(ctx, r, exp); err != nil {
			return "", time.Time{}, err
		}
		return userTokenID(r.ID), exp, nil
	case *ccRequest:
		return appTokenID(r.appID), exp, nil
	}
	return "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token:
// for a code flow with offline_access (a new refresh token family), or
// for a refresh token, which is rotated: it is marked used by
// compare-and-swap, so of two uses of one token only one succeeds, and the
// loser revokes the family.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, _ string) (string, string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.p.opts.AccessTokenLifetime)
	st := s.p.opts.Store
	switch r := req.(type) {
	case *authRequest:
		capAt := now.Add(s.p.opts.RefreshTokenMaxLifetime)
		if err := s.createGrant(ctx, r, capAt); err != nil {
			return "", "", time.Time{}, err
		}
		g := &grant{ID: r.ID, ClientID: r.ClientID, Public: r.Public, ExpiresAt: capAt}
		token, err := s.newRefreshToken(ctx, g)
		if err != nil {
			return "", "", time.Time{}, err
		}
		return userTokenID(r.ID), token, exp, nil
	case *refreshRequest:
		b := *r.body
		b.State, b.UsedAt = refreshUsed, now
		rec := r.rec
		rec.Body = marshal(b)
		rec.ExpiresAt = r.g.ExpiresAt // kept to recognise reuse while the family lives
		if _, err := st.UpdateRecord(ctx, rec); err != nil {
			if errors.Is(err, store.ErrConflict) {
				s.reuse(ctx, r.g, "refresh token used twice at once")
				return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was already used")
			}
			if errors.Is(err, store.ErrNotFound) {
				return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token has been revoked")
			}
			return "", "", time.Time{}, fmt.Errorf("rotate refresh token: %w", err)
		}
		token, err := s.newRefreshToken(ctx, r.g)
		if err != nil {
			return "", "", time.Time{}, err
		}
		// A family revoked meanwhile (reuse seen on another request)
		// issues nothing.
		if _, err := loadGrant(ctx, st, r.g.ID); err != nil {
			_ = st.DeleteRecord(ctx, kindRefreshToken, digest(token))
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token has been revoked")
		}
		return userTokenID(r.g.ID), token, exp, nil
	}
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// createGrant records what a redeemed code granted, until expires. When
// the code was replayed meanwhile, the grant is revoked at once.
func (s *storage) createGrant(ctx context.Context, r *authRequest, expires time.Time) error {
	st := s.p.opts.Store
	g := grant{ClientID: r.ClientID, UserID: r.UserID, Scopes: r.Scopes, Public: r.Public, AuthTime: r.AuthTime, MFATime: r.MFATime,
		Methods: r.Methods, AMR: r.AMR, ACR: r.ACR, SID: r.SID, Created: s.now(), ExpiresAt: expires}
	if _, err := st.CreateRecord(ctx, store.Record{Kind: kindGrant, ID: r.ID, Subject: r.UserID, Body: marshal(g), ExpiresAt: expires}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return oidc.ErrInvalidGrant().WithDescription("the code was already redeemed")
		}
		return fmt.Errorf("store grant: %w", err)
	}
	if rec, err := st.GetRecord(ctx, kindCode, r.codeID); err == nil {
		if c, err := decode[codeRecord](rec); err == nil && c.Replayed {
			_ = revokeGrant(ctx, st, r.ID)
			return oidc.ErrInvalidGrant().WithDescription("the code was already redeemed")
		}
	}
	return nil
}

// newRefreshToken issues a refresh token of grant g, valid for the
// sliding lifetime within the grant's cap.
func (s *storage) newRefreshToken(ctx context.Context, g *grant) (string, error) {
	now := s.now()
	exp := now.Add(s.p.opts.RefreshTokenLifetime)
	if g.ExpiresAt.Before(exp) {
		exp = g.ExpiresAt
	}
	token := newSecret(refreshPrefix)
	b := refreshRecord{GrantID: g.ID, ClientID: g.ClientID, Public: g.Public, State: refreshActive, IssuedAt: now, ExpiresAt: exp}
	if _, err := s.p.opts.Store.CreateRecord(ctx, store.Record{Kind: kindRefreshToken, ID: digest(token), Subject: g.ID,
		Body: marshal(b), ExpiresAt: exp}); err != nil {
		return "", fmt.Errorf("store refresh token: %w", err)
	}
	return token, nil
}

// reuse revokes the family of a refresh token presented after it was
// rotated: one of the two presenters holds a stolen copy.
func (s *storage) reuse(ctx context.Context, g *grant, why string) {
	if err := revokeGrant(ctx, s.p.opts.Store, g.ID); err != nil {
		s.p.log.ErrorContext(ctx, "oidc: revoke refresh token family", "grant", g.ID, "err", err)
		return
	}
	s.p.log.WarnContext(ctx, "oidc: refresh token reuse; the family is revoked", "reason", why, "client", g.ClientID, "user", g.UserID, "grant", g.ID)
}

// TokenRequestByRefreshToken reads a refresh token for its use: a used
// one revokes its family; the grant must live, the user be enabled, and
// conditional access, evaluated now for the client, must not block or
// ask for the user (sign-in frequency included).
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	if !validSecret(token, refreshPrefix) {
		return nil, errors.New("not a refresh token")
	}
	st := s.p.opts.Store
	rec, err := st.GetRecord(ctx, kindRefreshToken, digest(token))
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	b, err := decode[refreshRecord](rec)
	if err != nil {
		return nil, err
	}
	g, err := loadGrant(ctx, st, b.GrantID)
	if err != nil {
		return nil, fmt.Errorf("refresh token grant: %w", err)
	}
	now := s.now()
	if b.State != refreshActive {
		s.reuse(ctx, g, "a rotated refresh token was presented")
		_ = s.p.logSignIn(ctx, s.p.refreshEvent(g), nil, codeRefreshReuse, "A refresh token was used twice: every token of the sign-in has been revoked.")
		return nil, errors.New("refresh token already used")
	}
	if !now.Before(b.ExpiresAt) || !now.Before(g.ExpiresAt) {
		return nil, errors.New("refresh token expired")
	}
	if err := s.p.userMayContinue(ctx, g); err != nil {
		return nil, err
	}
	return &refreshRequest{g: g, rec: rec, body: b, scopes: g.Scopes, current: token}, nil
}

// userMayContinue evaluates conditional access for a grant's user and
// client as a non-interactive sign-in: blocked, or needing the user
// (a second factor, a sign-in frequency passed), refuses.
func (p *Provider) userMayContinue(ctx context.Context, g *grant) error {
	snap := p.opts.Live.Current()
	if !snap.Directory().PrincipalEnabled(g.UserID) {
		return oidc.ErrInvalidGrant().WithDescription("the user cannot sign in")
	}
	if ok, err := p.opts.SignIn.Assigned(g.UserID, g.ClientID); err != nil {
		return oidc.ErrServerError().WithParent(err)
	} else if !ok {
		_ = p.logSignIn(ctx, p.refreshEvent(g), nil, signin.CodeNotAssigned, "The signed in user is no longer assigned to the application.")
		return oidc.ErrInvalidGrant().WithDescription("the user is not assigned to the application")
	}
	ri := infoFrom(ctx)
	req := access.Request{Identity: access.IdentityUser, UserID: g.UserID, Applications: []string{g.ClientID},
		ClientApp: access.ClientAppBrowser, Platform: access.PlatformUnknown, IP: ri.IP,
		Methods: g.Methods, Now: p.opts.Now(), SignInTime: g.AuthTime, MFATime: g.MFATime,
		UserRisk: p.opts.SignIn.UserRisk(ctx, g.UserID)}
	if signin.Strength(g.Methods) >= signin.StrengthMultifactor {
		req.Satisfied |= access.ControlMFA
	}
	res, err := p.evaluate(&req)
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if res.Outcome == access.OutcomeBlock || res.Outcome == access.OutcomeInterrupt {
		p.log.InfoContext(ctx, "oidc: refresh refused by conditional access", "client", g.ClientID, "user", g.UserID, "outcome", res.Outcome.String())
		_ = p.logSignIn(ctx, p.refreshEvent(g), res, signin.CodeBlockedByCA, "Conditional access requires the user to sign in again, or blocks access.")
		return oidc.ErrInvalidGrant().WithDescription("conditional access requires the user to sign in again, or blocks access")
	}
	if err := p.logSignIn(ctx, p.refreshEvent(g), res, signin.CodeSuccess, ""); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// codeInvalidClientSecret is Entra's code for a wrong client secret.
const codeInvalidClientSecret = 7000215

// codeRefreshReuse is the sign-in log code of a reused refresh token
// (Entra's "the refresh token has been revoked").
const codeRefreshReuse = 70008

// refreshEvent starts the sign-in log event of a refresh token redeemed
// for g: a non-interactive sign-in of the grant's user to its client.
func (p *Provider) refreshEvent(g *grant) *signin.Event {
	ev := &signin.Event{UserID: g.UserID, AppID: g.ClientID, ClientAppUsed: "Browser", IsInteractive: false,
		SignInEventTypes: []string{"nonInteractiveUser"}, IncomingTokenType: "refreshToken", SessionID: g.SID,
		AuthenticationRequirement: "singleFactorAuthentication"}
	if signin.Strength(g.Methods) >= signin.StrengthMultifactor {
		ev.AuthenticationRequirement = "multiFactorAuthentication"
	}
	dir := p.opts.Live.Current().Directory()
	if u, ok := dir.User(g.UserID); ok {
		ev.UserPrincipalName, ev.UserDisplayName = u.UserPrincipalName, u.DisplayName
	}
	if app, ok := dir.ApplicationByAppID(g.ClientID); ok {
		ev.AppDisplayName = app.DisplayName
	}
	return ev
}

// evaluate runs conditional access on the current snapshot.
func (p *Provider) evaluate(req *access.Request) (*access.Result, error) {
	snap := p.opts.Live.Current()
	eng, err := snap.Access()
	if err != nil {
		return nil, err
	}
	if req.IP.IsValid() && p.opts.Countries != nil {
		req.Country, _ = p.opts.Countries.Country(req.IP)
	}
	req.Resolve(access.SnapshotPrincipals{Snapshot: snap.Directory()})
	res := &access.Result{}
	eng.Evaluate(req, res)
	return res, nil
}

// logSignIn records a token redemption in the sign-in log: a refresh
// token (a non-interactive user sign-in) or client credentials (a service
// principal sign-in). A redemption that cannot be logged fails.
func (p *Provider) logSignIn(ctx context.Context, ev *signin.Event, res *access.Result, code int, reason string) error {
	ev.CreatedDateTime = p.opts.Now()
	ri := infoFrom(ctx)
	ev.IPAddress, ev.UserAgent = ri.IP.String(), ri.UserAgent
	if res != nil {
		ev.ConditionalAccessStatus = signin.ConditionalAccessStatus(res.Outcome)
		ev.AppliedConditionalAccess = signin.AppliedPolicies(res)
	} else {
		ev.ConditionalAccessStatus = "notApplied"
	}
	ev.Status = signin.Status{ErrorCode: code, FailureReason: reason}
	result := "success"
	if code != signin.CodeSuccess {
		result = "failure"
	}
	// Successes are frequent (a client may redeem thousands a second) and
	// join the audit log's next group commit without waiting; failures are
	// durable before the answer.
	if err := signin.LogSignIn(context.WithoutCancel(ctx), p.opts.Store, "", ev, result, code == signin.CodeSuccess); err != nil {
		p.log.ErrorContext(ctx, "oidc: record sign-in", "client", ev.AppID, "err", err)
		return err
	}
	return nil
}

// TerminateSession is not used: end_session is Verity's own handler.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// GetRefreshTokenInfo names a live refresh token for revocation: the
// token id is "rt." and its digest.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, _ string, token string) (string, string, error) {
	if !validSecret(token, refreshPrefix) {
		return "", "", op.ErrInvalidRefreshToken
	}
	id := digest(token)
	rec, err := s.p.opts.Store.GetRecord(ctx, kindRefreshToken, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	b, err := decode[refreshRecord](rec)
	if err != nil {
		return "", "", err
	}
	return b.GrantID, "rt." + id, nil
}

// RevokeToken revokes a refresh token's whole grant, or one access token
// (listed until it expires), when the token was issued to clientID.
// Tokens that are not Verity's, or already gone, are not an error (RFC
// 7009).
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	st := s.p.opts.Store
	clientID = strings.ToLower(clientID)
	if id, ok := strings.CutPrefix(tokenOrID, "rt."); ok {
		rec, err := st.GetRecord(ctx, kindRefreshToken, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		b, err := decode[refreshRecord](rec)
		if err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		if b.ClientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
		}
		if err := revokeGrant(ctx, st, b.GrantID); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	kind, owner, ok := parseTokenID(tokenOrID)
	if !ok {
		return nil
	}
	switch kind {
	case "u":
		g, err := loadGrant(ctx, st, owner)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		if g.ClientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
		}
	case "c":
		if owner != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
		}
	}
	if _, err := st.PutRecord(ctx, store.Record{Kind: kindRevokedAccessToken, ID: tokenOrID, Subject: owner,
		ExpiresAt: s.now().Add(s.p.opts.AccessTokenLifetime)}); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// accessTokenLive checks what a signed, unexpired access token stands on:
// not revoked, its grant alive (for a user) or its service principal
// enabled (for an application), and the subject still enabled.
func (p *Provider) accessTokenLive(ctx context.Context, jti, subject string) (*grant, error) {
	kind, owner, ok := parseTokenID(jti)
	if !ok {
		return nil, errors.New("not a Verity access token")
	}
	st := p.opts.Store
	if _, err := st.GetRecord(ctx, kindRevokedAccessToken, jti); err == nil {
		return nil, errors.New("access token revoked")
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if !p.opts.Live.Current().Directory().PrincipalEnabled(subject) {
		return nil, errors.New("the subject cannot sign in")
	}
	if kind == "c" {
		return nil, nil
	}
	g, err := loadGrant(ctx, st, owner)
	if err != nil {
		return nil, fmt.Errorf("access token grant: %w", err)
	}
	if g.UserID != subject {
		return nil, errors.New("access token subject is not its grant's")
	}
	return g, nil
}

// signingKey is the keyring's current key as the library's SigningKey:
// an opaque signer, the private key stays in the keyring.
type signingKey struct {
	alg jose.SignatureAlgorithm
	id  string
	key jose.OpaqueSigner
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// SigningKey is the keyring's current key.
func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	sg, err := s.p.opts.Keyring.Signer(ctx)
	if err != nil {
		return nil, err
	}
	return signingKey{alg: sg.Algorithm(), id: sg.KeyID(), key: sg.OpaqueSigner()}, nil
}

// SignatureAlgorithms are those of the published keys.
func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	set, err := s.p.opts.Keyring.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	var out []jose.SignatureAlgorithm
	for _, k := range set.Keys {
		if a := jose.SignatureAlgorithm(k.Algorithm); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

type publicKey struct{ k jose.JSONWebKey }

func (k publicKey) ID() string                         { return k.k.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Algorithm) }
func (k publicKey) Use() string                        { return k.k.Use }
func (k publicKey) Key() any                           { return k.k.Key }

// KeySet is the keyring's JWKS.
func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	set, err := s.p.opts.Keyring.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(set.Keys))
	for i, k := range set.Keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// GetClientByClientID returns the application as a client.
func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	return s.p.client(ctx, clientID)
}

// AuthorizeClientIDSecret verifies a client secret with the directory.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	if _, err := s.p.client(ctx, clientID); err != nil {
		return err
	}
	appID, now := strings.ToLower(clientID), time.Now()
	if s.p.secrets.verifiedRecently(appID, secret, now) {
		return nil
	}
	if err := directory.VerifyClientSecret(ctx, s.p.opts.Store, appID, secret); err != nil {
		if errors.Is(err, directory.ErrInvalidClientSecret) {
			ev := &signin.Event{AppID: appID, ClientAppUsed: "Other clients", SignInEventTypes: []string{"servicePrincipal"},
				AuthenticationRequirement: "singleFactorAuthentication",
				AuthenticationDetails:     []signin.AuthenticationStep{{AuthenticationMethod: "Client secret", Succeeded: false, AuthenticationStepDateTime: now}}}
			if c, cerr := s.p.client(ctx, appID); cerr == nil {
				ev.AppDisplayName, ev.ServicePrincipalID, ev.ServicePrincipalName = c.app.DisplayName, c.sp.ID, c.sp.DisplayName
			}
			_ = s.p.logSignIn(ctx, ev, nil, codeInvalidClientSecret, "Invalid client secret provided.")
			return err
		}
		return oidc.ErrServerError().WithParent(err)
	}
	s.p.secrets.rememberVerified(appID, secret, now)
	return nil
}

// ClientCredentials authenticates a client for the client credentials
// grant: its secret, verified.
func (s *storage) ClientCredentials(ctx context.Context, clientID, secret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, clientID, secret); err != nil {
		return nil, err
	}
	c, err := s.p.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	c.public = false
	return c, nil
}

// ClientCredentialsTokenRequest is the token request of an authenticated
// client: its service principal must be enabled and conditional access
// for workload identities must not block it (controls a workload cannot
// satisfy block it too). Scopes are not granted: Verity has no API
// permission model yet.
func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, _ []string) (op.TokenRequest, error) {
	c, err := s.p.client(ctx, clientID)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithParent(err)
	}
	req := access.Request{Identity: access.IdentityServicePrincipal, ServicePrincipalID: c.sp.ID,
		Applications: []string{c.app.AppID}, IP: infoFrom(ctx).IP, Now: s.now()}
	res, err := s.p.evaluate(&req)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	ev := &signin.Event{AppID: c.app.AppID, AppDisplayName: c.app.DisplayName, ServicePrincipalID: c.sp.ID, ServicePrincipalName: c.sp.DisplayName,
		ClientAppUsed: "Other clients", SignInEventTypes: []string{"servicePrincipal"}, AuthenticationRequirement: "singleFactorAuthentication",
		AuthenticationDetails: []signin.AuthenticationStep{{AuthenticationMethod: "Client secret", Succeeded: true, AuthenticationStepDateTime: s.now()}}}
	if res.Outcome == access.OutcomeBlock || res.Outcome == access.OutcomeInterrupt {
		s.p.log.InfoContext(ctx, "oidc: client credentials refused by conditional access", "client", c.app.AppID, "servicePrincipal", c.sp.ID, "outcome", res.Outcome.String())
		_ = s.p.logSignIn(ctx, ev, res, signin.CodeBlockedByCA, "Access has been blocked by Conditional Access policies for workload identities.")
		return nil, oidc.ErrAccessDenied().WithDescription("access has been blocked by conditional access policies for workload identities")
	}
	if err := s.p.logSignIn(ctx, ev, res, signin.CodeSuccess, ""); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return &ccRequest{appID: c.app.AppID, spID: c.sp.ID}, nil
}

// SetUserinfoFromScopes is unused: SetUserinfoFromRequest fills ID tokens.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills an ID token: name, preferred_username
// (the UPN) and email when set, sid, and acr for a refreshed one.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	u, ok := s.p.opts.Live.Current().Directory().User(req.GetSubject())
	if !ok {
		return oidc.ErrInvalidGrant().WithDescription("the user no longer exists")
	}
	info.Subject = u.ID
	info.Name, info.PreferredUsername, info.Email = u.DisplayName, u.UserPrincipalName, u.Mail
	switch r := req.(type) {
	case *authRequest:
		info.AppendClaims("sid", r.SID)
	case *refreshRequest:
		info.AppendClaims("sid", r.g.SID)
		info.AppendClaims("acr", r.g.ACR)
	}
	return nil
}

// SetUserinfoFromToken answers userinfo for a live access token of a user:
// sub, and the claims its scopes allow (profile: name and
// preferred_username; email: email).
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	g, err := s.p.accessTokenLive(ctx, tokenID, subject)
	if err != nil || g == nil {
		return oidc.ErrAccessDenied().WithDescription("the access token is not valid for userinfo")
	}
	u, ok := s.p.opts.Live.Current().Directory().User(subject)
	if !ok {
		return oidc.ErrAccessDenied().WithDescription("the user no longer exists")
	}
	info.Subject = u.ID
	if slices.Contains(g.Scopes, oidc.ScopeProfile) {
		info.Name, info.PreferredUsername = u.DisplayName, u.UserPrincipalName
	}
	if slices.Contains(g.Scopes, oidc.ScopeEmail) {
		info.Email = u.Mail
	}
	return nil
}

// SetIntrospectionFromToken is unused: introspection is Verity's own
// handler, which also answers for refresh tokens.
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("not used")
}

// GetPrivateClaimsFromScopes is unused: GetPrivateClaimsFromRequest is.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest adds the granted scopes to access tokens.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	if sc := req.GetScopes(); len(sc) > 0 {
		return map[string]any{"scope": strings.Join(sc, " ")}, nil
	}
	return nil, nil
}

// GetKeyByIDAndClientID: Verity does not take JWT client assertions.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("client assertions are not supported")
}

// ValidateJWTProfileScopes: Verity does not take the JWT bearer grant.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT bearer grant is not supported")
}

// Health reports whether the store answers.
func (s *storage) Health(ctx context.Context) error {
	_, err := s.p.opts.Store.Revision(ctx)
	return err
}
