package directory

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestImportGraphNamedLocations imports real Graph beta exports as they
// are, annotations and all.
func TestImportGraphNamedLocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		wantType  string
		wantID    string
		wantName  string
		countries []string
		trusted   bool
		created   string
	}{
		{"ALLOWED COUNTRIES.json", ODataCountryNamedLocation, "185c993e-10a9-44fa-98d1-230c8f72f497", "ALLOWED COUNTRIES", []string{"BE", "LU", "NL"}, false, "2024-05-24T09:26:17.2878988Z"},
		{"ALLOWED COUNTRIES - SERVICE ACCOUNTS.json", ODataCountryNamedLocation, "1cc7e30b-f894-43a2-9da6-30aa7c085dda", "ALLOWED COUNTRIES - SERVICE ACCOUNTS", []string{"NL"}, false, "2025-05-23T09:25:41.6531403Z"},
		{"All Compliant Network locations.json", ODataCompliantNetworkNamedLocation, "3d46dbda-8382-466a-856d-eb00cbc6b910", "All Compliant Network locations", nil, true, "2024-05-24T09:26:15.7805598Z"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			loc, err := NamedLocations.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if loc.ODataType != tt.wantType || loc.ID != tt.wantID || loc.DisplayName != tt.wantName ||
				!slices.Equal(loc.CountriesAndRegions, tt.countries) || loc.IsTrusted != tt.trusted {
				t.Errorf("imported %+v", loc)
			}
			if loc.CreatedDateTime == nil || loc.CreatedDateTime.Format(time.RFC3339Nano) != tt.created {
				t.Errorf("createdDateTime = %v, want %s", loc.CreatedDateTime, tt.created)
			}
			if loc.DeletedDateTime != nil {
				t.Errorf("deletedDateTime = %v, want nil (null in the export)", loc.DeletedDateTime)
			}
			if tt.wantType == ODataCountryNamedLocation && (loc.CountryLookupMethod != CountryLookupClientIPAddress || loc.IncludeUnknownCountriesAndRegions) {
				t.Errorf("country lookup = %q, unknown = %v", loc.CountryLookupMethod, loc.IncludeUnknownCountriesAndRegions)
			}
			if tt.wantType == ODataCompliantNetworkNamedLocation && loc.CompliantNetworkType != CompliantNetworkAllTenant {
				t.Errorf("compliantNetworkType = %q", loc.CompliantNetworkType)
			}
			// Every property of the export (less annotations and nulls)
			// survives a round trip with the same value.
			var in, out map[string]any
			if err := json.Unmarshal(body, &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(mustJSON(t, loc), &out); err != nil {
				t.Fatal(err)
			}
			for k, v := range in {
				if v == nil || (strings.Contains(k, "@odata.") && k != "@odata.type") || strings.HasPrefix(k, "#") {
					continue
				}
				if got, _ := json.Marshal(out[k]); string(got) != string(mustJSON(t, v)) {
					t.Errorf("%s: exported %s, re-encoded %s", k, mustJSON(t, v), got)
				}
			}
		})
	}
}

func TestNamedLocationRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string // canonical output of Normalize + MarshalJSON
	}{
		{"ip", `{"@odata.type":"#microsoft.graph.ipNamedLocation","id":"` + guidA + `","displayName":"HQ","createdDateTime":"2024-01-02T03:04:05Z","modifiedDateTime":"2024-01-02T03:04:05Z","ipRanges":[{"@odata.type":"#microsoft.graph.iPv4CidrRange","cidrAddress":"192.0.2.0/24"},{"@odata.type":"#microsoft.graph.iPv6CidrRange","cidrAddress":"2001:db8::/32"}],"isTrusted":true}`},
		{"country", `{"@odata.type":"#microsoft.graph.countryNamedLocation","id":"` + guidA + `","displayName":"Benelux","countriesAndRegions":["BE","LU","NL"],"includeUnknownCountriesAndRegions":true,"countryLookupMethod":"authenticatorAppGps"}`},
		{"compliant network", `{"@odata.type":"#microsoft.graph.compliantNetworkNamedLocation","id":"` + guidA + `","displayName":"GSA","compliantNetworkType":"allTenantCompliantNetworks","isTrusted":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc, err := NamedLocations.Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := string(mustJSON(t, loc)); got != tt.body {
				t.Errorf("round trip:\n got %s\nwant %s", got, tt.body)
			}
			// The store path (FromObject) reads it back the same.
			o, err := NamedLocations.Object(loc)
			if err != nil {
				t.Fatal(err)
			}
			back, err := NamedLocations.FromObject(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(mustJSON(t, back)); got != tt.body {
				t.Errorf("from object:\n got %s\nwant %s", got, tt.body)
			}
		})
	}
}

func TestNamedLocationMarshalWithoutType(t *testing.T) {
	t.Parallel()
	if _, err := json.Marshal(&NamedLocation{DisplayName: "x"}); err == nil {
		t.Fatal("Marshal of a location without @odata.type succeeded")
	}
}

func TestNamedLocationForeignProperties(t *testing.T) {
	t.Parallel()
	// Built in Go, a location can carry another variant's property;
	// Validate names it.
	loc := &NamedLocation{ODataType: ODataCountryNamedLocation, DisplayName: "x", CountriesAndRegions: []string{"NL"},
		IPRanges: []IPRange{{CIDRAddress: "192.0.2.0/24"}}}
	loc.Normalize()
	if err := loc.Validate(); err == nil || !strings.HasPrefix(err.Error(), "ipRanges: is not a property of") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestLocationContains(t *testing.T) {
	t.Parallel()
	ip := compileLocation(NamedLocation{ODataType: ODataIPNamedLocation, IPRanges: []IPRange{
		{CIDRAddress: "10.0.0.0/8"}, {CIDRAddress: "10.1.0.0/16"}, // nested
		{CIDRAddress: "192.0.2.0/25"}, {CIDRAddress: "192.0.2.128/25"}, // adjacent
		{CIDRAddress: "198.51.100.7/32"},
		{CIDRAddress: "2001:db8::/32"},
		{CIDRAddress: "203.0.113.9/24"}, // host bits set
	}})
	if len(ip.ranges) != 5 {
		t.Errorf("merged ranges = %v, want 5", ip.ranges)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.0.0.0", true},
		{"10.255.255.255", true},
		{"11.0.0.0", false},
		{"9.255.255.255", false},
		{"192.0.2.0", true},
		{"192.0.2.200", true},
		{"192.0.3.0", false},
		{"198.51.100.7", true},
		{"198.51.100.8", false},
		{"203.0.113.255", true},
		{"::ffff:10.2.3.4", true}, // IPv4-mapped
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", false},
		{"::a00:1", false}, // 10.0.0.1's bits as IPv6 are not 10/8
		{"fe80::1%eth0", false},
	}
	for _, tt := range tests {
		if got := ip.ContainsIP(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("ContainsIP(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	country := compileLocation(NamedLocation{ODataType: ODataCountryNamedLocation, CountriesAndRegions: []string{"BE", "NL"}, IncludeUnknownCountriesAndRegions: true})
	for c, want := range map[string]bool{"NL": true, "BE": true, "DE": false, "": true} {
		if got := country.ContainsCountry(c); got != want {
			t.Errorf("ContainsCountry(%q) = %v, want %v", c, got, want)
		}
	}
	if country.ContainsIP(netip.MustParseAddr("10.0.0.1")) || ip.ContainsCountry("NL") {
		t.Error("a location matched a signal of another kind")
	}
}

func TestPrefixRangeEdges(t *testing.T) {
	t.Parallel()
	tests := []struct{ prefix, first, last string }{
		{"10.0.0.0/8", "10.0.0.0", "10.255.255.255"},
		{"255.0.0.0/8", "255.0.0.0", "255.255.255.255"},
		{"192.0.2.7/32", "192.0.2.7", "192.0.2.7"},
		{"2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"ff00::/8", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::1/128", "2001:db8::1", "2001:db8::1"},
	}
	for _, tt := range tests {
		r := prefixRange(netip.MustParsePrefix(tt.prefix))
		if r.first.String() != tt.first || r.last.String() != tt.last {
			t.Errorf("prefixRange(%s) = %s-%s, want %s-%s", tt.prefix, r.first, r.last, tt.first, tt.last)
		}
	}
	// Ranges that end at the top of the address space still merge.
	merged := mergeRanges([]addrRange{prefixRange(netip.MustParsePrefix("255.0.0.0/8")), prefixRange(netip.MustParsePrefix("255.255.0.0/16"))})
	if len(merged) != 1 {
		t.Errorf("merged = %v, want one range", merged)
	}
}
