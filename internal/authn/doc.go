// Package authn proves who a caller is: password hashing (argon2id), API
// bearer tokens, and the lockout that slows password guessing. It keeps
// secrets out of everything it returns except the one moment a secret is
// minted. authn imports no other Verity package.
package authn
