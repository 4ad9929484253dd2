// Package directory owns Verity's "who": users, groups, applications,
// service principals, named locations and directory role assignments, in
// the JSON shape of Microsoft Graph v1.0 so Graph exports import as they
// are. It defines each resource type with its strict decoding, defaults
// (Normalize) and validation (Validate, errors carrying the JSON path), the
// registry of kinds the API and policy as code iterate over, Entra's
// built-in directory role definitions (embedded), and Build, which compiles
// the stored objects into an immutable Snapshot for the decision hot path:
// lookups by id, UPN and appId, transitive group membership and directory
// roles without allocation.
//
// Applications are OIDC clients: appId is the client id, web, spa and
// publicClient hold the redirect URIs (validated as OAuth requires), and
// client secrets (clientsecret.go) live in store records, as a SHA-256
// hash bound to the registration they were issued to; VerifyClientSecret
// is how a token endpoint checks one. Neither a secret nor its metadata is
// ever part of a stored application, a snapshot or an export.
//
// Identity providers (identityprovider.go) are external OpenID Connect
// providers people sign in through: Graph's openIdConnectIdentityProvider
// with the issuer, claim and group mapping, just-in-time provisioning,
// domain hints and the rule for trusting their MFA. Their client secret is
// write-only and kept sealed (by a Sealer: the keyring) in a store record
// bound to the registration, never in the object.
//
// Verity departs from Graph where policy as code needs it: group display
// names are unique (case-insensitively), so a policy can name a group, and
// a group's members are stored in the group itself ("members"), a field
// the API strips from Graph-shaped output (Group.GraphView).
//
// directory imports only store and strictjson; it never imports api,
// proxy or cmd.
package directory
