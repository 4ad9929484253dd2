// Package api serves Verity's admin REST API under /api/v1/, with
// Microsoft Graph-shaped resource paths and bodies, plus the operational
// endpoints /healthz, /readyz and /metrics. It is a policy enforcement
// point: every call is authenticated, authorised by the decision package,
// and recorded in the audit table. Errors are JSON problem objects with a
// stable code. api imports domain packages; none of them import api.
package api
