package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/verityhq/verity/internal/directory"
)

// client is an application as an OIDC client. It implements op.Client.
type client struct {
	p   *Provider
	app *directory.Application
	sp  *directory.ServicePrincipal
	// hasSecrets says the application holds live client secrets.
	hasSecrets bool
	// public says the flow at hand is a public client's (see flowPublic).
	public bool
}

var _ op.Client = (*client)(nil)

// errUnknownClient answers a client id that names no application able to
// sign users in here.
var errUnknownClient = errors.New("unknown client")

// client returns the application appID as a client: an error wrapping
// errUnknownClient when there is no such application or it has no
// enabled service principal in the tenant. Whether the flow is public is
// taken from ctx when the request's own records say (a code or refresh
// token being redeemed), otherwise from the application alone.
func (p *Provider) client(ctx context.Context, appID string) (*client, error) {
	appID = strings.ToLower(strings.TrimSpace(appID))
	memo := infoFrom(ctx).clients
	if memo != nil {
		memo.mu.Lock()
		c, ok := memo.m[appID]
		memo.mu.Unlock()
		if ok {
			return c, nil
		}
	}
	c, err := p.lookupClient(ctx, appID)
	if err == nil && memo != nil {
		memo.mu.Lock()
		if memo.m == nil {
			memo.m = map[string]*client{}
		}
		memo.m[appID] = c
		memo.mu.Unlock()
	}
	return c, err
}

// lookupClient finds the application and service principal of appID in
// the snapshot and whether it holds client secrets.
func (p *Provider) lookupClient(ctx context.Context, appID string) (*client, error) {
	dir := p.opts.Live.Current().Directory()
	app, ok := dir.ApplicationByAppID(appID)
	if !ok || appID == "" {
		return nil, fmt.Errorf("client %q: no application with this appId: %w", appID, errUnknownClient)
	}
	sp, ok := dir.ServicePrincipalByAppID(appID)
	if !ok || !sp.Enabled() {
		return nil, fmt.Errorf("client %s: the application has no enabled service principal in this tenant: %w", appID, errUnknownClient)
	}
	now := time.Now()
	has, ok := p.secrets.holdsSecrets(appID, now)
	if !ok {
		secrets, err := directory.ClientSecrets(ctx, p.opts.Store, app)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		has = len(secrets) > 0
		p.secrets.rememberHolds(appID, has, now)
	}
	c := &client{p: p, app: app, sp: sp, hasSecrets: has}
	if h, ok := ctx.Value(flowKey{}).(*flowHint); ok && h.known {
		c.public = h.public
	} else {
		c.public = !c.hasSecrets || app.IsFallbackPublicClient
	}
	return c, nil
}

// flowKey carries a *flowHint in a request's context.
type flowKey struct{}

// flowHint is what the token and revocation endpoints learn from the
// code or refresh token presented before the library asks for the client:
// whether the authorization was a public client's.
type flowHint struct {
	known  bool
	public bool
}

// flowPublic says whether an authorization that redirects to uri is a
// public client's: a spa or publicClient redirect URI always is, a web
// one when the application holds no client secret or is marked
// isFallbackPublicClient. ok is false when uri is not registered, exactly.
func (c *client) flowPublic(uri string) (public, ok bool) {
	a := c.app
	if a.SPA != nil && slices.Contains(a.SPA.RedirectURIs, uri) {
		return true, true
	}
	if a.PublicClient != nil && (slices.Contains(a.PublicClient.RedirectURIs, uri) || loopbackMatch(a.PublicClient.RedirectURIs, uri)) {
		return true, true
	}
	if a.Web != nil && slices.Contains(a.Web.RedirectURIs, uri) {
		return !c.hasSecrets || a.IsFallbackPublicClient, true
	}
	return false, false
}

// GetID is the appId.
func (c *client) GetID() string { return c.app.AppID }

// RedirectURIs lists every registered redirect URI, of all platforms.
func (c *client) RedirectURIs() []string {
	var out []string
	if c.app.Web != nil {
		out = append(out, c.app.Web.RedirectURIs...)
	}
	if c.app.SPA != nil {
		out = append(out, c.app.SPA.RedirectURIs...)
	}
	if c.app.PublicClient != nil {
		out = append(out, c.app.PublicClient.RedirectURIs...)
	}
	return out
}

// PostLogoutRedirectURIs are the web logoutUrl and the redirect URIs.
func (c *client) PostLogoutRedirectURIs() []string {
	out := c.RedirectURIs()
	if c.app.Web != nil && c.app.Web.LogoutURL != "" {
		out = append(out, c.app.Web.LogoutURL)
	}
	return out
}

// ApplicationType is web for a confidential flow, native for an
// application with only publicClient redirect URIs, user agent otherwise.
// Verity checks redirect URIs itself (exactly), so the type only informs
// the library's remaining checks.
func (c *client) ApplicationType() op.ApplicationType {
	switch {
	case !c.public:
		return op.ApplicationTypeWeb
	case c.app.PublicClient != nil && c.app.Web == nil && c.app.SPA == nil:
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeUserAgent
}

// AuthMethod is none for a public flow; client_secret_basic otherwise,
// which the library also accepts in the form body (client_secret_post).
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

// ResponseTypes: the authorization code flow only, no implicit grant.
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes: code and refresh token for everyone, client credentials for
// applications with secrets.
func (c *client) GrantTypes() []oidc.GrantType {
	g := []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	if c.hasSecrets {
		g = append(g, oidc.GrantTypeClientCredentials)
	}
	return g
}

// LoginURL is the provider's login endpoint for the auth request.
func (c *client) LoginURL(id string) string { return pathLogin + "?id=" + url.QueryEscape(id) }

// AccessTokenType: access tokens are JWTs signed by the keyring.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// IDTokenLifetime is the configured ID token lifetime.
func (c *client) IDTokenLifetime() time.Duration { return c.p.opts.IDTokenLifetime }

// DevMode is never on: no http or glob redirect URIs beyond the rules.
func (c *client) DevMode() bool { return false }

func identity(scopes []string) []string { return scopes }

// RestrictAdditionalIdTokenScopes keeps the scopes as asked.
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string { return identity }

// RestrictAdditionalAccessTokenScopes keeps the scopes as asked.
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string { return identity }

// IsScopeAllowed refuses scopes beyond OpenID Connect's own: Verity has no
// API permission model yet, so other scopes are dropped.
func (c *client) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion puts the profile claims (name,
// preferred_username, email) in the ID token, as Entra does.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew is zero: Verity's nodes keep time.
func (c *client) ClockSkew() time.Duration { return 0 }

// loopbackMatch reports whether uri is a loopback redirect of a native
// application registered without a port: RFC 8252 §7.3 — the client
// listens on a port the operating system picks, so the server accepts
// any port for http://127.0.0.1, http://[::1] and http://localhost, with
// the path and query exactly as registered.
func loopbackMatch(registered []string, uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.Port() == "" || u.User != nil || u.Fragment != "" {
		return false
	}
	host := u.Hostname()
	if host != "127.0.0.1" && host != "::1" && host != "localhost" {
		return false
	}
	for _, r := range registered {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme != "http" || ru.Port() != "" || ru.Hostname() != host {
			continue
		}
		if strings.TrimSuffix(ru.Path, "/") == strings.TrimSuffix(u.Path, "/") && ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}
