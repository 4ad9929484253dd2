// Package oidc is Verity's OpenID Connect provider: the authorization code
// flow with PKCE for people, the client credentials grant for workloads,
// refresh tokens, introspection, revocation, userinfo, RP-initiated logout
// and discovery, on github.com/zitadel/oidc/v3's op package.
//
// Clients are the directory's applications (client_id = appId); their
// redirect URIs match exactly as registered. A flow through a spa or
// publicClient redirect URI, or of an application without client secrets
// or marked isFallbackPublicClient, is a public client's: PKCE with S256 is
// required and no secret is asked. Any other flow is a confidential
// client's: the secret is verified with directory.VerifyClientSecret
// (client_secret_basic or client_secret_post). An application needs an
// enabled service principal in the tenant to be a client at all, as in
// Entra.
//
// Sign-in is internal/signin's: the login endpoint calls signin.Require
// with the client as the application, so conditional access is evaluated
// for every authorization, and binds the auth request to the session.
// Tokens are signed by internal/keyring; state lives in store records keyed
// by the SHA-256 of every secret (codes, refresh tokens), never the secret.
//
// oidc imports access, decision, directory, keyring, signin and store; it
// must never import api or cmd.
package oidc
