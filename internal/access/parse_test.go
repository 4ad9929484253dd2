package access

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSharedPolicies parses, validates and compiles the 127 public
// policies: every one must parse; Microsoft-only features give notes, not
// errors.
func TestSharedPolicies(t *testing.T) {
	t.Parallel()
	counts := map[string]int{}
	var all []*Policy
	notes := map[string][]Note{}
	for _, f := range allPolicyFiles(t) {
		ps, ns, err := ParsePolicies(f.data)
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
			continue
		}
		source, _, _ := strings.Cut(strings.TrimPrefix(f.name, "conditional-access/"), "/")
		counts[source] += len(ps)
		notes[f.name] = ns
		all = append(all, ps...)
	}
	want := map[string]int{"j0eyv-ConditionalAccessBaseline": 36, "AlexFilipin-ConditionalAccess": 59,
		"microsoft-ca-templates": 21, "graph-docs-examples": 11}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("policies per source = %v; want %v", counts, want)
	}
	if len(all) != 127 {
		t.Errorf("parsed %d policies; want 127", len(all))
	}

	for _, tt := range []struct {
		file string
		note Note
	}{
		{"conditional-access/j0eyv-ConditionalAccessBaseline/policies/CA004-Global-IdentityProtection-AnyApp-AnyPlatform-AuthenticationFlows.json",
			Note{"conditions.authenticationFlows", "unsupported: Verity detects no device code or authentication transfer flows; evaluated only against the authenticationFlow a request supplies (absent means none, as in Graph's evaluate)"}},
		{"conditional-access/j0eyv-ConditionalAccessBaseline/policies/CA502-Agents-AttackSurfaceReduction-AllAgentIdentities-AllAgentResources-BLOCK.json",
			Note{"conditions.applications.includeApplications[0]", "unsupported: agent resources; no Verity sign-in is one, so this never matches"}},
		{"conditional-access/j0eyv-ConditionalAccessBaseline/policies/CA005-Global-DataProtection-Office365-iOSenAndroid-ClientApps-Unmanaged-AppEnforcedRestrictions.json",
			Note{"sessionControls.applicationEnforcedRestrictions", "unsupported: app-enforced restrictions; counts as an unmet control, so a policy that needs it cannot be satisfied"}},
		{"conditional-access/AlexFilipin-ConditionalAccess/Data protection/509 - RING - Data protection - All apps Short Sign-in frequency When M365 Admin.json",
			Note{"GrantControls", `read as "grantControls" (JSON property names are case-sensitive)`}},
		{"conditional-access/AlexFilipin-ConditionalAccess/Attack surface reduction/306 - RING - Attack surface reduction - All apps Block Auth Transfer.json",
			Note{"conditions.locations", "empty array read as null"}},
		{"conditional-access/AlexFilipin-ConditionalAccess/Compliance/601 - RING - Compliance - All apps Block access When Elevated Insider Risk is detected.json",
			Note{"conditions.insiderRiskLevels", "unsupported: Verity has no insider risk source; evaluated only against the insiderRiskLevel a request supplies (absent means none, as in Graph's evaluate)"}},
		{"conditional-access/microsoft-ca-templates/conditionalAccess-templates-beta.json",
			Note{"value[17].details.grantControls.builtInControls[0]", "unsupported: Microsoft Entra Verified ID; counts as an unmet control, so a policy that needs it cannot be satisfied"}},
		{"conditional-access/microsoft-ca-templates/conditionalAccess-templates-beta.json",
			Note{"value[0].details.conditions.users.excludeUsers[0]", `template placeholder "Current administrator will be excluded" removed; exclude the administrator who creates the policy by id`}},
		{"conditional-access/graph-docs-examples/graph-docs-ca-policies.json#createExamples[2]",
			Note{"sessionControls.cloudAppSecurity", "unsupported: Defender for Cloud Apps session control; counts as an unmet control, so a policy that needs it cannot be satisfied"}},
	} {
		if !slices.Contains(notes[tt.file], tt.note) {
			t.Errorf("%s: notes %v lack %v", tt.file, notes[tt.file], tt.note)
		}
	}
	// Only the documented or Verity-specific limits produce notes; a plain
	// MFA policy has none.
	if n := notes["conditional-access/j0eyv-ConditionalAccessBaseline/policies/CA000-Global-IdentityProtection-AnyApp-AnyPlatform-MFA.json"]; len(n) != 0 {
		t.Errorf("CA000 notes = %v; want none", n)
	}
}

