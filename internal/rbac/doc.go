// Package rbac holds Azure-style role assignments: a principal, a role
// definition and a scope. For now it knows the two built-in roles that guard
// Verity's own admin API, Owner (everything) and Reader (read only), with
// their Azure role definition IDs so assignments carry over unchanged.
// rbac imports store-level packages only; never api, proxy or cmd.
package rbac
