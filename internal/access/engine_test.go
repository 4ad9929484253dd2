package access

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/directory"
)

const (
	roleGA      = directory.GlobalAdministratorRoleID
	roleReader  = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b" // Directory Readers
	tenantOther = "f0000000-0000-4000-8000-000000000040"
	azurePortal = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
)

// applies evaluates one policy and reports whether it applies, and why not.
func applies(t *testing.T, p *Policy, opts CompileOptions, req *Request) (bool, Reason) {
	t.Helper()
	pr := evaluate(compile(t, opts, p), req).Policies[0]
	return pr.Applies, pr.Reason
}

func TestConditions(t *testing.T) {
	t.Parallel()
	exo := []string{exchange}
	for _, tt := range []struct {
		name   string
		policy string
		req    Request
		want   Reason // 0: applies
	}{
		// Users, groups, roles.
		{"included user", `{"conditions": {"users": {"includeUsers": ["` + alice + `"]}}}`, Request{UserID: alice, Applications: exo}, 0},
		{"other user", `{"conditions": {"users": {"includeUsers": ["` + alice + `"]}}}`, Request{UserID: bob, Applications: exo}, ReasonUsers},
		{"None", `{"conditions": {"users": {"includeUsers": ["None"]}}}`, Request{UserID: alice, Applications: exo}, ReasonUsers},
		{"excluded user", `{"conditions": {"users": {"excludeUsers": ["` + alice + `"]}}}`, Request{UserID: alice, Applications: exo}, ReasonUsers},
		{"no user given", `{}`, Request{Applications: exo}, ReasonUsers},
		{"included role", `{"conditions": {"users": {"includeUsers": [], "includeRoles": ["` + roleGA + `"]}}}`, Request{UserID: alice, Roles: []string{roleReader, roleGA}, Applications: exo}, 0},
		{"role not held", `{"conditions": {"users": {"includeUsers": [], "includeRoles": ["` + roleGA + `"]}}}`, Request{UserID: alice, Roles: []string{roleReader}, Applications: exo}, ReasonUsers},
		{"excluded role", `{"conditions": {"users": {"excludeRoles": ["` + roleGA + `"]}}}`, Request{UserID: alice, Roles: []string{roleGA}, Applications: exo}, ReasonUsers},
		{"group and role both include", `{"conditions": {"users": {"includeUsers": [], "includeGroups": ["` + groupG + `"], "includeRoles": ["` + roleGA + `"]}}}`, Request{UserID: alice, Groups: []string{groupG}, Applications: exo}, 0},
		{"user included, group excluded", `{"conditions": {"users": {"includeUsers": ["` + alice + `"], "excludeGroups": ["` + groupG + `"]}}}`, Request{UserID: alice, Groups: []string{groupG}, Applications: exo}, ReasonUsers},
		{"upper-case ids in the policy", `{"conditions": {"users": {"includeUsers": ["A0000000-0000-4000-8000-000000000001"]}}}`, Request{UserID: alice, Applications: exo}, 0},

		// Guests and external users.
		{"legacy GuestsOrExternalUsers", `{"conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}}}`, Request{UserID: bob, GuestType: GuestB2BCollaborationGuest, Applications: exo}, 0},
		{"member is not a guest", `{"conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}}}`, Request{UserID: alice, Applications: exo}, ReasonUsers},
		{"guests excluded", `{"conditions": {"users": {"excludeUsers": ["GuestsOrExternalUsers"]}}}`, Request{UserID: bob, GuestType: GuestInternal, Applications: exo}, ReasonUsers},
		{"guest type included", `{"conditions": {"users": {"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest,serviceProvider", "externalTenants": {"membershipKind": "all"}}}}}`, Request{UserID: bob, GuestType: GuestServiceProvider, Applications: exo}, 0},
		{"guest type not included", `{"conditions": {"users": {"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest"}}}}`, Request{UserID: bob, GuestType: GuestB2BDirectConnectUser, Applications: exo}, ReasonUsers},
		{"guest type excluded", `{"conditions": {"users": {"excludeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bDirectConnectUser,otherExternalUser"}}}}`, Request{UserID: bob, GuestType: GuestOtherExternalUser, Applications: exo}, ReasonUsers},
		{"enumerated tenant matches", `{"conditions": {"users": {"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest", "externalTenants": {"membershipKind": "enumerated", "members": ["` + tenantOther + `"]}}}}}`, Request{UserID: bob, GuestType: GuestB2BCollaborationGuest, ExternalTenantID: tenantOther, Applications: exo}, 0},
		{"enumerated tenant other", `{"conditions": {"users": {"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest", "externalTenants": {"membershipKind": "enumerated", "members": ["` + tenantOther + `"]}}}}}`, Request{UserID: bob, GuestType: GuestB2BCollaborationGuest, Applications: exo}, ReasonUsers},

		// Workload identities.
		{"service principal by id", `{"conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": ["` + spID + `"]}}}`, Request{Identity: IdentityServicePrincipal, ServicePrincipalID: spID, Applications: exo}, 0},
		{"service principal excluded", `{"conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"], "excludeServicePrincipals": ["` + spID + `"]}}}`, Request{Identity: IdentityServicePrincipal, ServicePrincipalID: spID, Applications: exo}, ReasonWorkloadIdentities},
		{"user policy, service principal", `{}`, Request{Identity: IdentityServicePrincipal, ServicePrincipalID: spID, Applications: exo}, ReasonWorkloadIdentities},
		{"service principal risk", `{"conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}, "servicePrincipalRiskLevels": ["high"]}}`, Request{Identity: IdentityServicePrincipal, ServicePrincipalID: spID, Applications: exo, ServicePrincipalRisk: RiskMedium}, ReasonServicePrincipalRisk},

		// Target resources.
		{"app in Office365", `{"conditions": {"applications": {"includeApplications": ["Office365"]}}}`, Request{UserID: alice, Applications: []string{sharePoint}}, 0},
		{"app outside Office365", `{"conditions": {"applications": {"includeApplications": ["Office365"]}}}`, Request{UserID: alice, Applications: []string{azurePortal}}, ReasonApplication},
		{"Office365 excluded", `{"conditions": {"applications": {"excludeApplications": ["Office365"]}}}`, Request{UserID: alice, Applications: []string{exchange}}, ReasonApplication},
		{"admin portals", `{"conditions": {"applications": {"includeApplications": ["MicrosoftAdminPortals"]}}}`, Request{UserID: alice, Applications: []string{azurePortal}}, 0},
		{"excluded app", `{"conditions": {"applications": {"excludeApplications": ["` + exchange + `"]}}}`, Request{UserID: alice, Applications: exo}, ReasonApplication},
		{"one of several apps", `{"conditions": {"applications": {"includeApplications": ["` + sharePoint + `"]}}}`, Request{UserID: alice, Applications: []string{exchange, sharePoint}}, 0},
		{"None apps", `{"conditions": {"applications": {"includeApplications": ["None"]}}}`, Request{UserID: alice, Applications: exo}, ReasonApplication},
		{"no target given", `{}`, Request{UserID: alice}, ReasonApplication},
		{"user action", `{"conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:registerdevice"]}}}`, Request{UserID: alice, UserAction: UserActionRegisterOrJoinDevices}, 0},
		{"other user action", `{"conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:registerdevice"]}}}`, Request{UserID: alice, UserAction: UserActionRegisterSecurityInformation}, ReasonUserActions},
		{"app policy, user action", `{"conditions": {"applications": {"includeApplications": ["` + exchange + `"]}}}`, Request{UserID: alice, UserAction: UserActionRegisterSecurityInformation}, ReasonUserActions},
		{"All, user action", `{}`, Request{UserID: alice, UserAction: UserActionRegisterSecurityInformation}, 0},
		{"auth context", `{"conditions": {"applications": {"includeApplications": [], "includeAuthenticationContextClassReferences": ["c2", "c37"]}}}`, Request{UserID: alice, AuthenticationContext: "c37"}, 0},
		{"other auth context", `{"conditions": {"applications": {"includeApplications": [], "includeAuthenticationContextClassReferences": ["c2"]}}}`, Request{UserID: alice, AuthenticationContext: "c3"}, ReasonAuthenticationContext},
		{"auth context policy, app", `{"conditions": {"applications": {"includeApplications": [], "includeAuthenticationContextClassReferences": ["c2"]}}}`, Request{UserID: alice, Applications: exo}, ReasonApplication},

		// Platforms: unknown platforms are caught by "all" minus the known ones.
		{"block unknown platforms: unknown", `{"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["android", "iOS", "windows", "macOS"]}}}`, Request{UserID: alice, Applications: exo, Platform: PlatformUnknown}, 0},
		{"block unknown platforms: linux", `{"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["android", "iOS", "windows", "macOS"]}}}`, Request{UserID: alice, Applications: exo, Platform: PlatformLinux}, 0},
		{"block unknown platforms: windows", `{"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["android", "iOS", "windows", "macOS"]}}}`, Request{UserID: alice, Applications: exo, Platform: PlatformWindows}, ReasonDevicePlatform},
		{"listed platform", `{"conditions": {"platforms": {"includePlatforms": ["windows", "macOS"]}}}`, Request{UserID: alice, Applications: exo, Platform: PlatformMacOS}, 0},
		{"unknown platform not listed", `{"conditions": {"platforms": {"includePlatforms": ["windows", "macOS"]}}}`, Request{UserID: alice, Applications: exo, Platform: PlatformUnknown}, ReasonDevicePlatform},
		{"platform not given", `{"conditions": {"platforms": {"includePlatforms": ["windows"]}}}`, Request{UserID: alice, Applications: exo}, ReasonDevicePlatform},
		{"platform all, not given", `{"conditions": {"platforms": {"includePlatforms": ["all"]}}}`, Request{UserID: alice, Applications: exo}, 0},

		// Client apps.
		{"legacy clients: other", `{"conditions": {"clientAppTypes": ["exchangeActiveSync", "other"]}}`, Request{UserID: alice, Applications: exo, ClientApp: ClientAppOther}, 0},
		{"legacy clients: browser", `{"conditions": {"clientAppTypes": ["exchangeActiveSync", "other"]}}`, Request{UserID: alice, Applications: exo, ClientApp: ClientAppBrowser}, ReasonClientApps},
		{"client app not given", `{"conditions": {"clientAppTypes": ["browser"]}}`, Request{UserID: alice, Applications: exo}, ReasonClientApps},
		{"every type listed, not given", `{"conditions": {"clientAppTypes": ["browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"]}}`, Request{UserID: alice, Applications: exo}, 0},
		{"easSupported", `{"conditions": {"clientAppTypes": ["easSupported"]}}`, Request{UserID: alice, Applications: exo, ClientApp: ClientAppExchangeActiveSync}, 0},

		// Locations.
		{"named IP location", `{"conditions": {"locations": {"includeLocations": ["` + locOther + `"]}}}`, Request{UserID: alice, Applications: exo, IP: netip.MustParseAddr("198.51.100.200")}, 0},
		{"outside it", `{"conditions": {"locations": {"includeLocations": ["` + locOther + `"]}}}`, Request{UserID: alice, Applications: exo, IP: netip.MustParseAddr("198.51.101.1")}, ReasonLocation},
		{"IPv4-mapped address", `{"conditions": {"locations": {"includeLocations": ["` + locOther + `"]}}}`, Request{UserID: alice, Applications: exo, IP: netip.MustParseAddr("::ffff:198.51.100.7")}, 0},
		{"IPv6 range", `{"conditions": {"locations": {"includeLocations": ["` + locTrusted + `"]}}}`, Request{UserID: alice, Applications: exo, IP: netip.MustParseAddr("2001:db8:1:ffff::1")}, 0},
		{"excluded country", `{"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["` + locUS + `"]}}}`, Request{UserID: alice, Applications: exo, IP: netip.MustParseAddr("192.0.2.1"), Country: "US"}, ReasonLocation},
		{"other country", `{"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["` + locUS + `"]}}}`, Request{UserID: alice, Applications: exo, IP: netip.MustParseAddr("192.0.2.1"), Country: "NL"}, 0},
		{"All without location", `{"conditions": {"locations": {"includeLocations": ["All"]}}}`, Request{UserID: alice, Applications: exo}, 0},
		{"exclusion without location", `{"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}`, Request{UserID: alice, Applications: exo}, ReasonLocation},
		{"IP location, country only", `{"conditions": {"locations": {"includeLocations": ["` + locOther + `"]}}}`, Request{UserID: alice, Applications: exo, Country: "US"}, ReasonLocation},
		{"country location, country only", `{"conditions": {"locations": {"includeLocations": ["` + locUS + `"]}}}`, Request{UserID: alice, Applications: exo, Country: "US"}, 0},

		// Risk.
		{"sign-in risk listed", `{"conditions": {"signInRiskLevels": ["high", "medium"]}}`, Request{UserID: alice, Applications: exo, SignInRisk: RiskMedium}, 0},
		{"sign-in risk lower", `{"conditions": {"signInRiskLevels": ["high", "medium"]}}`, Request{UserID: alice, Applications: exo, SignInRisk: RiskLow}, ReasonSignInRisk},
		{"sign-in risk none", `{"conditions": {"signInRiskLevels": ["high"]}}`, Request{UserID: alice, Applications: exo}, ReasonSignInRisk},
		{"user risk", `{"conditions": {"userRiskLevels": ["high"]}}`, Request{UserID: alice, Applications: exo, UserRisk: RiskHigh}, 0},
		{"user risk first", `{"conditions": {"userRiskLevels": ["high"], "signInRiskLevels": ["high"]}}`, Request{UserID: alice, Applications: exo}, ReasonUserRisk},
		{"insider risk", `{"conditions": {"insiderRiskLevels": "moderate,elevated"}}`, Request{UserID: alice, Applications: exo, InsiderRisk: InsiderRiskElevated}, 0},
		{"insider risk none", `{"conditions": {"insiderRiskLevels": "elevated"}}`, Request{UserID: alice, Applications: exo}, ReasonInsiderRisk},
		{"device code flow", `{"conditions": {"authenticationFlows": {"transferMethods": "deviceCodeFlow"}}}`, Request{UserID: alice, Applications: exo, AuthenticationFlow: TransferDeviceCodeFlow}, 0},
		{"ordinary flow", `{"conditions": {"authenticationFlows": {"transferMethods": "deviceCodeFlow,authenticationTransfer"}}}`, Request{UserID: alice, Applications: exo}, ReasonAuthenticationFlow},

		// Device filters.
		{"exclude compliant: compliant", `{"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True"}}}}`,
			Request{UserID: alice, Applications: exo, Device: &devicefilter.Device{Registered: true, IsCompliant: boolPtr(true)}}, ReasonDevices},
		{"exclude compliant: unregistered", `{"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True"}}}}`,
			Request{UserID: alice, Applications: exo, Device: &devicefilter.Device{}}, 0},
		{"include company: unregistered", `{"conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.deviceOwnership -eq \"Company\""}}}}`,
			Request{UserID: alice, Applications: exo, Device: &devicefilter.Device{}}, ReasonDevices},
		{"include not hybrid: unregistered", `{"conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.trustType -ne \"ServerAD\""}}}}`,
			Request{UserID: alice, Applications: exo, Device: &devicefilter.Device{}}, 0},
		{"device not given", `{"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True"}}}}`,
			Request{UserID: alice, Applications: exo}, ReasonDevices},

		// Policies with nothing to enforce.
		{"empty policy", `{"grantControls": null}`, Request{UserID: alice, Applications: exo}, ReasonEmptyPolicy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mkPolicy(t, tt.policy)
			req := tt.req
			ok, reason := applies(t, p, CompileOptions{NamedLocations: testLocations}, &req)
			if ok != (tt.want == 0) || reason != tt.want {
				t.Errorf("applies %v, reason %v; want reason %v", ok, reason, tt.want)
			}
		})
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	exo := []string{exchange}
	compliant := &devicefilter.Device{Registered: true, IsCompliant: boolPtr(true)}
	hybrid := &devicefilter.Device{Registered: true, TrustType: "ServerAD"}
	for _, tt := range []struct {
		name    string
		grant   string
		req     Request
		outcome Outcome
		unmet   Control
		status  Status
	}{
		{"mfa met by claim", `{"operator": "OR", "builtInControls": ["mfa"]}`, Request{Satisfied: ControlMFA}, OutcomeGrant, 0, StatusSuccess},
		{"mfa met by methods", `{"operator": "OR", "builtInControls": ["mfa"]}`, Request{Methods: MethodPassword | MethodMicrosoftAuthenticatorPush}, OutcomeGrant, 0, StatusSuccess},
		{"password alone is not mfa", `{"operator": "OR", "builtInControls": ["mfa"]}`, Request{Methods: MethodPassword}, OutcomeInterrupt, ControlMFA, StatusFailure},
		{"compliant device", `{"operator": "OR", "builtInControls": ["compliantDevice"]}`, Request{Device: compliant}, OutcomeGrant, 0, StatusSuccess},
		{"hybrid joined", `{"operator": "OR", "builtInControls": ["domainJoinedDevice"]}`, Request{Device: hybrid}, OutcomeGrant, 0, StatusSuccess},
		{"compliant or hybrid, neither", `{"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]}`, Request{Device: &devicefilter.Device{}}, OutcomeInterrupt, ControlCompliantDevice, StatusFailure},
		{"unregistered device claims compliance", `{"operator": "OR", "builtInControls": ["compliantDevice"]}`, Request{Device: &devicefilter.Device{IsCompliant: boolPtr(true)}}, OutcomeInterrupt, ControlCompliantDevice, StatusFailure},
		{"legacy client cannot do mfa", `{"operator": "OR", "builtInControls": ["mfa"]}`, Request{ClientApp: ClientAppExchangeActiveSync, Satisfied: ControlMFA}, OutcomeBlock, ControlMFA, StatusFailure},
		{"legacy client, no device state", `{"operator": "OR", "builtInControls": ["compliantDevice"]}`, Request{ClientApp: ClientAppOther, Device: compliant}, OutcomeBlock, ControlCompliantDevice, StatusFailure},
		{"app protection is unsupported", `{"operator": "OR", "builtInControls": ["compliantApplication"]}`, Request{Satisfied: ControlCompliantApplication}, OutcomeBlock, ControlCompliantApplication, StatusFailure},
		{"approved app or mfa", `{"operator": "OR", "builtInControls": ["approvedApplication", "mfa"]}`, Request{}, OutcomeInterrupt, ControlMFA, StatusFailure},
		{"approved app or mfa, mfa done", `{"operator": "OR", "builtInControls": ["approvedApplication", "mfa"]}`, Request{Satisfied: ControlMFA}, OutcomeGrant, 0, StatusSuccess},
		{"mfa and terms of use", `{"operator": "AND", "builtInControls": ["mfa"], "termsOfUse": ["ce580154-086a-40fd-91df-8a60abac81a0"]}`, Request{Satisfied: ControlMFA}, OutcomeBlock, ControlTermsOfUse, StatusFailure},
		{"phishing-resistant: fido2", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}}`, Request{Methods: MethodFIDO2}, OutcomeGrant, 0, StatusSuccess},
		{"phishing-resistant: password and sms", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}}`, Request{Methods: MethodPassword | MethodSMS, Satisfied: ControlMFA}, OutcomeInterrupt, ControlAuthenticationStrength, StatusFailure},
		{"passwordless: phone sign-in", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000003"}}`, Request{Methods: MethodDeviceBasedPush}, OutcomeGrant, 0, StatusSuccess},
		{"passwordless: password and push", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000003"}}`, Request{Methods: MethodPassword | MethodMicrosoftAuthenticatorPush}, OutcomeInterrupt, ControlAuthenticationStrength, StatusFailure},
		{"mfa strength: mfa claim", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002"}}`, Request{Satisfied: ControlMFA}, OutcomeGrant, 0, StatusSuccess},
		{"custom strength", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "9a5b1c7e-0000-4000-8000-000000000001", "allowedCombinations": ["fido2", "password,hardwareOath"]}}`, Request{Methods: MethodPassword | MethodHardwareOath}, OutcomeGrant, 0, StatusSuccess},
		{"custom strength by id only", `{"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "9a5b1c7e-0000-4000-8000-000000000001"}}`, Request{Methods: MethodFIDO2}, OutcomeInterrupt, ControlAuthenticationStrength, StatusFailure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"grantControls": `+tt.grant+`}`))
			req := tt.req
			req.UserID, req.Applications = alice, exo
			res := evaluate(e, &req)
			if res.Outcome != tt.outcome || res.Unmet != tt.unmet || res.Policies[0].Status != tt.status {
				t.Errorf("got %v, status %v; want %v unmet %v, status %v", res, res.Policies[0].Status, tt.outcome, tt.unmet, tt.status)
			}
			if tt.unmet&ControlAuthenticationStrength != 0 && len(res.Strengths) != 1 {
				t.Errorf("strengths %v; want the policy's", res.Strengths)
			}
		})
	}
}

