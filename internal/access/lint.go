package access

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Finding is one problem Lint sees in a policy set.
type Finding struct {
	// Rule names the check, stable for scripts: breakGlassNotExcluded,
	// adminsWithoutMFA, legacyAuthNotBlocked, neverApplies, shadowed.
	Rule string `json:"rule"`
	// Severity is "warning" (a common, risky gap) or "error" (a policy
	// that cannot work as written).
	Severity string `json:"severity"`
	// Policy is the display name of the policy concerned, "" for a gap in
	// the whole set.
	Policy  string `json:"policy,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func (f Finding) String() string {
	where := f.Policy
	if f.Path != "" {
		where += ": " + f.Path
	}
	if where != "" {
		where += ": "
	}
	return fmt.Sprintf("%s: %s%s [%s]", f.Severity, where, f.Message, f.Rule)
}

// privilegedRoles are the directory roles Microsoft's "Require MFA for
// administrators" template covers; the lint expects enforced MFA for them.
var privilegedRoles = []string{
	"62e90394-69f5-4237-9190-012177145e10", // Global Administrator
	"e8611ab8-c189-46e8-94e1-60213ab1f814", // Privileged Role Administrator
	"194ae4cb-b126-40b2-bd5b-6091b380977d", // Security Administrator
	"29232cdf-9323-42fd-ade2-1d097af3e4de", // Exchange Administrator
	"f28a1f50-f6e7-4571-818b-6a12f2af6b6c", // SharePoint Administrator
	"b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", // Conditional Access Administrator
	"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", // Application Administrator
	"158c047a-c907-4556-b7ef-446551a6b5f7", // Cloud Application Administrator
	"fe930be7-5e62-47db-91af-98c3a49a38b1", // User Administrator
	"729827e3-9c14-49f7-bb1b-9608f156bbb8", // Helpdesk Administrator
}

// Lint looks for the mistakes that matter most in a conditional access
// policy set: emergency-access (break-glass) accounts not excluded from
// blocking or MFA policies that cover everyone, administrators not covered
// by an enforced MFA policy, legacy authentication not blocked, policies
// that can never apply, and enforced policies made pointless by an
// identical blocking one. It reads the policies only; no sign-in is
// evaluated.
func Lint(policies []*Policy) []Finding {
	var out []Finding
	enforced := func(p *Policy) bool { return p.State == StateEnabled }

	for _, p := range policies {
		out = append(out, neverApplies(p)...)
		if !enforced(p) || p.GrantControls == nil {
			continue
		}
		u := p.Conditions.Users
		if u == nil || !slices.Contains(u.IncludeUsers, All) {
			continue
		}
		if len(u.ExcludeUsers) == 0 && len(u.ExcludeGroups) == 0 {
			out = append(out, Finding{Rule: "breakGlassNotExcluded", Severity: "warning", Policy: p.DisplayName, Path: "conditions.users.excludeUsers",
				Message: "covers all users and excludes no user or group: exclude your emergency-access (break-glass) accounts so a mistake cannot lock everyone out"})
		}
	}

	if !slices.ContainsFunc(policies, func(p *Policy) bool { return enforced(p) && coversAdmins(p) && requiresMFA(p) }) {
		out = append(out, Finding{Rule: "adminsWithoutMFA", Severity: "warning",
			Message: "no enabled policy requires MFA (or an authentication strength) of administrators for all applications; see Microsoft's template \"Require multifactor authentication for admins\""})
	}
	if !slices.ContainsFunc(policies, func(p *Policy) bool { return enforced(p) && blocksLegacy(p) }) {
		out = append(out, Finding{Rule: "legacyAuthNotBlocked", Severity: "warning",
			Message: "no enabled policy blocks legacy authentication (clientAppTypes exchangeActiveSync and other) for all users and applications"})
	}
	return append(out, shadowed(policies)...)
}

// neverApplies finds assignments that exclude everything they include.
func neverApplies(p *Policy) []Finding {
	var out []Finding
	never := func(path, msg string) {
		out = append(out, Finding{Rule: "neverApplies", Severity: "error", Policy: p.DisplayName, Path: path, Message: msg})
	}
	c := p.Conditions
	if u := c.Users; u != nil {
		workload := isSet(c.Agents) || (c.ClientApplications != nil && (len(c.ClientApplications.IncludeServicePrincipals) > 0 ||
			len(c.ClientApplications.IncludeAgentIDServicePrincipals) > 0 || c.ClientApplications.ServicePrincipalFilter != nil))
		if !workload && slices.Contains(u.IncludeUsers, None) && len(u.IncludeGroups) == 0 && len(u.IncludeRoles) == 0 && u.IncludeGuestsOrExternalUsers == nil {
			never("conditions.users.includeUsers", "includes no user (None)")
		}
		for _, pair := range []struct {
			field      string
			incl, excl []string
		}{{"Users", u.IncludeUsers, u.ExcludeUsers}, {"Groups", u.IncludeGroups, u.ExcludeGroups}, {"Roles", u.IncludeRoles, u.ExcludeRoles}} {
			if len(pair.incl) > 0 && !slices.Contains(pair.incl, All) && containsAllFold(pair.excl, pair.incl) &&
				onlyThis(u, pair.field) {
				never("conditions.users.exclude"+pair.field, "excludes every "+strings.ToLower(strings.TrimSuffix(pair.field, "s"))+" it includes, and includes nothing else")
			}
		}
	}
	if a := c.Applications; a != nil && slices.Contains(a.IncludeApplications, None) && len(a.IncludeUserActions) == 0 && len(a.IncludeAuthenticationContextClassReferences) == 0 {
		never("conditions.applications.includeApplications", "targets no application (None)")
	}
	if pl := c.Platforms; pl != nil && len(pl.IncludePlatforms) > 0 {
		if slices.Contains(pl.ExcludePlatforms, "all") || (!slices.Contains(pl.IncludePlatforms, "all") && containsAllFold(pl.ExcludePlatforms, pl.IncludePlatforms)) {
			never("conditions.platforms.excludePlatforms", "excludes every platform it includes")
		}
	}
	if l := c.Locations; l != nil && len(l.IncludeLocations) > 0 && !slices.Contains(l.IncludeLocations, All) && containsAllFold(l.ExcludeLocations, l.IncludeLocations) {
		never("conditions.locations.excludeLocations", "excludes every location it includes")
	}
	if p.GrantControls != nil && slices.Contains(p.GrantControls.BuiltInControls, "passwordChange") && len(c.UserRiskLevels) == 0 {
		never("grantControls.builtInControls", "requires passwordChange without a user risk condition; Entra accepts passwordChange only with user risk")
	}
	return out
}

// onlyThis reports whether field ("Users", "Groups", "Roles") is the only
// kind of principal u includes.
func onlyThis(u *Users, field string) bool {
	n := map[string]int{"Users": len(u.IncludeUsers), "Groups": len(u.IncludeGroups), "Roles": len(u.IncludeRoles)}
	for k, v := range n {
		if k != field && v > 0 {
			return false
		}
	}
	return u.IncludeGuestsOrExternalUsers == nil
}

func containsAllFold(haystack, needles []string) bool {
	for _, n := range needles {
		if !slices.ContainsFunc(haystack, func(h string) bool { return strings.EqualFold(h, n) }) {
			return false
		}
	}
	return true
}

func coversAdmins(p *Policy) bool {
	u, a := p.Conditions.Users, p.Conditions.Applications
	if u == nil || a == nil || !slices.Contains(a.IncludeApplications, All) {
		return false
	}
	if slices.Contains(u.IncludeUsers, All) {
		return !slices.ContainsFunc(u.ExcludeRoles, func(r string) bool { return slices.Contains(privilegedRoles, strings.ToLower(r)) })
	}
	return slices.ContainsFunc(u.IncludeRoles, func(r string) bool { return strings.EqualFold(r, privilegedRoles[0]) })
}

func requiresMFA(p *Policy) bool {
	g := p.GrantControls
	if g == nil {
		return false
	}
	if g.AuthenticationStrength != nil {
		return true
	}
	return slices.Contains(g.BuiltInControls, "mfa") && (g.Operator == "AND" || len(g.BuiltInControls) == 1)
}

func blocksLegacy(p *Policy) bool {
	c := p.Conditions
	return p.GrantControls != nil && slices.Contains(p.GrantControls.BuiltInControls, "block") &&
		c.Users != nil && slices.Contains(c.Users.IncludeUsers, All) &&
		c.Applications != nil && slices.Contains(c.Applications.IncludeApplications, All) &&
		slices.Contains(c.ClientAppTypes, "exchangeActiveSync") && slices.Contains(c.ClientAppTypes, "other")
}

// shadowed reports enforced policies whose conditions are identical to
// those of an enforced blocking policy: every sign-in they apply to is
// blocked anyway, so their controls never matter.
func shadowed(policies []*Policy) []Finding {
	var out []Finding
	key := func(p *Policy) string {
		b, _ := json.Marshal(p.Conditions)
		return string(b)
	}
	blockers := map[string]string{}
	for _, p := range policies {
		if p.State == StateEnabled && p.GrantControls != nil && slices.Contains(p.GrantControls.BuiltInControls, "block") {
			if _, ok := blockers[key(p)]; !ok {
				blockers[key(p)] = p.DisplayName
			}
		}
	}
	for _, p := range policies {
		if p.State != StateEnabled || (p.GrantControls != nil && slices.Contains(p.GrantControls.BuiltInControls, "block")) {
			continue
		}
		if b, ok := blockers[key(p)]; ok {
			out = append(out, Finding{Rule: "shadowed", Severity: "warning", Policy: p.DisplayName,
				Message: fmt.Sprintf("has the same conditions as the blocking policy %q, so its controls never take effect", b)})
		}
	}
	return out
}