// TestCompileSharedPolicies compiles every public policy set that names
// only locations the test data holds.
func TestCompileSharedPolicies(t *testing.T) {
	t.Parallel()
	var ps []*Policy
	var docExamples []*Policy
	for _, f := range allPolicyFiles(t) {
		got, _, err := ParsePolicies(f.data)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if strings.Contains(f.name, "#createExamples[1]") || strings.Contains(f.name, "#createExamples[2]") {
			docExamples = append(docExamples, got...)
			continue
		}
		ps = append(ps, got...)
	}
	opts := CompileOptions{NamedLocations: namedLocations(t), AppGroups: appGroups(t)}
	e, err := Compile(ps, opts)
	if err != nil {
		t.Fatal(err)
	}
	disabled := 0
	for _, p := range ps {
		if p.State == StateDisabled {
			disabled++
		}
	}
	if got := len(e.Policies()); got != len(ps)-disabled {
		t.Errorf("engine holds %d policies; want %d", got, len(ps)-disabled)
	}
	if len(e.Notes()) != 1 || e.Notes()[0].Path != "namedLocations.3d46dbda-8382-466a-856d-eb00cbc6b910" {
		t.Errorf("engine notes = %v; want one on the compliant network location", e.Notes())
	}
	// Graph's examples 2 and 3 name locations the docs do not define. The
	// enabled one does not compile; the disabled one is left out unchecked.
	for _, p := range docExamples {
		_, err := Compile([]*Policy{p}, opts)
		switch {
		case p.State == StateDisabled && err != nil:
			t.Errorf("%s (disabled): %v", p.DisplayName, err)
		case p.State != StateDisabled && (err == nil || !strings.Contains(err.Error(), "conditions.locations.includeLocations[0]: no named location has id 198ad66e-87b3-4157-85a3-8a7b51794ee9")):
			t.Errorf("%s: err = %v; want a missing named location", p.DisplayName, err)
		}
	}
}

// TestRoundTrip marshals every public policy and parses it back: nothing
// is lost.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range allPolicyFiles(t) {
		ps, _, err := ParsePolicies(f.data)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range ps {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			q, _, err := ParsePolicy(b)
			if err != nil {
				t.Fatalf("%s[%d]: reparse: %v\n%s", f.name, i, err, b)
			}
			if !reflect.DeepEqual(p, q) {
				t.Errorf("%s[%d]: round trip changed the policy\nbefore %+v\nafter  %+v", f.name, i, p, q)
			}
			b2, _ := json.Marshal(q)
			if string(b) != string(b2) {
				t.Errorf("%s[%d]: second marshal differs", f.name, i)
			}
		}
	}
}

func TestParseShapes(t *testing.T) {
	t.Parallel()
	one := string(mergeJSON(t, basePolicy, `{"displayName": "one"}`))
	two := string(mergeJSON(t, basePolicy, `{"displayName": "two"}`))
	for _, tt := range []struct {
		name, doc string
		want      []string
	}{
		{"one policy", one, []string{"one"}},
		{"array", "[" + one + "," + two + "]", []string{"one", "two"}},
		{"collection", `{"@odata.context": "x", "value": [` + one + `,` + two + `]}`, []string{"one", "two"}},
		{"empty collection", `{"value": []}`, []string{}},
		{"template", `{"name": "tmpl", "id": "c7503427-338e-4c5e-902d-abe252abfb43", "description": "d", "scenarios": "zeroTrust",
			"details": {"conditions": {"applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]}},
			"grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}}`, []string{"tmpl"}},
	} {
		ps, _, err := ParsePolicies([]byte(tt.doc))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := []string{}
		for _, p := range ps {
			got = append(got, p.DisplayName)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v; want %v", tt.name, got, tt.want)
		}
	}
	p, _, err := ParsePolicy([]byte(`{"name": "tmpl", "id": "c7503427-338e-4c5e-902d-abe252abfb43", "details": {"conditions": {"applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]}}, "grantControls": {"builtInControls": ["block"]}}}`))
	if err != nil || p.TemplateID != "c7503427-338e-4c5e-902d-abe252abfb43" || p.State != StateReportOnly || p.ID != "" {
		t.Errorf("template: %+v, %v; want a report-only policy with the template id", p, err)
	}
}

