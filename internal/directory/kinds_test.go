package directory

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKindRegistry(t *testing.T) {
	t.Parallel()
	want := []struct{ name, collection string }{
		{KindUser, "users"},
		{KindApplication, "applications"},
		{KindServicePrincipal, "servicePrincipals"},
		{KindGroup, "groups"},
		{KindNamedLocation, "namedLocations"},
		{KindRoleAssignment, "roleAssignments"},
		{KindIdentityProvider, "identityProviders"},
		{KindAppRoute, "appRoutes"},
	}
	kinds := Kinds()
	if len(kinds) != len(want) {
		t.Fatalf("Kinds() has %d kinds, want %d", len(kinds), len(want))
	}
	for i, w := range want {
		k := kinds[i]
		if k.Name() != w.name || k.Collection() != w.collection {
			t.Errorf("Kinds()[%d] = %s/%s, want %s/%s", i, k.Name(), k.Collection(), w.name, w.collection)
		}
		if got, ok := Lookup(w.name); !ok || got != k {
			t.Errorf("Lookup(%q) = %v, %v", w.name, got, ok)
		}
		if got, ok := LookupCollection(w.collection); !ok || got != k {
			t.Errorf("LookupCollection(%q) = %v, %v", w.collection, got, ok)
		}
		if r := k.New(); r == nil || r.ObjectID() != "" {
			t.Errorf("%s: New() = %#v", w.name, r)
		}
	}
	if _, ok := Lookup("users"); ok {
		t.Error("Lookup accepted a collection name")
	}
}

