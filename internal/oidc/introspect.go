package oidc

import (
	"context"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
)

// introspect is RFC 7662 introspection for confidential clients
// (client_secret_basic): an access token is active while its signature,
// expiry and grant hold and it is not revoked; a refresh token while it is
// the current one of a live family, and only to the client it was issued
// to.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token, clientID, err := op.ParseTokenIntrospectionRequest(r, p.op)
	if err != nil {
		op.RequestError(w, r, oidc.ErrInvalidClient().WithDescription("introspection needs a confidential client's id and secret (client_secret_basic)").WithParent(err), nil)
		return
	}
	httphelper.MarshalJSON(w, p.introspectToken(r.Context(), token, strings.ToLower(clientID)))
}

func (p *Provider) introspectToken(ctx context.Context, token, clientID string) *oidc.IntrospectionResponse {
	inactive := &oidc.IntrospectionResponse{}
	if validSecret(token, refreshPrefix) {
		rec, err := p.opts.Store.GetRecord(ctx, kindRefreshToken, digest(token))
		if err != nil {
			return inactive
		}
		b, err := decode[refreshRecord](rec)
		if err != nil || b.State != refreshActive || b.ClientID != clientID || !p.opts.Now().Before(b.ExpiresAt) {
			return inactive
		}
		g, err := loadGrant(ctx, p.opts.Store, b.GrantID)
		if err != nil || !p.opts.Live.Current().Directory().PrincipalEnabled(g.UserID) {
			return inactive
		}
		return &oidc.IntrospectionResponse{Active: true, Scope: g.Scopes, ClientID: g.ClientID, TokenType: "refresh_token",
			Subject: g.UserID, Expiration: oidc.FromTime(b.ExpiresAt), IssuedAt: oidc.FromTime(b.IssuedAt),
			AuthTime: oidc.FromTime(g.AuthTime), AuthenticationMethodsReferences: g.AMR, Issuer: op.IssuerFromContext(ctx)}
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, p.op.AccessTokenVerifier(ctx))
	if err != nil {
		return inactive
	}
	g, err := p.accessTokenLive(ctx, claims.JWTID, claims.Subject)
	if err != nil {
		return inactive
	}
	resp := &oidc.IntrospectionResponse{Active: true, Scope: claims.Scopes, ClientID: claims.ClientID, TokenType: oidc.BearerToken,
		Expiration: claims.Expiration, IssuedAt: claims.IssuedAt, NotBefore: claims.NotBefore, Subject: claims.Subject,
		Audience: claims.Audience, Issuer: claims.Issuer, JWTID: claims.JWTID}
	if g != nil {
		resp.AuthTime, resp.AuthenticationMethodsReferences = oidc.FromTime(g.AuthTime), g.AMR
		if u, ok := p.opts.Live.Current().Directory().User(g.UserID); ok {
			resp.Username = u.UserPrincipalName
		}
	}
	return resp
}
