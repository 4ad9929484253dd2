// Package proxy is Verity's identity-aware proxy: the policy enforcement
// point for HTTP applications published as app routes.
//
// Every request to a route's host is matched to its route (host, then the
// longest path prefix), and — unless its path is one of the route's
// explicit public paths or it is a CORS preflight the route lets through —
// gets a decision of its own: the browser's session (a sealed, host-only
// cookie naming a sign-in session) gives the signals, and the decision
// engine answers for the route's application (conditional access) and the
// data action the route's rules ask for the method and path (RBAC). Allow
// forwards the request with a signed identity assertion; challenge sends
// the browser to sign-in for exactly the missing step and back; deny
// answers 403 with a correlation id and a reason code. Decisions are never
// cached; sessions are read from the store at most every
// sessionFreshness, so that a revoked session stops working on every node
// within a second. Every decision is queued to the audit log; when the
// log cannot keep up, the proxy fails closed unless configured otherwise.
// Requests go round robin to the route's upstreams that are up: one whose
// connections fail is left out for a back-off, and a route's health check
// takes out those failing its probes (upstream.go, health.go).
package proxy
