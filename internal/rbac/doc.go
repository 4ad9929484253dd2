// Package rbac is Verity's Azure RBAC engine: role definitions in the shape
// of `az role definition list` (Azure's 928 built-in roles are embedded,
// plus Verity's own), role assignments, deny assignments, and a compiled
// Engine that answers "may principal P perform action A at scope S?"
// (Check), "what does P hold at S?" (Permissions) and "who may perform A at
// S?" (WhoCan).
//
// Semantics are Azure's, as documented (testdata/README.md cites the
// pages): actions are {Provider}/{resourceType}/{operation}; "*" in a
// pattern is any run of characters, "/" included ("*/read",
// "Microsoft.Compute/*"), and patterns compare case-insensitively
// (Contributor's NotActions "Microsoft.Authorization/*/Write" excludes
// ".../roleAssignments/write"). A permission block grants Actions minus
// NotActions on the control plane and DataActions minus NotDataActions on
// the data plane; the planes never mix (Owner's "*" reads no blob).
// NotActions only subtract within their block: role assignments and
// blocks are additive. An assignment covers its scope and every scope
// below it (path segments, case-insensitive; Options.Hierarchy adds
// management groups above subscriptions); a principal holds the
// assignments of its transitive groups. Deny assignments are evaluated
// first and win: one applies when it is at the scope or above (at the
// scope only with doNotApplyToChildScopes), names the principal, one of
// its groups or everyone (zero GUID, SystemDefined), and does not exclude
// the principal or one of its groups. An assignment outside its role's
// AssignableScopes is left out at Compile (Engine.Skipped). An assignment
// or permission block with an ABAC condition grants only when the
// condition compiles (Options.CompileCondition, package rbac/condition)
// and holds; without a compiler it never grants. An assignment with a
// window (StartDateTime, EndDateTime: Verity's form of an active
// assignment from Privileged Identity Management) grants only while the
// request's time is in it, start inclusive, end exclusive; the compiled
// engine compares it on every check, so an activation lapses on time
// without a rebuild.
//
// Verity's admin API is expressed as actions at scopes ("/",
// "/directory/users/{id}", "/access/policies", "/audit"). Its own
// resources use the Verity.* namespace: Verity.Directory/{users,groups,
// applications,servicePrincipals,devices,namedLocations}/{read,write,
// delete} (and users/revokeSessions/action, groups/members/write),
// Verity.Access/{policies,whatIf}/... (policies read/write/delete,
// whatIf/action), Verity.Apps/routes/{read,write,delete} (the proxy's
// routes, written at /apps/{appId} of their application),
// Verity.Identity/{riskyUsers,riskDetections}/...,
// Verity.Audit/{events/read,export/action}, Verity.Tenant/manifest/
// {read,write} and Verity.System/status/read. Granting access uses Azure's
// own Microsoft.Authorization/{roleAssignments,roleDefinitions,
// denyAssignments,directoryRoleAssignments}/{read,write,delete}, so that
// the built-in roles keep their Azure meaning: Contributor, whose
// NotActions exclude Microsoft.Authorization writes, cannot grant itself
// more. builtin/verity-role-definitions.json defines Verity's roles.
//
// The hot path (Check) reads immutable compiled state: interned scopes
// with precomputed ancestor chains, a per-principal contiguous index of
// assignments, and per-role matchers (exact map, prefix, suffix and infix
// lists, globs). It takes no lock and does not allocate once its Decision
// is reused.
//
// rbac imports strictjson only; never api, proxy, decision or cmd.
package rbac