func TestUnmetMerge(t *testing.T) {
	t.Parallel()
	// An OR policy whose alternative another policy already requires adds
	// nothing; otherwise its first supported control in prompt order.
	e := compile(t, CompileOptions{},
		mkPolicy(t, `{"displayName": "device", "grantControls": {"operator": "AND", "builtInControls": ["compliantDevice"]}}`),
		mkPolicy(t, `{"displayName": "device or mfa", "grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}}`),
		mkPolicy(t, `{"displayName": "app or hybrid", "grantControls": {"operator": "OR", "builtInControls": ["approvedApplication", "domainJoinedDevice"]}}`))
	res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}})
	if want := ControlCompliantDevice | ControlDomainJoinedDevice; res.Unmet != want || res.Outcome != OutcomeInterrupt {
		t.Errorf("got %v; want interrupt with %v", res, want)
	}
	if pr := res.Policies[1]; !pr.AnyOf || pr.Unmet != ControlMFA|ControlCompliantDevice {
		t.Errorf("OR policy %+v; want both alternatives", pr)
	}
}

func TestSessionMerge(t *testing.T) {
	t.Parallel()
	e := compile(t, CompileOptions{},
		mkPolicy(t, `{"displayName": "12h", "grantControls": null, "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": 12}, "persistentBrowser": {"isEnabled": true, "mode": "always"}}}`),
		mkPolicy(t, `{"displayName": "4h", "grantControls": null, "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": 4, "authenticationType": "secondaryAuthentication"}, "continuousAccessEvaluation": {"mode": "strictLocation"}}}`),
		mkPolicy(t, `{"displayName": "1 day", "grantControls": null, "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "days", "value": 1}, "persistentBrowser": {"isEnabled": true, "mode": "never"}}}`),
		mkPolicy(t, `{"displayName": "report-only every time", "state": "enabledForReportingButNotEnforced", "grantControls": null,
			"sessionControls": {"signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime"}, "continuousAccessEvaluation": {"mode": "disabled"}}}`),
	)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	req := &Request{UserID: alice, Applications: []string{exchange}, SignInRisk: RiskHigh, Now: now, SignInTime: now.Add(-5 * time.Hour), MFATime: now.Add(-time.Hour)}
	res := evaluate(e, req)
	s := res.Session
	want := Frequency{Set: true, Interval: 4 * time.Hour, Secondary: true}
	if s.SignInFrequency != want || s.PersistentBrowser != BrowserNever || s.ContinuousAccessEvaluation != CAEStrictLocation {
		t.Errorf("session %+v; want 4h secondary, never persistent, strict location (report-only ignored)", s)
	}
	if res.Outcome != OutcomeGrant {
		t.Errorf("outcome %v; want grant (MFA an hour ago is within 4h)", res.Outcome)
	}
	req.MFATime = now.Add(-5 * time.Hour)
	if res := evaluate(e, req); !res.Session.SignInFrequency.Reauthenticate || res.Outcome != OutcomeInterrupt {
		t.Errorf("MFA 5h ago: %v; want reauthentication", res)
	}
	w := res.WhatIf().Result.SessionControls
	if w.SignInFrequency.Type != "hours" || w.SignInFrequency.Value != 4 || w.PersistentBrowser.Mode != "never" || w.ContinuousAccessEvaluation.Mode != "strictLocation" {
		t.Errorf("What If session controls %+v", w)
	}
}

