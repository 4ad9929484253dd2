package api

import (
	"net/http"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/strictjson"
)

// Version prefix of every API route.
const v1 = "/api/v1"

func (s *Server) registerRoutes() {
	s.handle(http.MethodGet, "/healthz", "", Public, s.healthz)
	s.handle(http.MethodGet, "/readyz", "", Public, s.readyz)
	s.handle(http.MethodGet, "/metrics", "", Public, func(w http.ResponseWriter, r *http.Request, _ *call) error {
		s.metricsHandler().ServeHTTP(w, r)
		return nil
	})

	s.handle(http.MethodPost, v1+"/login", "auth.login", Public, s.login)
	s.handle(http.MethodPost, v1+"/logout", "auth.logout", Authenticated, s.logout)
	s.handle(http.MethodGet, v1+"/me", "auth.me", Authenticated, s.me)
	s.handle(http.MethodGet, v1+"/status", "status.get", Read, s.status)

	s.collection(v1+"/users", directoryKind(directory.Users, true))
	s.handle(http.MethodGet, v1+"/users/{id}/memberOf", "users.memberOf", Read, s.memberOf(false))
	s.handle(http.MethodGet, v1+"/users/{id}/transitiveMemberOf", "users.transitiveMemberOf", Read, s.memberOf(true))
	s.handle(http.MethodPost, v1+"/users/{id}/password", "users.setPassword", Write, s.setPassword)

	s.collection(v1+"/groups", directoryKind(directory.Groups, false))
	s.handle(http.MethodGet, v1+"/groups/{id}/members", "groups.members", Read, s.members(false))
	s.handle(http.MethodGet, v1+"/groups/{id}/transitiveMembers", "groups.transitiveMembers", Read, s.members(true))
	s.handle(http.MethodPost, v1+"/groups/{id}/members/$ref", "groups.addMember", Write, s.addMember)
	s.handle(http.MethodDelete, v1+"/groups/{id}/members/{member}/$ref", "groups.removeMember", Write, s.removeMember)
	s.handle(http.MethodGet, v1+"/groups/{id}/memberOf", "groups.memberOf", Read, s.memberOf(false))
	s.handle(http.MethodGet, v1+"/groups/{id}/transitiveMemberOf", "groups.transitiveMemberOf", Read, s.memberOf(true))

	s.collection(v1+"/applications", directoryKind(directory.Applications, false))
	s.collection(v1+"/servicePrincipals", directoryKind(directory.ServicePrincipals, false))
	s.collection(v1+"/identity/conditionalAccess/namedLocations", directoryKind(directory.NamedLocations, false))
	s.collection(v1+"/identity/conditionalAccess/policies", caPolicyKind())
	s.handle(http.MethodPost, v1+"/identity/conditionalAccess/evaluate", "conditionalAccess.evaluate", Read, s.evaluate)
	replay := s.handle(http.MethodPost, v1+"/identity/conditionalAccess/replay", "conditionalAccess.replay", Read, s.replay)
	replay.MaxBody = s.opts.HTTP.ApplyMaxBodyBytes

	s.handle(http.MethodGet, v1+"/roleManagement/directory/roleDefinitions", "directoryRoleDefinitions.list", Read, s.listDirectoryRoles)
	s.handle(http.MethodGet, v1+"/roleManagement/directory/roleDefinitions/{id}", "directoryRoleDefinitions.get", Read, s.getDirectoryRole)
	s.collection(v1+"/roleManagement/directory/roleAssignments", directoryKind(directory.RoleAssignments, false))

	s.handle(http.MethodGet, v1+"/authorization/roleDefinitions", "roleDefinitions.list", Read, s.listRBACRoles)
	s.collection(v1+"/authorization/roleAssignments", rbacKind())

	s.handle(http.MethodGet, v1+"/auditLogs/directoryAudits", "auditLogs.list", Read, s.listAudit)
	s.registerApply()
}

func rbacKind() resourceKind {
	return resourceKind{
		kind:   rbac.Kind,
		action: "roleAssignments",
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
