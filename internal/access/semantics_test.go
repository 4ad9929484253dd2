package access

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/strictjson"
)

// Ids the semantics cases use.
const (
	alice      = "a0000000-0000-4000-8000-000000000001"
	bob        = "b0000000-0000-4000-8000-000000000002"
	groupG     = "c0000000-0000-4000-8000-000000000010"
	groupG2    = "c0000000-0000-4000-8000-000000000011"
	groupChild = "c0000000-0000-4000-8000-000000000012"
	spID       = "d0000000-0000-4000-8000-000000000020"
	locTrusted = "e0000000-0000-4000-8000-000000000030"
	locOther   = "e0000000-0000-4000-8000-000000000031"
	locUS      = "e0000000-0000-4000-8000-000000000032"
	exchange   = "00000002-0000-0ff1-ce00-000000000000"
	sharePoint = "00000003-0000-0ff1-ce00-000000000000"
)

// testLocations: a trusted and an untrusted IP location, and the United
// States by country.
var testLocations = []directory.NamedLocation{
	{ODataType: directory.ODataIPNamedLocation, ID: locTrusted, DisplayName: "HQ", IsTrusted: true,
		IPRanges: []directory.IPRange{{CIDRAddress: "203.0.113.0/24"}, {CIDRAddress: "2001:db8:1::/48"}}},
	{ODataType: directory.ODataIPNamedLocation, ID: locOther, DisplayName: "Branch",
		IPRanges: []directory.IPRange{{CIDRAddress: "198.51.100.0/24"}}},
	{ODataType: directory.ODataCountryNamedLocation, ID: locUS, DisplayName: "US", CountriesAndRegions: []string{"US"}},
}

func boolPtr(b bool) *bool { return &b }