func TestAssumedConditions(t *testing.T) {
	t.Parallel()
	gps := directory.NamedLocation{ODataType: directory.ODataCountryNamedLocation, ID: "e0000000-0000-4000-8000-000000000034",
		DisplayName: "GPS", CountriesAndRegions: []string{"FR"}, CountryLookupMethod: directory.CountryLookupAuthenticatorAppGPS}
	e := compile(t, CompileOptions{NamedLocations: append(slices.Clone(testLocations), gps)},
		mkPolicy(t, `{"displayName": "times", "conditions": {"times": {"included": {"@odata.type": "#microsoft.graph.conditionalAccessAllTimes"}}}, "grantControls": {"builtInControls": ["block"]}}`),
		mkPolicy(t, `{"displayName": "gps", "conditions": {"locations": {"includeLocations": ["`+gps.ID+`"]}}}`),
		mkPolicy(t, `{"displayName": "app filter", "conditions": {"applications": {"applicationFilter": {"mode": "include", "rule": "CustomSecurityAttribute.Sensitivity -eq \"High\""}}}}`))
	res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr("192.0.2.1"), Country: "US"})
	for i, want := range []Reason{ReasonTime, ReasonLocation, ReasonApplication} {
		if pr := res.Policies[i]; !pr.Applies || pr.Assumed != want {
			t.Errorf("%s: %+v; want applied with %v assumed", e.Policies()[i].DisplayName, pr, want)
		}
	}
	if res.Outcome != OutcomeBlock {
		t.Errorf("outcome %v; want block (an unevaluable condition is assumed to hold)", res.Outcome)
	}
	if got := res.WhatIf().Value[0].AssumedConditions; !slices.Equal(got, []string{"time"}) {
		t.Errorf("What If assumedConditions %v", got)
	}
}