// TestGraphExportsImport decodes Graph v1.0 responses as Graph returns
// them (default $select plus annotations and properties Verity does not
// model) and checks what Verity keeps.
func TestGraphExportsImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kind  string
		body  string
		check func(t *testing.T, r Resource)
	}{
		{"user", KindUser, `{
			"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
			"businessPhones": ["+1 425 555 0109"],
			"displayName": "Adele Vance",
			"givenName": "Adele",
			"jobTitle": "Retail Manager",
			"mail": "AdeleV@contoso.com",
			"mobilePhone": null,
			"officeLocation": "18/2111",
			"preferredLanguage": "en-US",
			"surname": "Vance",
			"userPrincipalName": "AdeleV@contoso.com",
			"id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
			"onPremisesSyncEnabled": null,
			"proxyAddresses": ["SMTP:AdeleV@contoso.com"],
			"identities": [{"signInType": "userPrincipalName", "issuer": "contoso.com", "issuerAssignedId": "AdeleV@contoso.com"}]
		}`, func(t *testing.T, r Resource) {
			u := r.(*User)
			if u.Key() != "adelev@contoso.com" || u.UserType != UserTypeMember || !u.Enabled() || u.BusinessPhones[0] != "+1 425 555 0109" || u.MobilePhone != "" {
				t.Errorf("user = %+v", u)
			}
		}},
		{"group", KindGroup, `{
			"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
			"id": "45b7d2e7-b882-4a80-ba97-10b7a63b8fa4",
			"deletedDateTime": null,
			"classification": null,
			"createdDateTime": "2018-12-22T02:21:05Z",
			"creationOptions": [],
			"description": "Self help community for golf",
			"displayName": "Golf Assist",
			"expirationDateTime": null,
			"groupTypes": ["Unified"],
			"isAssignableToRole": null,
			"mail": "golfassist@contoso.com",
			"mailEnabled": true,
			"mailNickname": "golfassist",
			"membershipRule": null,
			"membershipRuleProcessingState": null,
			"onPremisesLastSyncDateTime": null,
			"onPremisesSecurityIdentifier": null,
			"onPremisesSyncEnabled": null,
			"preferredDataLocation": "CAN",
			"preferredLanguage": null,
			"proxyAddresses": ["smtp:golfassist@contoso.onmicrosoft.com", "SMTP:golfassist@contoso.com"],
			"renewedDateTime": "2018-12-22T02:21:05Z",
			"resourceBehaviorOptions": [],
			"resourceProvisioningOptions": [],
			"securityEnabled": false,
			"theme": null,
			"visibility": "Public",
			"onPremisesProvisioningErrors": []
		}`, func(t *testing.T, r Resource) {
			g := r.(*Group)
			if g.Key() != "golf assist" || !*g.MailEnabled || *g.SecurityEnabled || g.RoleAssignable() || g.CreatedDateTime == nil || len(g.Members) != 0 {
				t.Errorf("group = %+v", g)
			}
		}},
		{"application", KindApplication, `{
			"id": "03ef14b0-ca33-4840-8f4f-d6e91916010e",
			"deletedDateTime": null,
			"isFallbackPublicClient": null,
			"appId": "631a96bc-a705-4eda-9f99-fdaf9f54f6a2",
			"applicationTemplateId": null,
			"identifierUris": [],
			"createdDateTime": "2019-09-17T19:10:35.2742618Z",
			"displayName": "Display name",
			"description": null,
			"signInAudience": "AzureADandPersonalMicrosoftAccount",
			"tags": [],
			"api": {"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": []},
			"web": {"redirectUris": [], "implicitGrantSettings": {"enableAccessTokenIssuance": false}},
			"passwordCredentials": [],
			"requiredResourceAccess": []
		}`, func(t *testing.T, r Resource) {
			a := r.(*Application)
			if a.Key() != "631a96bc-a705-4eda-9f99-fdaf9f54f6a2" || a.SignInAudience != AudienceOrgsAndPersonalAccount {
				t.Errorf("application = %+v", a)
			}
		}},
		{"service principal", KindServicePrincipal, `{
			"id": "59e617e5-e447-4adc-8b88-00af644d7c92",
			"accountEnabled": true,
			"appDisplayName": "My App",
			"appId": "65415bb1-9267-4313-bbf5-ae259732ee12",
			"appOwnerOrganizationId": "b8e5e4d4-5a8e-4d2a-8a8d-2c6b2a6c0c3d",
			"appRoleAssignmentRequired": false,
			"displayName": "foo",
			"servicePrincipalNames": ["65415bb1-9267-4313-bbf5-ae259732ee12"],
			"servicePrincipalType": "Application",
			"tags": [],
			"keyCredentials": [],
			"passwordCredentials": []
		}`, func(t *testing.T, r Resource) {
			s := r.(*ServicePrincipal)
			if s.Key() != "65415bb1-9267-4313-bbf5-ae259732ee12" || !s.Enabled() || s.IsManagedIdentity() {
				t.Errorf("service principal = %+v", s)
			}
		}},
		{"role assignment", KindRoleAssignment, `{
			"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleAssignments/$entity",
			"id": "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1",
			"principalId": "aa2cc4b8-fdca-4b0d-8f4e-1e1d5b2d7a0c",
			"roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10",
			"directoryScopeId": "/",
			"appScopeId": null,
			"condition": null
		}`, func(t *testing.T, r Resource) {
			a := r.(*RoleAssignment)
			if a.ID != "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1" || a.DirectoryScopeID != "/" {
				t.Errorf("role assignment = %+v", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Decode(tt.kind, []byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			r.Normalize()
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tt.check(t, r)
		})
	}
}

func TestGraphOnlyPropertiesAreNotModelled(t *testing.T) {
	t.Parallel()
	for _, d := range Kinds() {
		type graphOnly interface{ GraphOnlyProperties() []string }
		modelled := map[string]bool{}
		var fields map[string]any
		if err := json.Unmarshal(mustJSON(t, exampleOf(t, d.Name())), &fields); err != nil {
			t.Fatal(err)
		}
		for f := range fields {
			modelled[f] = true
		}
		for _, p := range d.(graphOnly).GraphOnlyProperties() {
			if modelled[p] {
				t.Errorf("%s: %q is modelled but listed as Graph-only (Decode would drop it)", d.Name(), p)
			}
		}
	}
}

// exampleOf is a resource of kind with every modelled property set.
func exampleOf(t *testing.T, kind string) Resource {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	switch kind {
	case KindUser:
		return &User{ID: guidA, UserPrincipalName: "a@b.c", DisplayName: "A", UserType: UserTypeGuest, AccountEnabled: ptr(false),
			GivenName: "g", Surname: "s", Mail: "a@b.c", JobTitle: "j", Department: "d", CompanyName: "c", OfficeLocation: "o",
			UsageLocation: "NL", EmployeeID: "1", MobilePhone: "2", BusinessPhones: []string{"3"}, PreferredLanguage: "nl-NL",
			OtherMails: []string{"x@y.z"}, CreatedDateTime: &now}
	case KindGroup:
		return &Group{GraphGroup: GraphGroup{ID: guidA, DisplayName: "G", Description: "d", MailNickname: "g", MailEnabled: ptr(true),
			SecurityEnabled: ptr(true), GroupTypes: []string{GroupTypeUnified}, IsAssignableToRole: ptr(true), Visibility: VisibilityPrivate,
			CreatedDateTime: &now}, Members: []string{guidB}}
	case KindApplication:
		return &Application{ID: guidA, AppID: guidB, DisplayName: "A", Description: "d", SignInAudience: AudienceMyOrg,
			IdentifierURIs: []string{"api://a"}, Tags: []string{"t"}, IsFallbackPublicClient: true,
			Web:          &WebApplication{RedirectURIs: []string{"https://a.example/cb"}, LogoutURL: "https://a.example/out", HomePageURL: "https://a.example/"},
			SPA:          &SPAApplication{RedirectURIs: []string{"https://a.example/spa"}},
			PublicClient: &PublicClientApplication{RedirectURIs: []string{"com.example.a:/cb"}}, CreatedDateTime: &now}
	case KindServicePrincipal:
		return &ServicePrincipal{ID: guidA, AppID: guidB, DisplayName: "S", AccountEnabled: ptr(true),
			ServicePrincipalType: ServicePrincipalTypeManagedIdentity, AppRoleAssignmentRequired: true, Tags: []string{"t"}, CreatedDateTime: &now}
	case KindNamedLocation:
		return &NamedLocation{ODataType: ODataIPNamedLocation, ID: guidA, DisplayName: "L", CreatedDateTime: &now, ModifiedDateTime: &now,
			IPRanges: []IPRange{{CIDRAddress: "192.0.2.0/24"}}, IsTrusted: true}
	case KindRoleAssignment:
		return &RoleAssignment{ID: guidA, PrincipalID: guidB, RoleDefinitionID: GlobalAdministratorRoleID, DirectoryScopeID: "/"}
	case KindIdentityProvider:
		return &IdentityProvider{ODataType: ODataOpenIDConnectIdentityProvider, ID: guidA, DisplayName: "Contoso", Issuer: "https://login.contoso.example/v2.0",
			ClientID: "verity", Scope: "openid email", ResponseType: ResponseTypeCode,
			ClaimsMapping: &ClaimsMapping{UserID: "oid", UserPrincipalName: "upn", Email: "mail", DisplayName: "dn", GivenName: "gn", Surname: "sn", Groups: "roles"},
			GroupMappings: []GroupMapping{{ClaimValue: "admins", GroupID: guidB}}, JITProvisioning: true, DomainHints: []string{"contoso.example"},
			MFAClaim: &MFAClaim{AMRValues: []string{"mfa"}, ACRValues: []string{"urn:x"}}, CreatedDateTime: &now}
	case KindAppRoute:
		return &AppRoute{ID: guidA, DisplayName: "Payroll", AppID: guidB, From: "https://payroll.example.com/app/", To: []string{"http://10.0.0.5:8080"},
			PreserveHost: true, PublicPaths: []string{"/app/healthz"}, AllowPreflight: true,
			Rules:               []RouteRule{{Methods: []string{"POST"}, PathPrefix: "/app/admin", DataAction: "Verity.Apps/apps/admin/action"}},
			PassIdentityHeaders: true, UpstreamTimeoutSeconds: 60,
			HealthCheck:     &RouteHealthCheck{Path: "/healthz", IntervalSeconds: 15, TimeoutSeconds: 3, HealthyThreshold: 2, UnhealthyThreshold: 4},
			CreatedDateTime: &now}
	}
	t.Fatalf("no example of %s", kind)
	return nil
}

// TestRoundTrip encodes a full resource of every kind, stores it and reads
// it back through both the strict (API) and the store path.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range Kinds() {
		t.Run(d.Name(), func(t *testing.T) {
			t.Parallel()
			r := exampleOf(t, d.Name())
			r.Normalize()
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			o, err := d.ObjectOf(r)
			if err != nil {
				t.Fatal(err)
			}
			if o.Kind != d.Name() || o.ID != guidA || o.Key != d.KeyOf(r) {
				t.Errorf("object = %s/%s key %q", o.Kind, o.ID, o.Key)
			}
			back, err := Parse(d.Name(), o.Body)
			if err != nil {
				t.Fatalf("Parse(stored body): %v", err)
			}
			if got := string(mustJSON(t, back)); got != string(o.Body) {
				t.Errorf("strict round trip:\n got %s\nwant %s", got, o.Body)
			}
			if _, err := d.ObjectOf(exampleOf(t, otherKind(d.Name()))); err == nil {
				t.Error("ObjectOf accepted a resource of another kind")
			}
		})
	}
}

