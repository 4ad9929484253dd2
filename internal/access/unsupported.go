package access

import (
	"fmt"
	"slices"

	"github.com/verityhq/verity/internal/strictjson"
)

// How the engine treats what it cannot evaluate. There are three cases,
// and every finding below says which one applies:
//
//   - Targets Verity does not have (agent identities, Global Secure Access
//     traffic, the account-recovery user action): no Verity sign-in is one
//     of them, so they never match. That is exact, not an approximation.
//   - Conditions Verity cannot evaluate (times, device states, application
//     and service principal filters, the clients and protection-level
//     conditions, agent risk): the condition is assumed to hold. Conditions
//     only ever narrow a policy, so assuming them true makes the policy
//     apply to at least every sign-in it would apply to in Entra: Verity
//     errs towards enforcing. Evaluate reports each such condition in
//     PolicyResult.Assumed, and What If output lists it.
//   - Controls Verity cannot apply (app protection, approved client app,
//     terms of use, custom controls, Verified ID, and the session controls
//     of Defender for Cloud Apps, app-enforced restrictions, token
//     protection, Global Secure Access): they count as unmet, whatever the
//     request claims. A policy that needs one cannot be satisfied (OR with a
//     supported control still can).
//
// Insider risk and authentication flows are a fourth kind: Graph's What If
// request carries both signals, so Verity evaluates them from the request
// (absent means none, as in Graph), but Verity itself has no source for
// them, so a policy using them is noted.

// finding is one property Verity does not evaluate exactly.
type finding struct {
	path    string
	message string
	assumed Reason  // the condition is assumed to hold
	unmet   Control // the control can never be met
}

const (
	msgNeverMatches = "unsupported: %s; no Verity sign-in is one, so this never matches"
	msgAssumed      = "unsupported: %s; assumed to hold, so the policy applies whenever its other conditions do"
	msgUnmet        = "unsupported: %s; counts as an unmet control, so a policy that needs it cannot be satisfied"
)

