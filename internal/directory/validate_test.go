package directory

import (
	"errors"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/strictjson"
)

const (
	guidA = "0b4f0a5e-3c1d-4a8e-9f27-6d5c4b3a2918"
	guidB = "1c5e1b6f-4d2e-4b9f-8a38-7e6d5c4b3a29"
)

func TestParseValidation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 257)
	tests := []struct {
		name     string
		kind     string
		body     string
		wantPath string // "" with wantMsg "" means valid
		wantMsg  string
	}{
		// user
		{"user minimal", KindUser, `{"userPrincipalName":"alice@contoso.com","displayName":"Alice"}`, "", ""},
		{"user guest any case", KindUser, `{"userPrincipalName":"bob_fabrikam.com#EXT#@contoso.onmicrosoft.com","displayName":"Bob","userType":"guest"}`, "", ""},
		{"user unknown field", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","nickname":"x"}`, "nickname", "unknown field"},
		{"user wrong type", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","accountEnabled":"yes"}`, "accountEnabled", "true or false"},
		{"user password refused", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","passwordProfile":{"password":"x"}}`, "passwordProfile", "unknown field"},
		{"user upn missing", KindUser, `{"displayName":"A"}`, "userPrincipalName", "required"},
		{"user upn without at", KindUser, `{"userPrincipalName":"alice","displayName":"A"}`, "userPrincipalName", "local@domain"},
		{"user upn two ats", KindUser, `{"userPrincipalName":"a@b@c.com","displayName":"A"}`, "userPrincipalName", "exactly one @"},
		{"user upn space", KindUser, `{"userPrincipalName":"al ice@c.com","displayName":"A"}`, "userPrincipalName", "must not contain"},
		{"user upn leading dot", KindUser, `{"userPrincipalName":".alice@c.com","displayName":"A"}`, "userPrincipalName", "dot"},
		{"user upn bad domain", KindUser, `{"userPrincipalName":"alice@-c.com","displayName":"A"}`, "userPrincipalName", "domain"},
		{"user display name missing", KindUser, `{"userPrincipalName":"a@b.c"}`, "displayName", "required"},
		{"user display name blank", KindUser, `{"userPrincipalName":"a@b.c","displayName":"  "}`, "displayName", "required"},
		{"user display name too long", KindUser, `{"userPrincipalName":"a@b.c","displayName":"` + long + `"}`, "displayName", "at most 256"},
		{"user display name control", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A\u0007"}`, "displayName", "control"},
		{"user type unknown", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","userType":"Admin"}`, "userType", `"Member", "Guest"`},
		{"user id not guid", KindUser, `{"id":"42","userPrincipalName":"a@b.c","displayName":"A"}`, "id", "GUID"},
		{"user usage location lower", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","usageLocation":"nl"}`, "usageLocation", "two upper-case letters"},
		{"user mail", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","mail":"not-mail"}`, "mail", "e-mail address"},
		{"user other mails second", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","otherMails":["a@b.c","nope"]}`, "otherMails[1]", "e-mail address"},
		{"user other mails repeated", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","otherMails":["a@b.c","a@b.c"]}`, "otherMails[1]", "repeats entry 0"},
		{"user employee id long", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","employeeId":"12345678901234567"}`, "employeeId", "at most 16"},
		{"user language", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","preferredLanguage":"english"}`, "preferredLanguage", "language tag"},
		{"user created date", KindUser, `{"userPrincipalName":"a@b.c","displayName":"A","createdDateTime":"2024-05-24T09:26:17.2878988Z"}`, "", ""},

		// group
		{"group minimal", KindGroup, `{"displayName":"Finance"}`, "", ""},
		{"group full", KindGroup, `{"id":"` + guidA + `","displayName":"Finance","description":"d","mailNickname":"finance","mailEnabled":false,"securityEnabled":true,"groupTypes":["unified"],"isAssignableToRole":true,"visibility":"private","members":["` + guidB + `"]}`, "", ""},
		{"group dynamic", KindGroup, `{"displayName":"G","groupTypes":["DynamicMembership"],"membershipRule":"user.department -eq \"x\""}`, "groupTypes[0]", "dynamic membership is not supported"},
		{"group type unknown", KindGroup, `{"displayName":"G","groupTypes":["Unified","Team"]}`, "groupTypes[1]", `"Unified"`},
		{"group visibility", KindGroup, `{"displayName":"G","visibility":"Secret"}`, "visibility", "HiddenMembership"},
		{"group nickname", KindGroup, `{"displayName":"G","mailNickname":"fin ance"}`, "mailNickname", "must not contain"},
		{"group member not guid", KindGroup, `{"displayName":"G","members":["` + guidA + `","alice"]}`, "members[1]", "GUID"},
		{"group member of itself", KindGroup, `{"id":"` + guidA + `","displayName":"G","members":["` + strings.ToUpper(guidA) + `"]}`, "members[0]", "member of itself"},
		{"group role assignable not security", KindGroup, `{"displayName":"G","isAssignableToRole":true,"securityEnabled":false}`, "securityEnabled", "must be true"},
		{"group members wrong type", KindGroup, `{"displayName":"G","members":"` + guidA + `"}`, "members", "array"},

		// application
		{"application minimal", KindApplication, `{"displayName":"Payroll"}`, "", ""},
		{"application full", KindApplication, `{"id":"` + guidA + `","appId":"` + guidB + `","displayName":"Payroll","signInAudience":"azureadmyorg","identifierUris":["api://payroll","https://payroll.contoso.com"],"tags":["HR"]}`, "", ""},
		{"application appId", KindApplication, `{"appId":"payroll","displayName":"P"}`, "appId", "GUID"},
		{"application audience", KindApplication, `{"displayName":"P","signInAudience":"Everyone"}`, "signInAudience", "AzureADMyOrg"},
		{"application identifier uri", KindApplication, `{"displayName":"P","identifierUris":["api://ok","payroll"]}`, "identifierUris[1]", "absolute URI"},
		{"application identifier uri wildcard", KindApplication, `{"displayName":"P","identifierUris":["https://*.contoso.com"]}`, "identifierUris[0]", "wildcards"},
		{"application tag empty", KindApplication, `{"displayName":"P","tags":[""]}`, "tags[0]", "must not be empty"},

		// service principal
		{"service principal minimal", KindServicePrincipal, `{"appId":"` + guidA + `","displayName":"Payroll"}`, "", ""},
		{"service principal managed identity", KindServicePrincipal, `{"appId":"` + guidA + `","displayName":"mi","servicePrincipalType":"managedidentity"}`, "", ""},
		{"service principal appId required", KindServicePrincipal, `{"displayName":"P"}`, "appId", "required"},
		{"service principal type", KindServicePrincipal, `{"appId":"` + guidA + `","displayName":"P","servicePrincipalType":"Robot"}`, "servicePrincipalType", "ManagedIdentity"},

		// named location
		{"ip location", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","isTrusted":true,"ipRanges":[{"cidrAddress":"192.0.2.0/24"},{"@odata.type":"#microsoft.graph.iPv6CidrRange","cidrAddress":"2001:db8::/32"}]}`, "", ""},
		{"ip location bad cidr", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.0/24"},{"cidrAddress":"192.0.2.300/24"}]}`, "ipRanges[1].cidrAddress", "CIDR range"},
		{"ip location no prefix", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.1"}]}`, "ipRanges[0].cidrAddress", "CIDR range"},
		{"ip location too wide", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"0.0.0.0/0"}]}`, "ipRanges[0].cidrAddress", "/8 or narrower"},
		{"ip location family mismatch", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"@odata.type":"#microsoft.graph.iPv4CidrRange","cidrAddress":"2001:db8::/32"}]}`, "ipRanges[0].@odata.type", "iPv6CidrRange"},
		{"ip location repeated", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.0/24"},{"cidrAddress":"192.0.2.7/24"}]}`, "ipRanges[1].cidrAddress", "repeats ipRanges[0]"},
		{"ip location empty", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[]}`, "ipRanges", "at least one"},
		{"ip location country field", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.0/24"}],"countriesAndRegions":["NL"]}`, "countriesAndRegions", "unknown field"},
		{"ip location range unknown field", KindNamedLocation, `{"@odata.type":"#microsoft.graph.ipNamedLocation","displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.0/24","mask":"255.255.255.0"}]}`, "ipRanges[0].mask", "unknown field"},
		{"country location", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"Benelux","countriesAndRegions":["BE","NL","LU"]}`, "", ""},
		{"country location lower case", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":["BE","nl"]}`, "countriesAndRegions[1]", "two upper-case letters"},
		{"country location three letters", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":["NLD"]}`, "countriesAndRegions[0]", "alpha-2"},
		{"country location empty", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":[]}`, "countriesAndRegions", "at least one"},
		{"country location only unknown", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":[],"includeUnknownCountriesAndRegions":true}`, "", ""},
		{"country location lookup", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":["NL"],"countryLookupMethod":"gps"}`, "countryLookupMethod", "authenticatorAppGps"},
		{"country location trusted", KindNamedLocation, `{"@odata.type":"#microsoft.graph.countryNamedLocation","displayName":"B","countriesAndRegions":["NL"],"isTrusted":true}`, "isTrusted", "unknown field"},
		{"compliant network location", KindNamedLocation, `{"@odata.type":"#microsoft.graph.compliantNetworkNamedLocation","displayName":"GSA","isTrusted":true}`, "", ""},
		{"compliant network type", KindNamedLocation, `{"@odata.type":"#microsoft.graph.compliantNetworkNamedLocation","displayName":"GSA","compliantNetworkType":"some"}`, "compliantNetworkType", "allTenantCompliantNetworks"},
		{"location without type", KindNamedLocation, `{"displayName":"HQ","ipRanges":[{"cidrAddress":"192.0.2.0/24"}]}`, "@odata.type", "required"},
		{"location unknown type", KindNamedLocation, `{"@odata.type":"#microsoft.graph.gpsNamedLocation","displayName":"HQ"}`, "@odata.type", "unknown named location type"},
		{"location type not string", KindNamedLocation, `{"@odata.type":7,"displayName":"HQ"}`, "@odata.type", "string"},
		{"location not object", KindNamedLocation, `[1]`, "", "object"},
		{"location display name", KindNamedLocation, `{"@odata.type":"#microsoft.graph.compliantNetworkNamedLocation","displayName":""}`, "displayName", "required"},

		// role assignment
		{"role assignment", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62E90394-69F5-4237-9190-012177145E10"}`, "", ""},
		{"role assignment admin unit", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","directoryScopeId":"/administrativeUnits/` + guidB + `"}`, "", ""},
		{"role assignment unknown role", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"` + guidB + `"}`, "roleDefinitionId", "not the template id of a built-in directory role"},
		{"role assignment principal", KindRoleAssignment, `{"principalId":"alice","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10"}`, "principalId", "GUID"},
		{"role assignment scope", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","directoryScopeId":"/apps/payroll"}`, "directoryScopeId", "administrativeUnits"},
		{"role assignment id", KindRoleAssignment, `{"id":"a/b","principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10"}`, "id", "only letters"},
		{"role assignment condition", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","condition":"x"}`, "condition", "not supported"},
		{"role assignment app scope", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","appScopeId":"/"}`, "appScopeId", "not supported"},
		{"role assignment window", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","startDateTime":"2026-03-01T10:00:00+01:00","endDateTime":"2026-03-01T17:00:00Z"}`, "", ""},
		{"role assignment end only", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","endDateTime":"2026-03-01T17:00:00Z"}`, "", ""},
		{"role assignment end before start", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","startDateTime":"2026-03-01T17:00:00Z","endDateTime":"2026-03-01T17:00:00+01:00"}`, "endDateTime", "after startDateTime"},
		{"role assignment end equals start", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","startDateTime":"2026-03-01T17:00:00Z","endDateTime":"2026-03-01T18:00:00+01:00"}`, "endDateTime", "after startDateTime"},
		{"role assignment activated", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","endDateTime":"2026-03-01T17:00:00Z","assignmentType":"Activated","linkedRoleEligibilityScheduleId":"` + guidB + `"}`, "", ""},
		{"role assignment activated without end", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","assignmentType":"Activated"}`, "endDateTime", "Activated"},
		{"role assignment type", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","assignmentType":"Eligible"}`, "assignmentType", "Assigned or Activated"},
		{"role assignment bad time", KindRoleAssignment, `{"principalId":"` + guidA + `","roleDefinitionId":"62e90394-69f5-4237-9190-012177145e10","endDateTime":"2026-03-01"}`, "endDateTime", "RFC 3339"},

		// documents
		{"malformed", KindUser, `{"userPrincipalName":`, "", "ends in the middle"},
		{"trailing data", KindGroup, `{"displayName":"G"} {}`, "", "after the JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.kind, []byte(tt.body))
			if tt.wantPath == "" && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error = %v (%T), want a *strictjson.FieldError at %q", err, err, tt.wantPath)
			}
			if fe.Path != tt.wantPath || !strings.Contains(fe.Message, tt.wantMsg) {
				t.Fatalf("Parse error = %q at %q, want %q at %q", fe.Message, fe.Path, tt.wantMsg, tt.wantPath)
			}
		})
	}
}

func TestParseUnknownKind(t *testing.T) {
	t.Parallel()
	if _, err := Parse("device", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), `unknown directory kind "device"`) {
		t.Fatalf("Parse(device) error = %v", err)
	}
}

func TestNormalizeDefaults(t *testing.T) {
	t.Parallel()
	u := &User{ID: strings.ToUpper(guidA), UserPrincipalName: "Alice@Contoso.com", DisplayName: "Alice", UserType: "GUEST"}
	u.Normalize()
	if u.ID != guidA || u.UserType != UserTypeGuest || u.AccountEnabled == nil || !*u.AccountEnabled || u.Key() != "alice@contoso.com" {
		t.Errorf("user after Normalize = %+v, key %q", u, u.Key())
	}
	g := &Group{GraphGroup: GraphGroup{DisplayName: "Finance", Visibility: "private", GroupTypes: []string{"unified"}},
		Members: []string{strings.ToUpper(guidB), guidA, guidB}}
	g.Normalize()
	if *g.SecurityEnabled != true || *g.MailEnabled || g.RoleAssignable() || g.Visibility != VisibilityPrivate ||
		g.GroupTypes[0] != GroupTypeUnified || strings.Join(g.Members, ",") != guidA+","+guidB || g.Key() != "finance" {
		t.Errorf("group after Normalize = %+v", g)
	}
	a := &Application{DisplayName: "P"}
	a.Normalize()
	if a.SignInAudience != AudienceMyOrg {
		t.Errorf("signInAudience = %q, want %q", a.SignInAudience, AudienceMyOrg)
	}
	sp := &ServicePrincipal{AppID: strings.ToUpper(guidA), DisplayName: "P"}
	sp.Normalize()
	if sp.ServicePrincipalType != ServicePrincipalTypeApplication || !sp.Enabled() || sp.Key() != guidA {
		t.Errorf("service principal after Normalize = %+v", sp)
	}
	ra := &RoleAssignment{PrincipalID: guidA, RoleDefinitionID: GlobalAdministratorRoleID}
	ra.Normalize()
	if ra.DirectoryScopeID != "/" {
		t.Errorf("directoryScopeId = %q, want /", ra.DirectoryScopeID)
	}
	ra = &RoleAssignment{DirectoryScopeID: "/administrativeUnits/" + strings.ToUpper(guidB)}
	ra.Normalize()
	if ra.DirectoryScopeID != "/administrativeUnits/"+guidB {
		t.Errorf("directoryScopeId = %q", ra.DirectoryScopeID)
	}
	// Normalize is idempotent.
	before := string(mustJSON(t, g))
	g.Normalize()
	if after := string(mustJSON(t, g)); after != before {
		t.Errorf("second Normalize changed the group:\n%s\n%s", before, after)
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	a, b := NewID(), NewID()
	if !IsGUID(a) || a == b || strings.ToLower(a) != a || a[14] != '4' {
		t.Fatalf("NewID = %q, %q", a, b)
	}
}