// TestSemanticsVectors runs one case per semantics vector of
// conditional-access-vectors.json, named by the vector's id; a vector
// without a case fails the test.
func TestSemanticsVectors(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T){
		"multi-policy-and": func(t *testing.T) {
			e := compile(t, CompileOptions{},
				mkPolicy(t, `{"displayName": "P1", "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`),
				mkPolicy(t, `{"displayName": "P2", "grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}})
			if res.Outcome != OutcomeInterrupt || res.Unmet != ControlMFA|ControlCompliantDevice {
				t.Errorf("got %v; want interrupt requiring mfa and compliantDevice", res)
			}
			// Satisfying one leaves the other.
			res = evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Satisfied: ControlMFA})
			if res.Outcome != OutcomeInterrupt || res.Unmet != ControlCompliantDevice {
				t.Errorf("with mfa: got %v; want interrupt requiring compliantDevice", res)
			}
		},
		"block-wins": func(t *testing.T) {
			e := compile(t, CompileOptions{},
				mkPolicy(t, `{"displayName": "P1", "grantControls": {"operator": "OR", "builtInControls": ["block"]}}`),
				mkPolicy(t, `{"displayName": "P2", "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Satisfied: ControlMFA})
			if res.Outcome != OutcomeBlock || !res.Policies[0].Block || res.Policies[1].Status != StatusSuccess {
				t.Errorf("got %v %+v; want block", res, res.Policies)
			}
		},
		"assignments-anded": func(t *testing.T) {
			e := compile(t, CompileOptions{NamedLocations: testLocations}, mkPolicy(t, `{"conditions": {
				"users": {"includeUsers": [], "includeGroups": ["`+groupG+`"]},
				"applications": {"includeApplications": ["`+exchange+`"]},
				"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}`))
			req := &Request{UserID: alice, Groups: []string{groupG}, Applications: []string{exchange}, IP: netip.MustParseAddr("203.0.113.7")}
			if pr := evaluate(e, req).Policies[0]; pr.Applies || pr.Reason != ReasonLocation {
				t.Errorf("from a trusted location: %+v; want not applied (location)", pr)
			}
			req.IP = netip.MustParseAddr("192.0.2.1")
			if pr := evaluate(e, req).Policies[0]; !pr.Applies {
				t.Errorf("from elsewhere: %+v; want applied", pr)
			}
		},
		"exclude-beats-include": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"conditions": {"users": {"includeUsers": [],
				"includeGroups": ["`+groupG+`"], "excludeGroups": ["`+groupG2+`"]}}}`))
			if pr := evaluate(e, &Request{UserID: alice, Groups: []string{groupG, groupG2}, Applications: []string{exchange}}).Policies[0]; pr.Applies || pr.Reason != ReasonUsers {
				t.Errorf("in both groups: %+v; want not applied (users)", pr)
			}
			if pr := evaluate(e, &Request{UserID: alice, Groups: []string{groupG}, Applications: []string{exchange}}).Policies[0]; !pr.Applies {
				t.Errorf("in the included group only: %+v; want applied", pr)
			}
		},
		"nested-groups": func(t *testing.T) {
			dir, err := ParseStaticDirectory([]byte(`{"users": [{"id": "` + alice + `", "memberOf": ["` + groupChild + `"]}],
				"groups": [{"id": "` + groupChild + `", "memberOf": ["` + groupG + `"]}]}`))
			if err != nil {
				t.Fatal(err)
			}
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"conditions": {"users": {"includeUsers": [], "includeGroups": ["`+groupG+`"]}}}`))
			req := &Request{UserID: alice, Applications: []string{exchange}}
			req.Resolve(dir)
			if pr := evaluate(e, req).Policies[0]; !pr.Applies {
				t.Errorf("member of the parent through the child: %+v (groups %v); want applied", pr, req.Groups)
			}
		},
		"all-users-includes-guests": func(t *testing.T) {
			dir, err := ParseStaticDirectory([]byte(`{"users": [{"id": "` + bob + `", "userType": "Guest"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			e := compile(t, CompileOptions{}, mkPolicy(t, `{}`))
			req := &Request{UserID: bob, Applications: []string{exchange}}
			req.Resolve(dir)
			if req.GuestType == 0 {
				t.Fatal("Resolve did not mark the guest")
			}
			if pr := evaluate(e, req).Policies[0]; !pr.Applies {
				t.Errorf("guest under includeUsers All: %+v; want applied", pr)
			}
		},
		"managed-identity-not-covered": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"conditions": {"users": {"includeUsers": ["None"]},
				"clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}},
				"grantControls": {"builtInControls": ["block"]}}`))
			if pr := evaluate(e, &Request{Identity: IdentityManagedIdentity, ServicePrincipalID: spID, Applications: []string{exchange}}).Policies[0]; pr.Applies || pr.Reason != ReasonWorkloadIdentities {
				t.Errorf("managed identity: %+v; want not applied (workloadIdentities)", pr)
			}
			if pr := evaluate(e, &Request{Identity: IdentityServicePrincipal, ServicePrincipalID: spID, Applications: []string{exchange}}).Policies[0]; !pr.Applies {
				t.Errorf("single-tenant service principal: %+v; want applied", pr)
			}
		},
		"or-operator": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Device: &devicefilter.Device{Registered: true, IsCompliant: boolPtr(true)}})
			if res.Outcome != OutcomeGrant || res.Policies[0].Status != StatusSuccess {
				t.Errorf("compliant device only: %v; want grant", res)
			}
		},
		"and-operator": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"grantControls": {"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Satisfied: ControlMFA,
				Device: &devicefilter.Device{Registered: true, IsCompliant: boolPtr(false)}})
			if res.Outcome != OutcomeInterrupt || res.Policies[0].Status != StatusFailure || res.Policies[0].Unmet != ControlCompliantDevice {
				t.Errorf("mfa only: %v %+v; want interrupt requiring compliantDevice", res, res.Policies[0])
			}
		},
		"grant-prompt-order": func(t *testing.T) {
			want := []string{"mfa", "compliantDevice", "domainJoinedDevice", "approvedApplication", "compliantApplication",
				"passwordChange", "termsOfUse", "customAuthenticationFactors"}
			// Policies list their controls in another order; the unmet
			// controls come out in the documented one.
			e := compile(t, CompileOptions{},
				mkPolicy(t, `{"displayName": "devices and apps", "grantControls": {"operator": "AND",
					"builtInControls": ["compliantApplication", "domainJoinedDevice", "approvedApplication", "compliantDevice"],
					"termsOfUse": ["ce580154-086a-40fd-91df-8a60abac81a0"], "customAuthenticationFactors": ["duo"]}}`),
				mkPolicy(t, `{"displayName": "risky users", "conditions": {"userRiskLevels": ["high"]},
					"grantControls": {"operator": "AND", "builtInControls": ["passwordChange", "mfa"]}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, UserRisk: RiskHigh})
			if got := res.Unmet.Names(); !slices.Equal(got, want) {
				t.Errorf("unmet = %v; want %v", got, want)
			}
		},
		"password-change-constraints": func(t *testing.T) {
			for _, tt := range []struct{ name, overrides, path string }{
				{"alone with OR", `{"conditions": {"userRiskLevels": ["high"]}, "grantControls": {"operator": "OR", "builtInControls": ["passwordChange"]}}`, "grantControls.builtInControls"},
				{"with mfa but OR", `{"conditions": {"userRiskLevels": ["high"]}, "grantControls": {"operator": "OR", "builtInControls": ["mfa", "passwordChange"]}}`, "grantControls.builtInControls"},
				{"without user risk", `{"grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}`, "conditions.userRiskLevels"},
				{"not all apps", `{"conditions": {"userRiskLevels": ["high"], "applications": {"includeApplications": ["` + exchange + `"]}}, "grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}`, "conditions.applications"},
				{"other condition", `{"conditions": {"userRiskLevels": ["high"], "signInRiskLevels": ["high"]}, "grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}`, "conditions"},
			} {
				_, _, err := ParsePolicy(mergeJSON(t, basePolicy, tt.overrides))
				var fe *strictjson.FieldError
				if !errors.As(err, &fe) || fe.Path != tt.path {
					t.Errorf("%s: err = %v; want an error at %s", tt.name, err, tt.path)
				}
			}
			mkPolicy(t, `{"conditions": {"userRiskLevels": ["high"]}, "grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}`)
		},
		"client-apps-unconfigured": func(t *testing.T) {
			for _, types := range []string{`["all"]`, `["All"]`, `[]`} {
				e := compile(t, CompileOptions{}, mkPolicy(t, `{"conditions": {"clientAppTypes": `+types+`}}`))
				if pr := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, ClientApp: ClientAppExchangeActiveSync}).Policies[0]; !pr.Applies {
					t.Errorf("clientAppTypes %s, Exchange ActiveSync: %+v; want applied", types, pr)
				}
			}
		},
		"platform-unconfigured": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"conditions": {"platforms": null}}`))
			if pr := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Platform: PlatformLinux}).Policies[0]; !pr.Applies {
				t.Errorf("linux: %+v; want applied", pr)
			}
		},
		"location-unconfigured": func(t *testing.T) {
			e := compile(t, CompileOptions{NamedLocations: testLocations}, mkPolicy(t, `{"conditions": {"locations": null}}`))
			if pr := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr("198.51.100.3")}).Policies[0]; !pr.Applies {
				t.Errorf("any address: %+v; want applied", pr)
			}
		},
		"alltrusted-contents": func(t *testing.T) {
			mfaIPs := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}
			e := compile(t, CompileOptions{NamedLocations: testLocations, MFATrustedIPs: mfaIPs},
				mkPolicy(t, `{"conditions": {"locations": {"includeLocations": ["AllTrusted"]}}}`))
			for _, tt := range []struct {
				ip   string
				want bool
			}{
				{"203.0.113.9", true},   // a named location marked trusted
				{"2001:db8:1::5", true}, // its IPv6 range
				{"192.0.2.3", true},     // an MFA trusted IP
				{"198.51.100.3", false}, // a named location not marked trusted
				{"192.0.2.17", false},
			} {
				if pr := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr(tt.ip)}).Policies[0]; pr.Applies != tt.want {
					t.Errorf("%s: applies = %v; want %v", tt.ip, pr.Applies, tt.want)
				}
			}
		},
		"unknown-country": func(t *testing.T) {
			locs := slices.Clone(testLocations)
			unknownToo := directory.NamedLocation{ODataType: directory.ODataCountryNamedLocation, ID: "e0000000-0000-4000-8000-000000000033",
				DisplayName: "US or unknown", CountriesAndRegions: []string{"US"}, IncludeUnknownCountriesAndRegions: true}
			e := compile(t, CompileOptions{NamedLocations: append(locs, unknownToo)},
				mkPolicy(t, `{"displayName": "US", "conditions": {"locations": {"includeLocations": ["`+locUS+`"]}}}`),
				mkPolicy(t, `{"displayName": "US or unknown", "conditions": {"locations": {"includeLocations": ["`+unknownToo.ID+`"]}}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr("192.0.2.99")}) // maps to no country
			if res.Policies[0].Applies || !res.Policies[1].Applies {
				t.Errorf("unknown country: %+v; want only the location with includeUnknownCountriesAndRegions", res.Policies)
			}
			res = evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr("192.0.2.99"), Country: "US"})
			if !res.Policies[0].Applies || !res.Policies[1].Applies {
				t.Errorf("US: %+v; want both", res.Policies)
			}
		},
		"xff-ignored": func(t *testing.T) {
			// The engine decides on Request.IP, the egress address the
			// connection came from; it has no input for X-Forwarded-For.
			// (Stripping that header is the enforcement point's job.)
			e := compile(t, CompileOptions{NamedLocations: testLocations},
				mkPolicy(t, `{"conditions": {"locations": {"includeLocations": ["`+locTrusted+`"]}}}`))
			req := &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr("203.0.113.10")}
			if !evaluate(e, req).Policies[0].Applies {
				t.Error("egress address in the location: want applied")
			}
			for f := range reflect.TypeFor[Request]().Fields() {
				if strings.Contains(strings.ToLower(f.Name), "forward") {
					t.Errorf("Request.%s: the engine must not take a forwarded address", f.Name)
				}
			}
		},
		"report-only-not-enforced": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"state": "enabledForReportingButNotEnforced", "grantControls": {"builtInControls": ["block"]}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}})
			if res.Outcome != OutcomeNotApplied || res.Policies[0].Status != StatusReportOnlyFailure {
				t.Errorf("got %v, status %v; want notApplied, reportOnlyFailure", res, res.Policies[0].Status)
			}
		},
		"report-only-user-action": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"state": "enabledForReportingButNotEnforced"}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}})
			if res.Outcome != OutcomeNotApplied || res.Policies[0].Status != StatusReportOnlyInterrupted {
				t.Errorf("got %v, status %v; want notApplied, reportOnlyInterrupted", res, res.Policies[0].Status)
			}
		},
		"report-only-success": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"state": "enabledForReportingButNotEnforced"}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}, Satisfied: ControlMFA})
			if res.Policies[0].Status != StatusReportOnlySuccess {
				t.Errorf("status %v; want reportOnlySuccess", res.Policies[0].Status)
			}
		},
		"report-only-not-applied": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"state": "enabledForReportingButNotEnforced", "conditions": {"users": {"excludeUsers": ["`+alice+`"]}}}`))
			res := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}})
			if res.Policies[0].Status != StatusReportOnlyNotApplied || res.Policies[0].Reason != ReasonUsers {
				t.Errorf("got %+v; want reportOnlyNotApplied (users)", res.Policies[0])
			}
		},
		"report-only-user-actions-unsupported": func(t *testing.T) {
			_, notes, err := ParsePolicy(mergeJSON(t, basePolicy, `{"state": "enabledForReportingButNotEnforced",
				"conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]}}}`))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(notes, func(n Note) bool {
				return n.Path == "state" && strings.HasPrefix(n.Message, "unsupported: Entra does not support report-only mode for user actions")
			}) {
				t.Errorf("notes = %v; want one on state", notes)
			}
		},
		"whatif-only-enabled-and-reportonly": func(t *testing.T) {
			e := compile(t, CompileOptions{},
				mkPolicy(t, `{"displayName": "off", "state": "disabled"}`),
				mkPolicy(t, `{"displayName": "on", "state": "enabled"}`),
				mkPolicy(t, `{"displayName": "report", "state": "enabledForReportingButNotEnforced"}`))
			var states []string
			for _, p := range e.Policies() {
				states = append(states, p.State)
			}
			if !slices.Equal(states, []string{StateEnabled, StateReportOnly}) {
				t.Errorf("evaluated %v; want enabled and report-only", states)
			}
		},
		"whatif-reason-first-failed-condition": func(t *testing.T) {
			e := compile(t, CompileOptions{NamedLocations: testLocations}, mkPolicy(t, `{"conditions": {
				"applications": {"includeApplications": ["`+sharePoint+`"]},
				"locations": {"includeLocations": ["`+locOther+`"]},
				"platforms": {"includePlatforms": ["iOS"]}, "clientAppTypes": ["browser"]}}`))
			req := &Request{UserID: alice, Applications: []string{exchange}, IP: netip.MustParseAddr("203.0.113.1"), Platform: PlatformWindows, ClientApp: ClientAppOther}
			for _, want := range []Reason{ReasonApplication, ReasonLocation, ReasonDevicePlatform, ReasonClientApps, 0} {
				res := evaluate(e, req)
				pr := res.Policies[0]
				if pr.Reason != want || pr.Applies != (want == 0) {
					t.Fatalf("reason %v (applies %v); want %v", pr.Reason, pr.Applies, want)
				}
				if got := res.WhatIf().Value[0].AnalysisReasons; got != want.String() {
					t.Errorf("analysisReasons %q; want %q", got, want.String())
				}
				// Fix the condition that failed; the next one shows.
				switch want {
				case ReasonApplication:
					req.Applications = []string{sharePoint}
				case ReasonLocation:
					req.IP = netip.MustParseAddr("198.51.100.1")
				case ReasonDevicePlatform:
					req.Platform = PlatformIOS
				case ReasonClientApps:
					req.ClientApp = ClientAppBrowser
				}
			}
			if got := Reason(0).String(); got != "notSet" {
				t.Errorf("no reason is %q; want notSet", got)
			}
		},
		"cae-disable-constraint": func(t *testing.T) {
			_, _, err := ParsePolicy(mergeJSON(t, basePolicy, `{"conditions": {"applications": {"includeApplications": ["Office365"]}},
				"grantControls": null, "sessionControls": {"continuousAccessEvaluation": {"mode": "disabled"}}}`))
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) || fe.Path != "sessionControls.continuousAccessEvaluation" {
				t.Errorf("err = %v; want an error at sessionControls.continuousAccessEvaluation", err)
			}
			mkPolicy(t, `{"grantControls": null, "sessionControls": {"continuousAccessEvaluation": {"mode": "disabled"}}}`)
		},
		"sif-everytime-skew": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{"conditions": {"signInRiskLevels": ["high"]},
				"sessionControls": {"signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime", "authenticationType": "primaryAndSecondaryAuthentication"}}}`))
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			req := &Request{UserID: alice, Applications: []string{exchange}, SignInRisk: RiskHigh, Satisfied: ControlMFA, Now: now, SignInTime: now.Add(-3 * time.Minute)}
			if res := evaluate(e, req); res.Session.SignInFrequency.Reauthenticate || res.Outcome != OutcomeGrant {
				t.Errorf("3 minutes ago: %v; want grant without reauthentication", res)
			}
			req.SignInTime = now.Add(-6 * time.Minute)
			if res := evaluate(e, req); !res.Session.SignInFrequency.Reauthenticate || res.Outcome != OutcomeInterrupt {
				t.Errorf("6 minutes ago: %v; want reauthentication", res)
			}
		},
		"sif-default": func(t *testing.T) {
			e := compile(t, CompileOptions{}, mkPolicy(t, `{}`))
			f := evaluate(e, &Request{UserID: alice, Applications: []string{exchange}}).Session.SignInFrequency
			if f.Set || f.Interval != 90*24*time.Hour {
				t.Errorf("sign-in frequency %+v; want the default rolling 90 days", f)
			}
		},
		"auth-context-range": func(t *testing.T) {
			for _, c := range []string{"c1", "c9", "c10", "c37", "c99"} {
				mkPolicy(t, `{"conditions": {"applications": {"includeApplications": [], "includeAuthenticationContextClassReferences": ["`+c+`"]}}}`)
			}
			for _, c := range []string{"c0", "c100", "C1", "c01", "c", "1", "c1a"} {
				_, _, err := ParsePolicy(mergeJSON(t, basePolicy, `{"conditions": {"applications": {"includeApplications": [], "includeAuthenticationContextClassReferences": ["`+c+`"]}}}`))
				var fe *strictjson.FieldError
				if !errors.As(err, &fe) || fe.Path != "conditions.applications.includeAuthenticationContextClassReferences[0]" {
					t.Errorf("%q: err = %v; want an error at its path", c, err)
				}
			}
		},
	}
	for _, v := range loadVectors(t).Semantics {
		run, ok := cases[v.ID]
		if !ok {
			t.Errorf("semantics vector %s has no test case", v.ID)
			continue
		}
		delete(cases, v.ID)
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			run(t)
		})
	}
	for id := range cases {
		t.Errorf("case %s matches no vector", id)
	}
}
