package api

import (
	"net/http"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/strictjson"
)

// Version prefix of every API route.
const v1 = "/api/v1"

func (s *Server) registerRoutes() {
	s.handle(http.MethodGet, "/healthz", "", public, s.healthz)
	s.handle(http.MethodGet, "/readyz", "", public, s.readyz)
	s.handle(http.MethodGet, "/metrics", "", public, func(w http.ResponseWriter, r *http.Request, _ *call) error {
		s.metricsHandler().ServeHTTP(w, r)
		return nil
	})

	s.handle(http.MethodPost, v1+"/login", "auth.login", public, s.login)
	s.handle(http.MethodPost, v1+"/logout", "auth.logout", authenticated, s.logout)
	s.handle(http.MethodGet, v1+"/me", "auth.me", authenticated, s.me)
	s.handle(http.MethodGet, v1+"/status", "status.get", allow(decision.ActionReadStatus, "/"), s.status)

	// Every other route is an action on a scope, decided by the RBAC
	// engine (docs/api.md lists them). Role assignments use Azure's own
	// Microsoft.Authorization actions, so Owner, Contributor and User
	// Access Administrator mean here what they mean in Azure.
	const users, groups = "/directory/users/{id}", "/directory/groups/{id}"
	s.collection(v1+"/users", directoryKind(directory.Users, true, "Verity.Directory/users", "/directory/users"))
	s.handle(http.MethodGet, v1+"/users/{id}/memberOf", "users.memberOf", allow("Verity.Directory/users/read", users), s.memberOf(false))
	s.handle(http.MethodGet, v1+"/users/{id}/transitiveMemberOf", "users.transitiveMemberOf", allow("Verity.Directory/users/read", users), s.memberOf(true))
	s.handle(http.MethodPost, v1+"/users/{id}/password", "users.setPassword", allow("Verity.Directory/users/write", users), s.setPassword)

	s.collection(v1+"/groups", directoryKind(directory.Groups, false, "Verity.Directory/groups", "/directory/groups"))
	s.handle(http.MethodGet, v1+"/groups/{id}/members", "groups.members", allow("Verity.Directory/groups/read", groups), s.members(false))
	s.handle(http.MethodGet, v1+"/groups/{id}/transitiveMembers", "groups.transitiveMembers", allow("Verity.Directory/groups/read", groups), s.members(true))
	s.handle(http.MethodPost, v1+"/groups/{id}/members/$ref", "groups.addMember", allow("Verity.Directory/groups/members/write", groups), s.addMember)
	s.handle(http.MethodDelete, v1+"/groups/{id}/members/{member}/$ref", "groups.removeMember", allow("Verity.Directory/groups/members/write", groups), s.removeMember)
	s.handle(http.MethodGet, v1+"/groups/{id}/memberOf", "groups.memberOf", allow("Verity.Directory/groups/read", groups), s.memberOf(false))
	s.handle(http.MethodGet, v1+"/groups/{id}/transitiveMemberOf", "groups.transitiveMemberOf", allow("Verity.Directory/groups/read", groups), s.memberOf(true))

	const app = "/directory/applications/{id}"
	s.applications(v1 + "/applications") // the collection; reads show passwordCredentials from the secret records
	s.handle(http.MethodPost, v1+"/applications/{id}/addPassword", "applications.addPassword", allow("Verity.Directory/applications/credentials/write", app), s.addPassword)
	s.handle(http.MethodPost, v1+"/applications/{id}/removePassword", "applications.removePassword", allow("Verity.Directory/applications/credentials/write", app), s.removePassword)
	s.collection(v1+"/servicePrincipals", directoryKind(directory.ServicePrincipals, false, "Verity.Directory/servicePrincipals", "/directory/servicePrincipals"))
	s.collection(v1+"/identity/conditionalAccess/namedLocations", directoryKind(directory.NamedLocations, false, "Verity.Directory/namedLocations", "/directory/namedLocations"))
	s.identityProviders(v1 + "/identity/identityProviders") // the client secret is write-only, sealed beside the object
	s.collection(v1+"/identity/conditionalAccess/policies", caPolicyKind())
	s.handle(http.MethodPost, v1+"/identity/conditionalAccess/evaluate", "conditionalAccess.evaluate", allow("Verity.Access/whatIf/action", "/access/policies"), s.evaluate)
	replay := s.handle(http.MethodPost, v1+"/identity/conditionalAccess/replay", "conditionalAccess.replay", allow("Verity.Access/whatIf/action", "/access/policies"), s.replay)
	replay.MaxBody = s.opts.HTTP.ApplyMaxBodyBytes
	s.appRoutes(v1 + "/appRoutes") // written at /apps/{appId} of the route's application

	s.handle(http.MethodGet, v1+"/roleManagement/directory/roleDefinitions", "directoryRoleDefinitions.list", allow("Microsoft.Authorization/directoryRoleDefinitions/read", "/directory"), s.listDirectoryRoles)
	s.handle(http.MethodGet, v1+"/roleManagement/directory/roleDefinitions/{id}", "directoryRoleDefinitions.get", allow("Microsoft.Authorization/directoryRoleDefinitions/read", "/directory"), s.getDirectoryRole)
	s.collection(v1+"/roleManagement/directory/roleAssignments", directoryKind(directory.RoleAssignments, false, "Microsoft.Authorization/directoryRoleAssignments", "/directory"))

	s.handle(http.MethodGet, v1+"/authorization/roleDefinitions/builtIn", "roleDefinitions.listBuiltIn", allow("Microsoft.Authorization/roleDefinitions/read", "/"), s.listRBACRoles)
	s.collection(v1+"/authorization/roleDefinitions", customRoleKind())
	s.collection(v1+"/authorization/denyAssignments", denyKind())
	s.collection(v1+"/authorization/roleAssignments", rbacKind())
	s.handle(http.MethodGet, v1+"/authorization/permissions", "authorization.permissions", allow("Microsoft.Authorization/roleAssignments/read", "/"), s.effectiveAccess)
	s.handle(http.MethodGet, v1+"/authorization/whoCan", "authorization.whoCan", allow("Microsoft.Authorization/roleAssignments/read", "/"), s.whoCan)

	s.handle(http.MethodGet, v1+"/auditLogs/directoryAudits", "auditLogs.list", allow("Verity.Audit/events/read", "/audit"), s.listAudit)
	s.handle(http.MethodGet, v1+"/auditLogs/signIns", "auditLogs.signIns", allow("Verity.Audit/signIns/read", "/audit"), s.listSignIns)
	// Just-in-time roles (docs/pim.md): the handlers check each request
	// against the caller's own eligibilities or rights at its scope.
	s.handle(http.MethodGet, v1+"/pim/eligibilities", "pim.eligibilities.list", authenticated, s.listEligibilities)
	s.handle(http.MethodGet, v1+"/pim/requests", "pim.requests.list", authenticated, s.listPIMRequests)
	s.handle(http.MethodPost, v1+"/pim/requests", "pim.requests.create", authenticated, s.createPIMRequest)
	s.handle(http.MethodGet, v1+"/pim/requests/{id}", "pim.requests.get", authenticated, s.getPIMRequest)
	s.handle(http.MethodPost, v1+"/pim/requests/{id}/approve", "pim.requests.approve", authenticated, s.decidePIMRequest(true))
	s.handle(http.MethodPost, v1+"/pim/requests/{id}/deny", "pim.requests.deny", authenticated, s.decidePIMRequest(false))
	s.handle(http.MethodPost, v1+"/pim/requests/{id}/cancel", "pim.requests.cancel", authenticated, s.cancelPIMRequest)
	s.handle(http.MethodGet, v1+"/pim/policies", "pim.policies.get", authenticated, s.getPIMPolicy)
	s.handle(http.MethodPut, v1+"/pim/policies", "pim.policies.set", authenticated, s.putPIMPolicy)
	s.handle(http.MethodGet, v1+"/pim/findings", "pim.findings", allow(pimRead, "/"), s.pimFindings)
	s.accessReviews(v1 + "/accessReviews") // access reviews (docs/access-reviews.md): the handlers check each caller
	s.handle(http.MethodGet, v1+"/identityProtection/riskyUsers", "riskyUsers.list", allow("Verity.Identity/riskyUsers/read", "/identity"), s.listRiskyUsers)
	s.handle(http.MethodPost, v1+"/identityProtection/riskyUsers/confirmCompromised", "riskyUsers.confirmCompromised", allow("Verity.Identity/riskyUsers/write", "/identity"), s.setRisk(detect.RiskConfirmedCompromised))
	s.handle(http.MethodPost, v1+"/identityProtection/riskyUsers/dismiss", "riskyUsers.dismiss", allow("Verity.Identity/riskyUsers/write", "/identity"), s.setRisk(detect.RiskDismissed))
	s.handle(http.MethodGet, v1+"/security/alerts", "alerts.list", allow("Verity.Identity/alerts/read", "/identity"), s.listAlerts)
	s.handle(http.MethodGet, v1+"/security/alerts/{id}", "alerts.get", allow("Verity.Identity/alerts/read", "/identity"), s.getAlert)
	s.handle(http.MethodPost, v1+"/security/alerts/{id}/acknowledge", "alerts.acknowledge", allow("Verity.Identity/alerts/write", "/identity"), s.updateAlert(detect.StatusAcknowledged))
	s.handle(http.MethodPost, v1+"/security/alerts/{id}/close", "alerts.close", allow("Verity.Identity/alerts/write", "/identity"), s.updateAlert(detect.StatusClosed))
	s.handle(http.MethodGet, v1+"/auditLogs/log", "auditLogs.log", allow("Verity.Audit/events/read", "/audit"), s.auditLogInfo)
	s.handle(http.MethodGet, v1+"/auditLogs/checkpoint", "auditLogs.checkpoint.get", allow("Verity.Audit/checkpoints/read", "/audit"), s.getCheckpoint)
	s.handle(http.MethodPost, v1+"/auditLogs/checkpoint", "auditLogs.checkpoint.create", allow("Verity.Audit/checkpoints/write", "/audit"), s.createCheckpoint)
	s.handle(http.MethodPost, v1+"/auditLogs/checkpoint/cosignature", "auditLogs.checkpoint.cosign", allow("Verity.Audit/checkpoints/write", "/audit"), s.cosignCheckpoint).MaxBody = 64 << 10
	s.handle(http.MethodGet, v1+"/auditLogs/proofs/inclusion", "auditLogs.proofs.inclusion", allow("Verity.Audit/proofs/read", "/audit"), s.inclusionProof)
	s.handle(http.MethodGet, v1+"/auditLogs/proofs/consistency", "auditLogs.proofs.consistency", allow("Verity.Audit/proofs/read", "/audit"), s.consistencyProof)
	s.registerApply()
	s.registerJIT()
}