func TestUnsupportedSessionControl(t *testing.T) {
	t.Parallel()
	e := compile(t, CompileOptions{}, mkPolicy(t, `{"grantControls": null, "sessionControls": {"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "blockDownloads"}}}`),
		mkPolicy(t, `{"state": "enabledForReportingButNotEnforced", "sessionControls": {"applicationEnforcedRestrictions": {"isEnabled": true}}}`))
	res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Satisfied: ControlMFA})
	if res.Outcome != OutcomeBlock || res.Unmet != ControlCloudAppSecurity {
		t.Errorf("got %v; want block with cloudAppSecurity unmet", res)
	}
	if res.Policies[1].Status != StatusReportOnlyFailure || res.Policies[1].Unmet != ControlApplicationEnforcedRestrictions {
		t.Errorf("report-only %+v; want failure on applicationEnforcedRestrictions", res.Policies[1])
	}
}

// TestEvaluateReuse checks that a reused Result carries nothing over.
func TestEvaluateReuse(t *testing.T) {
	t.Parallel()
	small := compile(t, CompileOptions{}, mkPolicy(t, `{"grantControls": {"builtInControls": ["block"]}}`))
	big := compile(t, CompileOptions{}, mkPolicy(t, `{}`), mkPolicy(t, `{"conditions": {"users": {"excludeUsers": ["`+alice+`"]}}}`))
	var res Result
	req := &Request{UserID: alice, Applications: []string{exchange}}
	small.Evaluate(req, &res)
	big.Evaluate(&Request{UserID: alice, Applications: []string{exchange}, Satisfied: ControlMFA}, &res)
	if res.Outcome != OutcomeGrant || len(res.Policies) != 2 || res.Policies[1].Applies || res.Engine() != big {
		t.Errorf("got %v %+v", res, res.Policies)
	}
	small.Evaluate(req, &res)
	if res.Outcome != OutcomeBlock || len(res.Policies) != 1 {
		t.Errorf("back to small: %v", res)
	}
}
