// Package decision is the policy decision point. It owns the compiled,
// immutable Snapshot of directory and policy state that every decision
// reads, the Live holder that rebuilds it from the store's change feed and
// swaps it in atomically, and the decisions themselves. For now the only
// decision is the built-in Owner/Reader check on Verity's admin API; the
// conditional access and RBAC engines plug in here.
//
// decision imports directory, rbac and store; never api, proxy or cmd.
package decision
