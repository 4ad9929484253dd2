# Conditional access decision over Graph conditionalAccessPolicy JSON.
#
# The straightforward formulation: every policy's conditions are checked
# in turn, straight from the Graph JSON, with no index. policy.rego makes
# the same decision from an index built at load time, and is what the
# benchmark reports as OPA; this one is kept for comparison and as a
# cross-check (the agreement test runs both).
#
# data.tenant.policies[id]   the policies as exported from Graph, unchanged
# data.tenant.locations[id]  the IP named locations as exported from Graph
# data.tenant.users[id]      {"guest": bool, "groups": {groupId: true},
#                             "roles": {roleTemplateId: true}}; groups are
#                             the user's transitive memberships
#
# input: {"user", "app", "clientAppType", "platform" ("" when unknown),
#         "ip", "signInRisk", "userRisk", "satisfied": [grant controls]}
#
# A policy applies when every condition it configures matches (exclude
# beats include; an unconfigured condition matches everything). Enabled
# policies are enforced: a block blocks, and so does an unmet grant for a
# legacy authentication client; otherwise unmet grant controls interrupt
# the sign-in. Report-only policies are evaluated and reported but not
# enforced; disabled policies are not evaluated.
package ca

user := data.tenant.users[input.user]

# --- which policies apply ---

applies contains id if {
	some id, p in data.tenant.policies
	p.state != "disabled"
	c := p.conditions
	app_ok(c.applications)
	client_ok(c.clientAppTypes)
	risk_ok(c.signInRiskLevels, input.signInRisk)
	risk_ok(c.userRiskLevels, input.userRisk)
	platform_ok(object.get(c, "platforms", null))
	users_ok(c.users)
	location_ok(object.get(c, "locations", null))
}

# Applications: All or the app's id, unless excluded.
app_ok(a) if {
	app_included(a)
	not input.app in a.excludeApplications
}

app_included(a) if "All" in a.includeApplications

app_included(a) if input.app in a.includeApplications

# Client app types: [] or ["all"] means any.
client_ok(types) if count(types) == 0

client_ok(types) if "all" in types

client_ok(types) if input.clientAppType in types

# Risk levels: an empty list imposes nothing.
risk_ok(levels, _) if count(levels) == 0

risk_ok(levels, level) if level in levels

# Device platforms: null means any; "all" includes unknown platforms.
platform_ok(null)

platform_ok(p) if {
	p != null
	platform_included(p)
	not input.platform in p.excludePlatforms
}

platform_included(p) if "all" in p.includePlatforms

platform_included(p) if input.platform in p.includePlatforms

# Users, groups (transitive) and directory roles.
users_ok(u) if {
	user_included(u)
	not user_excluded(u)
}

user_included(u) if "All" in u.includeUsers

user_included(u) if input.user in u.includeUsers

user_included(u) if {
	"GuestsOrExternalUsers" in u.includeUsers
	user.guest
}

user_included(u) if {
	some g in u.includeGroups
	user.groups[g]
}

user_included(u) if {
	some r in u.includeRoles
	user.roles[r]
}

user_excluded(u) if input.user in u.excludeUsers

user_excluded(u) if {
	"GuestsOrExternalUsers" in u.excludeUsers
	user.guest
}

user_excluded(u) if {
	some g in u.excludeGroups
	user.groups[g]
}

user_excluded(u) if {
	some r in u.excludeRoles
	user.roles[r]
}

# Locations: named locations containing the sign-in IP, All, AllTrusted.
ip_locations contains id if {
	some id, loc in data.tenant.locations
	some r in loc.ipRanges
	net.cidr_contains(r.cidrAddress, input.ip)
}

trusted_ip if {
	some id in ip_locations
	data.tenant.locations[id].isTrusted
}

location_ok(null)

location_ok(l) if {
	l != null
	location_included(l)
	not location_excluded(l)
}

location_included(l) if "All" in l.includeLocations

location_included(l) if {
	"AllTrusted" in l.includeLocations
	trusted_ip
}

location_included(l) if {
	some id in l.includeLocations
	ip_locations[id]
}

location_excluded(l) if {
	"AllTrusted" in l.excludeLocations
	trusted_ip
}

location_excluded(l) if {
	some id in l.excludeLocations
	ip_locations[id]
}

# --- outcome ---

enforced contains id if {
	some id in applies
	data.tenant.policies[id].state == "enabled"
}

report_only contains id if {
	some id in applies
	data.tenant.policies[id].state == "enabledForReportingButNotEnforced"
}

# Legacy authentication clients cannot do MFA or present device state:
# those controls are never satisfied for them, and a policy they do not
# satisfy blocks them.
legacy if input.clientAppType in {"exchangeActiveSync", "other"}

satisfied contains c if {
	some c in input.satisfied
	not legacy
}

satisfied contains c if {
	some c in input.satisfied
	legacy
	not c in {"mfa", "compliantDevice", "domainJoinedDevice"}
}

blocked if {
	some id in enforced
	"block" in data.tenant.policies[id].grantControls.builtInControls
}

# Unmet requirements of the enforced policies, each a sorted list of
# controls any one of which satisfies it: a policy needing all its
# controls (AND, or a single control) gives one per missing control, one
# needing any of several (OR) one listing them when none is there.
unmet contains [c] if {
	some id in enforced
	g := data.tenant.policies[id].grantControls
	not any_of(g)
	some c in g.builtInControls
	c != "block"
	not satisfied[c]
}

unmet contains sort(g.builtInControls) if {
	some id in enforced
	g := data.tenant.policies[id].grantControls
	any_of(g)
	count({c | some c in g.builtInControls; satisfied[c]}) == 0
}

any_of(g) if {
	g.operator == "OR"
	count(g.builtInControls) > 1
}

outcome := "notApplied" if {
	count(enforced) == 0
} else := "block" if {
	blocked
} else := "block" if {
	legacy
	count(unmet) > 0
} else := "interrupt" if {
	count(unmet) > 0
} else := "grant"

decision := {
	"outcome": outcome,
	"enforced": enforced,
	"reportOnly": report_only,
	"unmet": unmet,
}
