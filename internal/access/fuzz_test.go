package access

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	"github.com/verityhq/verity/internal/access/devicefilter"
)

// FuzzParsePolicy: ParsePolicies never panics; what it accepts survives a
// round trip through JSON, compiles (unless it names an unknown location)
// and evaluates.
func FuzzParsePolicy(f *testing.F) {
	for _, pf := range allPolicyFiles(f) {
		f.Add(pf.data)
	}
	f.Add([]byte(basePolicy))
	f.Add([]byte(`{"value": [` + basePolicy + `]}`))
	f.Add([]byte(`[{"name": "t", "id": "c7503427-338e-4c5e-902d-abe252abfb43", "details": {}}]`))
	groups := appGroups(f)
	reqs := []*Request{
		{UserID: alice, Groups: []string{groupG}, Applications: []string{exchange}, IP: netip.MustParseAddr("203.0.113.1"), Country: "US",
			ClientApp: ClientAppBrowser, Platform: PlatformWindows, Device: &devicefilter.Device{Registered: true, IsCompliant: boolPtr(true)}},
		{Identity: IdentityServicePrincipal, ServicePrincipalID: spID, Applications: []string{sharePoint}},
		{UserID: bob, UserAction: UserActionRegisterSecurityInformation, GuestType: AnyGuest},
		{UserID: alice, AuthenticationContext: "c1", ClientApp: ClientAppOther, Platform: PlatformUnknown},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, _, err := ParsePolicies(data)
		if err != nil {
			return
		}
		for _, p := range ps {
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			q, _, err := ParsePolicy(b)
			if err != nil {
				t.Fatalf("reparse: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(p, q) {
				t.Fatalf("round trip changed the policy:\n%s", b)
			}
		}
		e, err := Compile(ps, CompileOptions{NamedLocations: testLocations, AppGroups: groups})
		if err != nil {
			return
		}
		var res Result
		for _, r := range reqs {
			e.Evaluate(r, &res)
			if len(res.Policies) != len(e.Policies()) {
				t.Fatalf("%d results for %d policies", len(res.Policies), len(e.Policies()))
			}
			if _, err := json.Marshal(res.WhatIf()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzParseEvaluateRequest: the evaluate request parser never panics, and
// what it accepts evaluates.
func FuzzParseEvaluateRequest(f *testing.F) {
	var v vectorFile
	if err := json.Unmarshal(readFile(f, "test-vectors/conditional-access-vectors.json"), &v); err != nil {
		f.Fatal(err)
	}
	for _, w := range v.WhatIfAPI {
		f.Add([]byte(w.Request))
	}
	e := compile(f, CompileOptions{}, whatIfExamplePolicies(f)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseEvaluateRequest(data)
		if err != nil {
			return
		}
		var res Result
		e.Evaluate(r, &res)
		res.WhatIf()
	})
}