// TestParseErrors: bad input gets an error that says what and where.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, overrides, want string
	}{
		{"group not a GUID", `{"conditions": {"users": {"includeGroups": ["` + groupG + `", "` + groupG2 + `", "admins"]}}}`,
			`conditions.users.includeGroups[2]: not a GUID: "admins"`},
		{"unknown field", `{"conditions": {"users": {"includeGroup": []}}}`, "conditions.users.includeGroup: unknown field"},
		{"wrong type", `{"conditions": {"signInRiskLevels": "high"}}`, "conditions.signInRiskLevels: must be an array, not a string"},
		{"state", `{"state": "on"}`, `state: unknown value "on"; want one of "enabled", "disabled", "enabledForReportingButNotEnforced"`},
		{"client app", `{"conditions": {"clientAppTypes": ["legacy"]}}`, `conditions.clientAppTypes[0]: unknown value "legacy"; want one of "all", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "easSupported", "easUnsupported", "other"`},
		{"platform", `{"conditions": {"platforms": {"includePlatforms": ["Android"]}}}`, `conditions.platforms.includePlatforms[0]: unknown value "Android"; want one of "all", "android", "iOS", "windows", "windowsPhone", "macOS", "linux"`},
		{"exclude all platforms", `{"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["all"]}}}`, `conditions.platforms.excludePlatforms[0]: unknown value "all"; want one of "android", "iOS", "windows", "windowsPhone", "macOS", "linux"`},
		{"risk", `{"conditions": {"userRiskLevels": ["severe"]}}`, `conditions.userRiskLevels[0]: unknown value "severe"; want one of "low", "medium", "high", "hidden", "none"`},
		{"sp risk hidden", `{"conditions": {"servicePrincipalRiskLevels": ["hidden"]}}`, `conditions.servicePrincipalRiskLevels[0]: unknown value "hidden"; want one of "low", "medium", "high", "none"`},
		{"control", `{"grantControls": {"operator": "OR", "builtInControls": ["captcha"]}}`, `grantControls.builtInControls[0]: unknown value "captcha"; want one of "block", "mfa", "compliantDevice", "domainJoinedDevice", "approvedApplication", "compliantApplication", "passwordChange", "verifiedID"`},
		{"operator", `{"grantControls": {"operator": "XOR", "builtInControls": ["mfa"]}}`, `grantControls.operator: unknown value "XOR"; want one of "AND", "OR"`},
		{"operator missing", `{"grantControls": {"operator": null, "builtInControls": ["mfa", "compliantDevice"]}}`, "grantControls.operator: required with more than one control: AND or OR"},
		{"block with others", `{"grantControls": {"operator": "OR", "builtInControls": ["block", "mfa"]}}`, "grantControls.builtInControls: block cannot be combined with other controls"},
		{"All and a user", `{"conditions": {"users": {"includeUsers": ["None", "` + alice + `"]}}}`, "conditions.users.includeUsers: None cannot be combined with other entries"},
		{"All in excludeUsers", `{"conditions": {"users": {"excludeUsers": ["All"]}}}`, `conditions.users.excludeUsers[0]: not a GUID or one of GuestsOrExternalUsers: "All"`},
		{"app group in include only", `{"conditions": {"applications": {"excludeApplications": ["All"]}}}`, `conditions.applications.excludeApplications[0]: not a GUID or one of Office365, MicrosoftAdminPortals: "All"`},
		{"apps and actions", `{"conditions": {"applications": {"includeUserActions": ["urn:user:registerdevice"]}}}`, "conditions.applications: includeApplications, includeUserActions and includeAuthenticationContextClassReferences exclude each other"},
		{"user action", `{"conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:login"]}}}`, `conditions.applications.includeUserActions[0]: unknown value "urn:user:login"; want one of "urn:user:registersecurityinfo", "urn:user:registerdevice", "urn:user:accountrecovery"`},
		{"location", `{"conditions": {"locations": {"includeLocations": ["AllTrusted"], "excludeLocations": ["All"]}}}`, `conditions.locations.excludeLocations[0]: not a GUID or one of AllTrusted: "All"`},
		{"exclude without include", `{"conditions": {"locations": {"excludeLocations": ["AllTrusted"]}}}`, "conditions.locations.includeLocations: required when excludeLocations is set"},
		{"guest types", `{"conditions": {"users": {"includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest,partner"}}}}`, `conditions.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes: unknown value "partner"; want a comma-separated list of internalGuest, b2bCollaborationGuest, b2bCollaborationMember, b2bDirectConnectUser, otherExternalUser, serviceProvider`},
		{"enumerated tenants", `{"conditions": {"users": {"includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest", "externalTenants": {"membershipKind": "enumerated"}}}}}`, "conditions.users.includeGuestsOrExternalUsers.externalTenants.members: must list at least one tenant id when membershipKind is enumerated"},
		{"insider", `{"conditions": {"insiderRiskLevels": "minor,severe"}}`, `conditions.insiderRiskLevels: unknown value "severe"; want one of "minor", "moderate", "elevated"`},
		{"transfer", `{"conditions": {"authenticationFlows": {"transferMethods": "qr"}}}`, `conditions.authenticationFlows.transferMethods: unknown value "qr"; want one of "deviceCodeFlow", "authenticationTransfer"`},
		{"device filter mode", `{"conditions": {"devices": {"deviceFilter": {"mode": "only", "rule": "device.isCompliant -eq True"}}}}`, `conditions.devices.deviceFilter.mode: unknown value "only"; want one of "include", "exclude"`},
		{"device filter rule", `{"conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.colour -eq \"red\""}}}}`, "conditions.devices.deviceFilter.rule: ..."},
		{"strength id", `{"grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "strong"}}}`, `grantControls.authenticationStrength.id: not a GUID: "strong"`},
		{"strength method", `{"grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002", "allowedCombinations": ["password,pigeon"]}}}`, `grantControls.authenticationStrength.allowedCombinations[0]: unknown authentication method "pigeon"; want one of "password", ...`},
		{"sif unit", `{"sessionControls": {"signInFrequency": {"isEnabled": true, "type": "weeks", "value": 1}}}`, `sessionControls.signInFrequency.type: unknown value "weeks"; want one of "days", "hours"`},
		{"sif hours", `{"sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": 24}}}`, "sessionControls.signInFrequency.value: must be 1 to 23 hours, not 24"},
		{"sif days", `{"sessionControls": {"signInFrequency": {"isEnabled": true, "type": "days", "value": 366}}}`, "sessionControls.signInFrequency.value: must be 1 to 365 days, not 366"},
		{"sif every time with value", `{"sessionControls": {"signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime", "type": "hours", "value": 1}}}`, "sessionControls.signInFrequency: type and value must be empty when frequencyInterval is everyTime"},
		{"persistent browser needs all apps", `{"conditions": {"applications": {"includeApplications": ["Office365"]}}, "sessionControls": {"persistentBrowser": {"isEnabled": true, "mode": "never"}}}`, `sessionControls.persistentBrowser: requires includeApplications ["All"] without exclusions`},
		{"registerdevice grant", `{"conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:registerdevice"]}}, "grantControls": {"builtInControls": ["compliantDevice"]}}`, "grantControls.builtInControls: only mfa is allowed with the urn:user:registerdevice user action"},
		{"no applications", `{"conditions": {"applications": null}}`, "conditions.applications: required"},
		{"no users", `{"conditions": {"users": null}}`, "conditions.users: required (or clientApplications for workload identities)"},
		{"display name", `{"displayName": " "}`, "displayName: required"},
		{"policy id", `{"id": "CA001"}`, `id: not a GUID: "CA001"`},
		{"trailing data", ``, ""},
	} {
		if tt.name == "trailing data" {
			_, _, err := ParsePolicy([]byte(basePolicy + " {}"))
			if err == nil || err.Error() != "unexpected data after the JSON value" {
				t.Errorf("%s: err = %v", tt.name, err)
			}
			continue
		}
		_, _, err := ParsePolicy(mergeJSON(t, basePolicy, tt.overrides))
		if prefix, ok := strings.CutSuffix(tt.want, "..."); ok && (err == nil || !strings.HasPrefix(err.Error(), prefix)) || !ok && (err == nil || err.Error() != tt.want) {
			t.Errorf("%s: err = %v\nwant %s", tt.name, err, tt.want)
		}
	}
	// Collections name the element.
	_, _, err := ParsePolicies([]byte(`{"value": [` + basePolicy + `, {"displayName": "x", "state": "enabled", "conditions": {"applications": {}, "users": {"includeGroups": ["g"]}}}]}`))
	if err == nil || err.Error() != `value[1].conditions.users.includeGroups[0]: not a GUID: "g"` {
		t.Errorf("collection: err = %v", err)
	}
	_, _, err = ParsePolicies([]byte(`[` + basePolicy + `, 3]`))
	if err == nil || err.Error() != "[1]: must be an object" {
		t.Errorf("array: err = %v", err)
	}
}

