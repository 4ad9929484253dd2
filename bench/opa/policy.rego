# Conditional access decision over Graph conditionalAccessPolicy JSON.
#
# data.tenant.policies[id]   the policies as exported from Graph, unchanged
# data.tenant.locations[id]  the IP named locations as exported from Graph
# data.tenant.index, .ranges, .trusted
#                            built once from the policies and locations by
#                            index.rego (the part of the decision that does
#                            not depend on the sign-in)
# data.tenant.users[id]      {"guest": bool, "groups": {groupId: true},
#                             "roles": {roleTemplateId: true}}; groups are
#                             the user's transitive memberships, flattened
#                             when the directory is loaded (as an OPA
#                             deployment would ship a bundle built from the
#                             directory)
#
# input: {"user", "app", "clientAppType", "platform" ("" when unknown),
#         "ip", "signInRisk", "userRisk", "satisfied": [grant controls]}
#
# A policy applies when every condition it configures matches (exclude
# beats include; an unconfigured condition matches everything). Rather
# than walking the policies one by one (policy_scan.rego does that), the
# sign-in's attributes are looked up in the index: the policies that
# include the user, less those that exclude the user and those with
# another condition the sign-in fails. Enabled policies are enforced: any
# block wins, otherwise every unmet grant requirement is returned;
# report-only policies are evaluated and reported but not enforced;
# disabled policies are not evaluated.
package ca

import data.tenant.index

user := data.tenant.users[input.user]

applies := users_in - union({
	users_out,
	apps_fail,
	client_apps_fail,
	sign_in_risk_fail,
	user_risk_fail,
	platforms_fail,
	locations_fail,
})

# Users: All, the user's id, GuestsOrExternalUsers for guests, any of the
# user's (transitive) groups or directory roles; exclusions win.
user_keys contains "All"

user_keys contains input.user

user_keys contains "GuestsOrExternalUsers" if user.guest

groups := object.keys(user.groups)

roles := object.keys(user.roles)

users_in := union({ids | some ids in object.filter(index.includeUsers, user_keys)}) | union({ids | some ids in object.filter(index.includeGroups, groups)}) | union({ids | some ids in object.filter(index.includeRoles, roles)})

users_out := union({ids | some ids in object.filter(index.excludeUsers, user_keys)}) | union({ids | some ids in object.filter(index.excludeGroups, groups)}) | union({ids | some ids in object.filter(index.excludeRoles, roles)})

# Applications: fail when the policy names apps (not All) and not this
# one, or excludes this one.
apps_fail := (index.restricts.applications - object.get(index.includeApplications, input.app, set())) | object.get(index.excludeApplications, input.app, set())

# Client app types: fail when restricted to types other than this one.
client_apps_fail := index.restricts.clientAppTypes - object.get(index.clientAppTypes, input.clientAppType, set())

# Risk levels: fail when levels are listed and this one is not.
sign_in_risk_fail := index.restricts.signInRiskLevels - object.get(index.signInRiskLevels, input.signInRisk, set())

user_risk_fail := index.restricts.userRiskLevels - object.get(index.userRiskLevels, input.userRisk, set())

# Device platforms: fail when configured and the platform is not included
# ("all" covers unknown platforms) or is excluded.
platforms_fail := index.restricts.platforms - ((object.get(index.includePlatforms, "all", set()) | object.get(index.includePlatforms, input.platform, set())) - object.get(index.excludePlatforms, input.platform, set()))

# Locations: named locations whose ranges contain the sign-in IP, All,
# and AllTrusted when one of them is trusted; fail when configured and
# not included, or excluded.
ip_locations contains data.tenant.ranges[i][1] if {
	some [i, _] in net.cidr_contains_matches(data.tenant.ranges, input.ip)
}

location_keys contains "All"

location_keys contains "AllTrusted" if {
	some id in ip_locations
	data.tenant.trusted[id]
}

location_keys contains id if some id in ip_locations

locations_fail := index.restricts.locations - (union({ids | some ids in object.filter(index.includeLocations, location_keys)}) - union({ids | some ids in object.filter(index.excludeLocations, location_keys)}))

# --- outcome ---

report_only := applies & object.get(index.state, "enabledForReportingButNotEnforced", set())

enforced := applies - report_only

# Legacy authentication clients cannot do MFA or present device state:
# those controls are never satisfied for them, and a policy they do not
# satisfy blocks them.
legacy if input.clientAppType in {"exchangeActiveSync", "other"}

device_state_controls := {"mfa", "compliantDevice", "domainJoinedDevice"}

satisfied := {c | some c in input.satisfied} - device_state_controls if legacy

else := {c | some c in input.satisfied}

blocks := enforced & object.get(index.builtInControls, "block", set())

# Enforced policies whose grant is not met: every control required (AND,
# or a single control) and one of them missing, or any one of several
# suffices (OR) and none is there.
all_of := (enforced - index.anyOf) - blocks

any_of := enforced & index.anyOf

unmet_all_of[c] := ids if {
	some c, with_c in index.builtInControls
	c != "block"
	not satisfied[c]
	ids := all_of & with_c
	count(ids) > 0
}

unmet_any_of := any_of - union({ids | some c in satisfied; ids := index.builtInControls[c]})

failing := union({ids | some ids in unmet_all_of}) | unmet_any_of

# Unmet requirements, each a sorted list of controls any one of which
# satisfies it: an all-of policy gives one per missing control, an any-of
# policy one listing its controls.
unmet contains [c] if some c, _ in unmet_all_of

unmet contains sort(data.tenant.policies[id].grantControls.builtInControls) if some id in unmet_any_of

outcome := "notApplied" if {
	count(enforced) == 0
} else := "block" if {
	count(blocks) > 0
} else := "block" if {
	legacy
	count(failing) > 0
} else := "interrupt" if {
	count(failing) > 0
} else := "grant"

decision := {
	"outcome": outcome,
	"enforced": enforced,
	"reportOnly": report_only,
	"unmet": unmet,
}
