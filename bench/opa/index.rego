# The data-only half of the conditional access decision, evaluated once
# when the policies are loaded (what OPA's partial evaluation would fold
# away: nothing here depends on input); the result is stored as
# data.tenant.index, data.tenant.ranges and data.tenant.trusted, and
# policy.rego combines it with the sign-in.
#
# index.<table>[value] lists the ids of the policies whose array holds
# value, e.g. index.includeGroups[groupId], index.clientAppTypes["browser"],
# written {id: true} (the loader turns each into a Rego set).
# index.anyOf lists the policies whose grant is met by any one of two or
# more controls (operator OR); the others need every control.
# index.restricts[condition] lists the policies for which that condition
# can fail at all: it is configured and does not cover everything
# (clientAppTypes other than [] or ["all"], applications other than All,
# any platforms, locations, risk levels). Disabled policies are left out:
# they are never evaluated.
package build

active[id] := p if {
	some id, p in data.tenant.policies
	p.state != "disabled"
}

values(p, path) := vals if {
	vals := object.get(p, path, [])
	vals != null
} else := []

invert(path) := {v: {id: true |
	some id, p in active
	v in values(p, path)
} |
	some p in active
	some v in values(p, path)
}

restricts := {
	"applications": {id: true | some id, p in active; not "All" in values(p, ["conditions", "applications", "includeApplications"])},
	"clientAppTypes": {id: true |
		some id, p in active
		types := values(p, ["conditions", "clientAppTypes"])
		count(types) > 0
		not "all" in types
	},
	"platforms": {id: true | some id, p in active; count(values(p, ["conditions", "platforms", "includePlatforms"])) > 0},
	"locations": {id: true | some id, p in active; count(values(p, ["conditions", "locations", "includeLocations"])) > 0},
	"signInRiskLevels": {id: true | some id, p in active; count(values(p, ["conditions", "signInRiskLevels"])) > 0},
	"userRiskLevels": {id: true | some id, p in active; count(values(p, ["conditions", "userRiskLevels"])) > 0},
}

index := {
	"restricts": restricts,
	"state": {s: {id: true | some id, p in active; p.state == s} | some p in active; s := p.state},
	"builtInControls": invert(["grantControls", "builtInControls"]),
	# Policies whose grant is satisfied by any one of two or more controls.
	"anyOf": {id: true |
		some id, p in active
		p.grantControls.operator == "OR"
		count(p.grantControls.builtInControls) > 1
	},
	"includeUsers": invert(["conditions", "users", "includeUsers"]),
	"excludeUsers": invert(["conditions", "users", "excludeUsers"]),
	"includeGroups": invert(["conditions", "users", "includeGroups"]),
	"excludeGroups": invert(["conditions", "users", "excludeGroups"]),
	"includeRoles": invert(["conditions", "users", "includeRoles"]),
	"excludeRoles": invert(["conditions", "users", "excludeRoles"]),
	"includeApplications": invert(["conditions", "applications", "includeApplications"]),
	"excludeApplications": invert(["conditions", "applications", "excludeApplications"]),
	"clientAppTypes": invert(["conditions", "clientAppTypes"]),
	"includePlatforms": invert(["conditions", "platforms", "includePlatforms"]),
	"excludePlatforms": invert(["conditions", "platforms", "excludePlatforms"]),
	"includeLocations": invert(["conditions", "locations", "includeLocations"]),
	"excludeLocations": invert(["conditions", "locations", "excludeLocations"]),
	"signInRiskLevels": invert(["conditions", "signInRiskLevels"]),
	"userRiskLevels": invert(["conditions", "userRiskLevels"]),
}

# Every IP range of every named location, as [cidr, location id], for
# net.cidr_contains_matches; and the trusted locations.
ranges := [[r.cidrAddress, id] |
	some id, loc in data.tenant.locations
	some r in loc.ipRanges
]

trusted := {id: true | some id, loc in data.tenant.locations; loc.isTrusted}