// findings lists the properties of p that Verity does not evaluate exactly.
func (p *Policy) findings() []finding {
	var out []finding
	add := func(path, format, what string, assumed Reason, unmet Control) {
		out = append(out, finding{path, fmt.Sprintf(format, what), assumed, unmet})
	}
	if isSet(p.PartialEnablementStrategy) {
		add("partialEnablementStrategy", "unsupported: %s; the policy is evaluated as if fully enabled", "partial enablement", 0, 0)
	}
	c := &p.Conditions
	if u := c.Users; u != nil {
		if i := slices.Index(u.IncludeUsers, agentUsersAll); i >= 0 {
			add(strictjson.Index("conditions.users.includeUsers", i), msgNeverMatches, "agent users", 0, 0)
		}
		for _, g := range []struct {
			name string
			v    *ExternalUsers
		}{{"includeGuestsOrExternalUsers", u.IncludeGuestsOrExternalUsers}, {"excludeGuestsOrExternalUsers", u.ExcludeGuestsOrExternalUsers}} {
			if g.v != nil && g.v.ExternalTenants != nil && g.v.ExternalTenants.MembershipKind == "enumerated" {
				add("conditions.users."+g.name+".externalTenants", "partial: %s; matched against Request.ExternalTenantID, which Verity's own directory does not know", "enumerated external tenants", 0, 0)
			}
		}
	}
	if a := c.Applications; a != nil {
		if i := slices.Index(a.IncludeApplications, agentResourcesAll); i >= 0 {
			add(strictjson.Index("conditions.applications.includeApplications", i), msgNeverMatches, "agent resources", 0, 0)
		}
		if i := slices.Index(a.IncludeUserActions, ActionAccountRecovery); i >= 0 {
			add(strictjson.Index("conditions.applications.includeUserActions", i), msgNeverMatches, "the account recovery user action", 0, 0)
		}
		if isSet(a.NetworkAccess) {
			add("conditions.applications.networkAccess", msgNeverMatches, "Global Secure Access traffic", 0, 0)
		}
		if isSet(a.GlobalSecureAccess) {
			add("conditions.applications.globalSecureAccess", msgNeverMatches, "Global Secure Access traffic", 0, 0)
		}
		if a.ApplicationFilter != nil {
			add("conditions.applications.applicationFilter", msgAssumed, "filters on custom security attributes of applications", ReasonApplication, 0)
		}
		if isSet(a.IncludeProtectionLevels) {
			add("conditions.applications.includeProtectionLevels", msgAssumed, "protection levels", ReasonApplication, 0)
		}
	}
	if ca := c.ClientApplications; ca != nil {
		if ca.ServicePrincipalFilter != nil {
			add("conditions.clientApplications.servicePrincipalFilter", msgAssumed, "filters on custom security attributes of service principals", ReasonWorkloadIdentities, 0)
		}
		if len(ca.IncludeAgentIDServicePrincipals) > 0 {
			add("conditions.clientApplications.includeAgentIdServicePrincipals", msgNeverMatches, "agent identities", 0, 0)
		}
		if len(ca.ExcludeAgentIDServicePrincipals) > 0 || ca.AgentIDServicePrincipalFilter != nil {
			add("conditions.clientApplications", "unsupported: %s; ignored, as no Verity sign-in is one", "agent identity exclusions and filters", 0, 0)
		}
	}
	if slices.Contains(c.ClientAppTypes, "easSupported") || slices.Contains(c.ClientAppTypes, "easUnsupported") {
		add("conditions.clientAppTypes", "unsupported: %s; read as exchangeActiveSync, every Exchange ActiveSync client whatever its platform", "easSupported and easUnsupported", 0, 0)
	}
	if d := c.Devices; d != nil && len(d.IncludeDevices)+len(d.ExcludeDevices)+len(d.IncludeDeviceStates)+len(d.ExcludeDeviceStates) > 0 {
		add("conditions.devices", msgAssumed, "device states (deprecated; use a device filter)", ReasonDevices, 0)
	}
	if isSet(c.DeviceStates) {
		add("conditions.deviceStates", msgAssumed, "device states (deprecated; use a device filter)", ReasonDevices, 0)
	}
	if isSet(c.Times) {
		add("conditions.times", msgAssumed, "the time condition", ReasonTime, 0)
	}
	if isSet(c.Clients) {
		add("conditions.clients", msgAssumed, "the clients condition", ReasonClientApps, 0)
	}
	if c.AgentIDRiskLevels != nil {
		add("conditions.agentIdRiskLevels", msgAssumed, "agent identity risk", ReasonSignInRisk, 0)
	}
	if isSet(c.Agents) {
		add("conditions.agents", msgNeverMatches, "agent users", 0, 0)
	}
	if isSet(c.AgentContext) {
		add("conditions.agentContext", msgAssumed, "agent contexts", ReasonUsers, 0)
	}
	if c.InsiderRiskLevels != nil {
		add("conditions.insiderRiskLevels", "unsupported: %s; evaluated only against the insiderRiskLevel a request supplies (absent means none, as in Graph's evaluate)", "Verity has no insider risk source", 0, 0)
	}
	if c.AuthenticationFlows != nil {
		add("conditions.authenticationFlows", "unsupported: %s; evaluated only against the authenticationFlow a request supplies (absent means none, as in Graph's evaluate)", "Verity detects no device code or authentication transfer flows", 0, 0)
	}
	if p.State == StateReportOnly && c.Applications != nil && len(c.Applications.IncludeUserActions) > 0 {
		add("state", "unsupported: %s; Verity evaluates and reports the policy like any report-only policy, never enforcing it", "Entra does not support report-only mode for user actions", 0, 0)
	}

	if g := p.GrantControls; g != nil {
		for i, b := range g.BuiltInControls {
			switch b {
			case "approvedApplication":
				add(strictjson.Index("grantControls.builtInControls", i), msgUnmet, "approved client apps (Intune)", 0, ControlApprovedApplication)
			case "compliantApplication":
				add(strictjson.Index("grantControls.builtInControls", i), msgUnmet, "app protection policies (Intune)", 0, ControlCompliantApplication)
			case "verifiedID":
				add(strictjson.Index("grantControls.builtInControls", i), msgUnmet, "Microsoft Entra Verified ID", 0, ControlVerifiedID)
			}
		}
		if len(g.TermsOfUse) > 0 {
			add("grantControls.termsOfUse", msgUnmet, "terms of use", 0, ControlTermsOfUse)
		}
		if len(g.CustomAuthenticationFactors) > 0 {
			add("grantControls.customAuthenticationFactors", msgUnmet, "custom controls", 0, ControlCustomAuthenticationFactors)
		}
		if s := g.AuthenticationStrength; s != nil && builtinStrength(s.ID) == nil && len(s.AllowedCombinations) == 0 {
			add("grantControls.authenticationStrength", msgUnmet, "a custom authentication strength given by id only (its combinations are unknown)", 0, ControlAuthenticationStrength)
		}
		if s := g.AuthenticationStrength; s != nil && isSet(s.CombinationConfigurations) {
			add("grantControls.authenticationStrength.combinationConfigurations", "unsupported: %s; any method of an allowed combination satisfies it", "combination configurations (FIDO2 AAGUIDs, certificate issuers)", 0, 0)
		}
	}

	if s := p.SessionControls; s != nil {
		if r := s.ApplicationEnforcedRestrictions; r != nil && r.IsEnabled {
			add("sessionControls.applicationEnforcedRestrictions", msgUnmet, "app-enforced restrictions", 0, ControlApplicationEnforcedRestrictions)
		}
		if m := s.CloudAppSecurity; m != nil && m.IsEnabled {
			add("sessionControls.cloudAppSecurity", msgUnmet, "Defender for Cloud Apps session control", 0, ControlCloudAppSecurity)
		}
		if t := s.SecureSignInSession; t != nil && t.IsEnabled {
			add("sessionControls.secureSignInSession", msgUnmet, "token protection", 0, ControlSecureSignInSession)
		}
		if isSet(s.GlobalSecureAccessFilteringProfile) {
			add("sessionControls.globalSecureAccessFilteringProfile", msgUnmet, "Global Secure Access filtering", 0, ControlGlobalSecureAccessFilteringProfile)
		}
		if isSet(s.NetworkAccessSecurity) {
			add("sessionControls.networkAccessSecurity", msgUnmet, "Global Secure Access security profiles", 0, ControlNetworkAccessSecurity)
		}
		if isSet(s.BlockSensitiveActions) {
			add("sessionControls.blockSensitiveActions", msgUnmet, "blocking sensitive actions", 0, ControlBlockSensitiveActions)
		}
		if s.DisableResilienceDefaults != nil {
			add("sessionControls.disableResilienceDefaults", "unsupported: %s; sessions are never extended during an outage, as if the defaults were disabled", "Verity has no resilience defaults", 0, 0)
		}
	}
	return out
}

// notes turns the findings into notes under path.
func (p *Policy) notes(path string) []Note {
	fs := p.findings()
	out := make([]Note, len(fs))
	for i, f := range fs {
		out[i] = Note{Path: strictjson.Join(path, f.path), Message: f.message}
	}
	return out
}

// Notes lists what Verity does not evaluate exactly in the policy (see
// Note); ParsePolicy returns the same list.
func (p *Policy) Notes() []Note { return p.notes("") }