func TestParseEvaluateRequestErrors(t *testing.T) {
	t.Parallel()
	const head = `"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "` + alice + `"},
		"signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["` + exchange + `"]}`
	for _, tt := range []struct{ name, body, want string }{
		{"no identity", `{"signInContext": {"@odata.type": "#microsoft.graph.authContext", "authenticationContextValue": "c1"}, "signInConditions": {}}`, "signInIdentity: required"},
		{"identity type", `{"signInIdentity": {"@odata.type": "#microsoft.graph.agentSignIn"}, "signInContext": {}, "signInConditions": {}}`, `signInIdentity.@odata.type: unknown sign-in identity type "#microsoft.graph.agentSignIn"; want one of "#microsoft.graph.userSignIn", "#microsoft.graph.servicePrincipalSignIn"`},
		{"user id", `{"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "alice"}, "signInContext": {}, "signInConditions": {}}`, `signInIdentity.userId: not a GUID: "alice"`},
		{"app group", `{"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "` + alice + `"}, "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["Office365"]}, "signInConditions": {}}`, `signInContext.includeApplications[0]: not a GUID: "Office365"`},
		{"user action", `{"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "` + alice + `"}, "signInContext": {"@odata.type": "#microsoft.graph.userActionContext", "userAction": "login"}, "signInConditions": {}}`, `signInContext.userAction: unknown user action "login"; want one of "registerSecurityInformation", "registerOrJoinDevices"`},
		{"auth context", `{"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "` + alice + `"}, "signInContext": {"@odata.type": "#microsoft.graph.authContext", "authenticationContextValue": "c100"}, "signInConditions": {}}`, `signInContext.authenticationContextValue: must be an authentication context c1 to c99, not "c100"`},
		{"platform", `{` + head + `, "signInConditions": {"devicePlatform": "amiga"}}`, `signInConditions.devicePlatform: unknown value "amiga"; want one of "android", "iOS", "windows", "windowsPhone", "macOS", "linux"`},
		{"risk", `{` + head + `, "signInConditions": {"signInRiskLevel": "extreme"}}`, `signInConditions.signInRiskLevel: unknown value "extreme"; want one of "none", "low", "medium", "high", "hidden"`},
		{"ip", `{` + head + `, "signInConditions": {"ipAddress": "1.2.3"}}`, `signInConditions.ipAddress: must be an IPv4 or IPv6 address, not "1.2.3"`},
		{"country", `{` + head + `, "signInConditions": {"country": "USA"}}`, `signInConditions.country: must be an ISO 3166-1 alpha-2 code, not "USA"`},
		{"unknown field", `{` + head + `, "signInConditions": {"location": "US"}}`, "signInConditions.location: unknown field"},
		{"control", `{` + head + `, "signInConditions": {}, "satisfiedControls": ["mfa", "faceid"]}`, `satisfiedControls[1]: unknown control "faceid"`},
		{"method", `{` + head + `, "signInConditions": {}, "authenticationMethods": ["password,retina"]}`, `authenticationMethods[0]: unknown authentication method "retina"`},
	} {
		_, err := ParseEvaluateRequest([]byte(tt.body))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: err = %v\nwant %s", tt.name, err, tt.want)
		}
	}
	r, err := ParseEvaluateRequest([]byte(`{` + head + `, "signInConditions": {"devicePlatform": "all", "clientAppType": "easSupported", "country": "be",
		"ipAddress": "::ffff:192.0.2.1", "deviceInfo": {"trustType": "EntraID", "isCompliant": true}},
		"satisfiedControls": ["mfa"], "authenticationMethods": ["password", "microsoftAuthenticatorPush"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Platform != PlatformNotGiven || r.ClientApp != ClientAppExchangeActiveSync || r.Country != "BE" || r.IP.String() != "192.0.2.1" ||
		r.Device == nil || r.Device.TrustType != "AzureAD" || !r.Device.Registered || r.Satisfied != ControlMFA ||
		r.Methods != MethodPassword|MethodMicrosoftAuthenticatorPush {
		t.Errorf("request = %+v", r)
	}
}
