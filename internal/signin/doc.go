// Package signin is Verity's interactive sign-in: the pages a person signs
// in with (user name and password, then what conditional access asks for:
// a one-time code, a recovery code, enrolling an authenticator, changing
// the password), the sessions that result, and the sign-in log.
//
// Every attempt runs conditional access on the decision snapshot with the
// full signal set (the user, its groups and directory roles, the target
// application, the client's address with its named locations and
// country, the client app type, the methods used so far) and enforces the
// answer: a block ends the attempt; unmet controls become the next steps;
// the session controls (sign-in frequency) go on the session.
//
// State lives in the store's records, so that any node can continue an
// attempt another node began: a sign-in in progress is a "signinFlow"
// record that expires in ten minutes, a session a "session" record, a
// user's second factors one "authMethods" record (the TOTP secret sealed).
// Record ids are SHA-256 digests of the random secrets the browser holds
// in cookies, so the database never holds a usable cookie.
//
// Federation (federation.go, federatedusers.go) signs people in through
// external OpenID Connect identity providers (directory.IdentityProvider):
// the authorization code flow with PKCE, state and nonce in a single-use
// "federatedSignIn" record, the ID token verified with go-oidc, the
// account linked to a user by a "federatedIdentity" record (or the user
// provisioned just in time), and then the same attempt, conditional access
// and sign-in log as a password sign-in, with the federated method bits.
//
// The pages are server-rendered HTML that works without JavaScript; every
// form carries a CSRF token bound to the attempt (or, before there is one,
// to a SameSite=Strict cookie), and every cookie is HttpOnly, Secure and
// __Host- prefixed.
package signin