func otherKind(kind string) string {
	if kind == KindUser {
		return KindGroup
	}
	return KindUser
}

func TestObjectNeedsIDAndKey(t *testing.T) {
	t.Parallel()
	if _, err := Users.Object(&User{UserPrincipalName: "a@b.c"}); !errors.Is(err, errNoID) {
		t.Errorf("Object without id: %v", err)
	}
	if _, err := Applications.Object(&Application{ID: guidA, DisplayName: "A"}); !errors.Is(err, errNoKey) {
		t.Errorf("Object without appId: %v", err)
	}
	if o, err := RoleAssignments.Object(&RoleAssignment{ID: guidA}); err != nil || o.Key != "" {
		t.Errorf("role assignment object = %+v, %v", o, err)
	}
	if _, err := Users.FromObject(storeObject(KindGroup, guidA, `{}`)); err == nil {
		t.Error("FromObject accepted an object of another kind")
	}
	u, err := Users.FromObject(storeObject(KindUser, guidA, `{"id":"`+guidB+`","userPrincipalName":"a@b.c","displayName":"A"}`))
	if err != nil || u.ID != guidA || !u.Enabled() {
		t.Errorf("FromObject = %+v, %v (the object's id wins, defaults apply)", u, err)
	}
}

func TestGroupGraphView(t *testing.T) {
	t.Parallel()
	g := exampleOf(t, KindGroup).(*Group)
	body := string(mustJSON(t, g.GraphView()))
	if strings.Contains(body, "members") || !strings.Contains(body, `"displayName":"G"`) {
		t.Errorf("GraphView = %s", body)
	}
	if !strings.Contains(string(mustJSON(t, g)), `"members":["`+guidB+`"]`) {
		t.Error("stored group lost its members")
	}
}

