package directory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to every kind's strict decoder. It must
// never panic; whatever decodes, normalises and validates must encode and
// parse back to the same bytes.
func FuzzDecode(f *testing.F) {
	kinds := Kinds()
	seeds := map[string][]string{
		KindUser: {`{"userPrincipalName":"alice@contoso.com","displayName":"Alice","userType":"guest","otherMails":["a@b.c"],"usageLocation":"NL"}`,
			`{"id":"87d349ed-44d7-43e1-9a83-5f2406dee5bd","userPrincipalName":"A@b.c","displayName":"A","businessPhones":[],"proxyAddresses":["x"]}`},
		KindGroup: {`{"displayName":"Finance","groupTypes":["Unified"],"members":["` + guidA + `","` + guidB + `"],"visibility":"private"}`,
			`{"displayName":"G","isAssignableToRole":true,"securityEnabled":false}`,
			`{"displayName":"G","members":["` + guidA + `"],"members@odata.bind":["https://graph.microsoft.com/v1.0/directoryObjects('` + guidB + `')"]}`},
		KindApplication: {`{"appId":"` + guidA + `","displayName":"P","identifierUris":["api://p"],"signInAudience":"AzureADMyOrg"}`,
			`{"displayName":"P","web":{"redirectUris":["https://p.example/cb","http://[::1]:8080/cb"],"logoutUrl":"https://p.example/out"},"spa":{"redirectUris":["http://localhost:3000"]},"publicClient":{"redirectUris":["com.example.p:/cb"]},"isFallbackPublicClient":true}`,
			`{"displayName":"P","web":{"implicitGrantSettings":{},"redirectUriSettings":[]},"passwordCredentials":[{"keyId":"` + guidB + `","secretText":null,"customKeyIdentifier":null}]}`},
		KindServicePrincipal: {`{"appId":"` + guidA + `","displayName":"P","servicePrincipalType":"ManagedIdentity","accountEnabled":false}`},
		KindNamedLocation: {`{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.0/24"},{"cidrAddress":"2001:db8::/32"}],"isTrusted":true}`,
			`{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":["NL"]}`},
		KindIdentityProvider: {`{"displayName":"Contoso","issuer":"https://login.contoso.example/v2.0","clientId":"c","jitProvisioning":true,"domainHints":["Contoso.example"],"groupMappings":[{"claimValue":"a","groupId":"` + guidA + `"}],"mfaClaim":{"amrValues":["mfa"]}}`,
			`{"@odata.type":"#microsoft.graph.openIdConnectIdentityProvider","displayName":"K","issuer":"http://127.0.0.1:8080/realms/x","clientId":"c","scope":"openid","claimsMapping":{"userId":"oid"}}`},
		KindRoleAssignment: {`{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","directoryScopeId":"/administrativeUnits/` + guidB + `"}`},
	}
	for i, k := range kinds {
		for _, s := range seeds[k.Name()] {
			f.Add(uint8(i), []byte(s))
		}
	}
	for dir, kind := range map[string]string{"testdata": KindNamedLocation, filepath.Join("testdata", "applications"): KindApplication} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(slices.IndexFunc(kinds, func(d Descriptor) bool { return d.Name() == kind })), b)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		d := kinds[int(k)%len(kinds)]
		r, err := d.DecodeResource(body)
		if err != nil {
			return
		}
		r.Normalize()
		if r.Validate() != nil {
			return
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("%s: valid resource does not encode: %v", d.Name(), err)
		}
		back, err := Parse(d.Name(), enc)
		if err != nil {
			t.Fatalf("%s: encoded resource does not parse: %v\n%s", d.Name(), err, enc)
		}
		if again, _ := json.Marshal(back); string(again) != string(enc) {
			t.Fatalf("%s: round trip changed the resource:\n%s\n%s", d.Name(), enc, again)
		}
	})
}

// FuzzDecodeNamedLocation drives the polymorphic decoder through both
// entry points: strict decoding (the API) and encoding/json (the store).
func FuzzDecodeNamedLocation(f *testing.F) {
	f.Add([]byte(`{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"@odata.type":"#microsoft.graph.iPv4CidrRange","cidrAddress":"10.0.0.0/8"}]}`))
	f.Add([]byte(`{"@odata.type":"#microsoft.graph.compliantNetworkNamedLocation","displayName":"GSA","isTrusted":true}`))
	f.Add([]byte(`{"@odata.type":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		strict, strictErr := NamedLocations.Decode(body)
		var loose NamedLocation
		looseErr := json.Unmarshal(body, &loose)
		if strictErr == nil && looseErr != nil {
			t.Fatalf("strict decoding accepted what encoding/json refused: %v", looseErr)
		}
		if strictErr != nil {
			return
		}
		strict.Normalize()
		if strict.Validate() != nil {
			return
		}
		l := compileLocation(*strict)
		for _, r := range l.ranges {
			if r.first.Compare(r.last) > 0 || !l.ContainsIP(r.first) || !l.ContainsIP(r.last) {
				t.Fatalf("compiled range %v-%v is inconsistent", r.first, r.last)
			}
		}
	})
}