func rbacKind() resourceKind {
	return resourceKind{
		kind:      rbac.Kind,
		action:    "roleAssignments",
		operation: "Microsoft.Authorization/roleAssignments",
		scope:     "/",
		objectScope: func(r directory.Resource) string {
			return r.(*rbac.Assignment).Scope
		},
		decode: func(body []byte) (directory.Resource, error) {
			var a rbac.Assignment
			if err := strictjson.Unmarshal(body, &a); err != nil {
				return nil, err
			}
			return &a, nil
		},
		object: rbacObject,
		view: func(r directory.Resource) any {
			a := r.(*rbac.Assignment)
			if role, ok := rbac.LookupRole(a.RoleDefinitionID); ok {
				a.RoleDefinitionName = role.RoleName
			}
			return a
		},
	}
}

func (s *Server) listDirectoryRoles(w http.ResponseWriter, r *http.Request, c *call) error {
	return writeJSON(w, http.StatusOK, map[string]any{"value": directory.BuiltinRoles()})
}

func (s *Server) getDirectoryRole(w http.ResponseWriter, r *http.Request, c *call) error {
	role, ok := directory.RoleByID(r.PathValue("id"))
	if !ok {
		return problemf(http.StatusNotFound, CodeNotFound, "no built-in directory role with template id %q", r.PathValue("id"))
	}
	return writeJSON(w, http.StatusOK, role)
}

func (s *Server) listRBACRoles(w http.ResponseWriter, r *http.Request, c *call) error {
	return writeJSON(w, http.StatusOK, map[string]any{"value": rbac.BuiltinRoles()})
}