func TestBuiltinRoles(t *testing.T) {
	t.Parallel()
	roles := BuiltinRoles()
	if len(roles) != 123 {
		t.Fatalf("BuiltinRoles has %d roles, want 123 (the embedded table)", len(roles))
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if !IsGUID(r.ID) || r.ID != r.TemplateID || !r.IsBuiltIn || !r.IsEnabled || r.DisplayName == "" || seen[r.ID] {
			t.Errorf("role %+v", r)
		}
		seen[r.ID] = true
	}
	ga, ok := RoleByID(strings.ToUpper(GlobalAdministratorRoleID))
	if !ok || ga.DisplayName != "Global Administrator" || !ga.IsPrivileged {
		t.Errorf("RoleByID(Global Administrator) = %+v, %v", ga, ok)
	}
	if r, ok := RoleByID("88d8e3e3-8f55-4a1e-953a-9b9898b8876b"); !ok || r.DisplayName != "Directory Readers" || r.IsPrivileged {
		t.Errorf("RoleByID(Directory Readers) = %+v, %v", r, ok)
	}
	if _, ok := RoleByID(guidA); ok {
		t.Error("RoleByID found an unknown id")
	}
	// The caller owns the returned slice.
	roles[0].DisplayName = "changed"
	if BuiltinRoles()[0].DisplayName == "changed" {
		t.Error("BuiltinRoles shares its table")
	}
	// The embedded copy names its source.
	src, err := os.ReadFile("roles/entra-builtin-directory-roles.json")
	if err != nil || !strings.Contains(string(src), `"_source"`) {
		t.Errorf("roles file lacks _source: %v", err)
	}
	if _, err := parseRoles([]byte(`{"roles":[{"displayName":"x","templateId":"nope","privilegedLabel":false}]}`)); err == nil {
		t.Error("parseRoles accepted a bad template id")
	}
}

func TestGroupMembersODataBind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		wantMembers []string
		wantErr     string
	}{
		{"graph create request", `{"displayName":"G","mailEnabled":false,"mailNickname":"g","securityEnabled":true,
			"members@odata.bind":["https://graph.microsoft.com/v1.0/directoryObjects/` + guidB + `","https://graph.microsoft.com/v1.0/users('` + strings.ToUpper(guidA) + `')"]}`,
			[]string{guidA, guidB}, ""},
		{"merged with members", `{"displayName":"G","members":["` + guidA + `"],"members@odata.bind":["https://graph.microsoft.com/v1.0/directoryObjects/` + guidB + `"]}`,
			[]string{guidA, guidB}, ""},
		{"not a url of an object", `{"displayName":"G","members@odata.bind":["https://graph.microsoft.com/v1.0/directoryObjects/` + guidB + `","https://graph.microsoft.com/v1.0/me"]}`,
			nil, `members@odata.bind[1]: must be a directory object URL`},
		{"not an array", `{"displayName":"G","members@odata.bind":"https://graph.microsoft.com/v1.0/directoryObjects/` + guidB + `"}`,
			nil, `members@odata.bind: must be an array`},
		{"members not ids", `{"displayName":"G","members":[{"id":"` + guidA + `"}],"members@odata.bind":[]}`,
			nil, `members: must be an array of ids`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := Groups.Parse([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !slices.Equal(g.Members, tt.wantMembers) {
				t.Errorf("members = %v, want %v", g.Members, tt.wantMembers)
			}
		})
	}
}
