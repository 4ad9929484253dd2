// Package access is Verity's conditional access engine: Microsoft Entra
// conditional access policies in the JSON shape of Graph's
// conditionalAccessPolicy, parsed and validated (ParsePolicy,
// ParsePolicies, Policy.Validate), compiled into an immutable Engine
// (Compile) and evaluated against the signals of one sign-in (Request) on
// the hot path (Engine.Evaluate, no lock, no I/O, no allocation once a
// Result is reused). Each decision explains itself per policy with Graph's
// What If vocabulary (policyApplies, analysisReasons) and renders as the
// body of Graph's POST /identity/conditionalAccess/evaluate
// (Result.WhatIf); ParseEvaluateRequest reads that endpoint's request.
//
// Evaluation follows Microsoft's documented semantics (the Entra and Graph
// pages testdata/README.md cites): all configured conditions
// must hold and an exclude beats an include; every applying enabled policy
// must be satisfied; a block wins; unmet controls are prompted in the
// documented order; report-only policies are reported, never enforced;
// disabled policies are ignored. Where Microsoft is silent, the doc
// comment of the name concerned says what Verity does (session controls
// merge to the most restrictive, unsupported properties are handled as
// unsupported.go describes, missing request signals make the conditions
// that need them fail, as the What If API documents).
//
// The hot path works on bit masks over policies: Compile turns every id a
// policy names (users, groups, roles, apps, locations) into a token with
// the masks of the policies that include and exclude it, and every small
// condition (client app, platform, risk levels) into one mask per value.
// Evaluate then ORs the masks of the request's tokens (its user, its
// groups, its roles, its app, the locations containing its IP) and ANDs
// the conditions: the cost grows with the request, not with the number of
// policies or of groups in the directory.
//
// access imports directory, strictjson and access/devicefilter; it never
// imports api, proxy, decision or cmd.
package access
