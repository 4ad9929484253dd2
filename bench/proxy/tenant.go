package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// The benchmark tenant: a realistic conditional access set and RBAC
// table around one signed-in user, so that the proxy's decision does the
// work a production decision does — most policies are evaluated and do
// not apply, a few apply and are satisfied, and the user's access comes
// from a group's role assignment among ten thousand.
const (
	benchUser   = "bench@bench.example"
	benchAppID  = "b3c10000-0000-4000-8000-000000000001"
	o2pAppID    = "b3c10000-0000-4000-8000-000000000002"
	o2pObjectID = "b3c10000-0000-4000-8000-100000000002"
	otherApps   = 100
	otherUsers  = 2000
	groupCount  = 200
	policyCount = 200
	trustedLoc  = "b3c20000-0000-4000-8000-000000000001"
	officeLoc   = "b3c20000-0000-4000-8000-000000000002"
	appUserRole = "Verity App User"
)

func otherAppID(i int) string { return fmt.Sprintf("b3c30000-0000-4000-8000-%012d", i) }
func groupID(i int) string    { return fmt.Sprintf("b3c40000-0000-4000-8000-%012d", i) }
func groupName(i int) string  { return fmt.Sprintf("Bench Group %03d", i) }
func otherUser(i int) string  { return fmt.Sprintf("user%04d@bench.example", i) }

const (
	appUsersGroup   = "Bench App Users"
	appUsersGroupID = "b3c40000-0000-4000-8000-100000000001"
	teamGroup       = "Bench Team"
	divisionGroup   = "Bench Division"
	breakGlass      = "Bench Break Glass"
	breakGlassID    = "b3c40000-0000-4000-8000-100000000004"
)

type obj = map[string]any

// manifest builds the tenant: 2,001 users, 204 groups, 102 applications
// with service principals, two named locations, 200 enabled conditional
// access policies and exactly 10,000 Verity role assignments.
func manifest(o2pRedirect string) (obj, int, int) {
	users := []any{obj{"userPrincipalName": benchUser, "displayName": "Bench User", "mail": benchUser, "department": "Engineering"}}
	for i := range otherUsers {
		users = append(users, obj{"userPrincipalName": otherUser(i), "displayName": fmt.Sprintf("User %04d", i), "mail": otherUser(i)})
	}

	var groups []any
	for g := range groupCount {
		var members []string
		for i := g; i < otherUsers; i += groupCount {
			members = append(members, otherUser(i))
		}
		groups = append(groups, obj{"id": groupID(g), "displayName": groupName(g), "members": obj{"users": members}})
	}
	appUsers := []string{benchUser}
	for i := range 500 {
		appUsers = append(appUsers, otherUser(i))
	}
	groups = append(groups,
		obj{"id": appUsersGroupID, "displayName": appUsersGroup, "members": obj{"users": appUsers}},
		obj{"displayName": teamGroup, "members": obj{"users": []string{benchUser, otherUser(1), otherUser(2)}}},
		obj{"displayName": divisionGroup, "members": obj{"groups": []string{teamGroup}}},
		obj{"id": breakGlassID, "displayName": breakGlass, "members": obj{"users": []string{otherUser(0)}}},
	)

	apps := []any{
		obj{"appId": benchAppID, "displayName": "Bench App"},
		obj{"id": o2pObjectID, "appId": o2pAppID, "displayName": "Bench oauth2-proxy", "web": obj{"redirectUris": []string{o2pRedirect}}},
	}
	sps := []any{
		obj{"appId": benchAppID, "displayName": "Bench App", "appRoleAssignmentRequired": true},
		obj{"appId": o2pAppID, "displayName": "Bench oauth2-proxy"},
	}
	for i := range otherApps {
		apps = append(apps, obj{"appId": otherAppID(i), "displayName": fmt.Sprintf("Other App %03d", i)})
		sps = append(sps, obj{"appId": otherAppID(i), "displayName": fmt.Sprintf("Other App %03d", i), "appRoleAssignmentRequired": i%2 == 0})
	}

	locations := []any{
		obj{"@odata.type": "#microsoft.graph.ipNamedLocation", "id": trustedLoc, "displayName": "Bench loopback", "isTrusted": true,
			"ipRanges": []any{obj{"cidrAddress": "127.0.0.0/8"}}},
		obj{"@odata.type": "#microsoft.graph.ipNamedLocation", "id": officeLoc, "displayName": "Bench office", "isTrusted": false,
			"ipRanges": []any{obj{"cidrAddress": "203.0.113.0/24"}}},
	}

	policies := make([]any, 0, policyCount)
	policy := func(name string, conditions obj, grant, session obj) {
		p := obj{"displayName": fmt.Sprintf("CA%03d %s", len(policies), name), "state": "enabled", "conditions": conditions}
		if grant != nil {
			p["grantControls"] = grant
		}
		if session != nil {
			p["sessionControls"] = session
		}
		policies = append(policies, p)
	}
	mfa := obj{"operator": "OR", "builtInControls": []string{"mfa"}}
	block := obj{"operator": "OR", "builtInControls": []string{"block"}}
	all := obj{"includeApplications": []string{"All"}}
	// 150: MFA for one team's group each, on every application; the bench
	// user is in none of these groups.
	for g := range 150 {
		policy(fmt.Sprintf("MFA for %s", groupName(g)), obj{"users": obj{"includeGroups": []string{groupID(g)}}, "applications": all, "clientAppTypes": []string{"all"}}, mfa, nil)
	}
	// 30: every user, another application (MFA, or a block from the office network).
	for i := range 30 {
		c := obj{"users": obj{"includeUsers": []string{"All"}, "excludeGroups": []string{breakGlassID}},
			"applications": obj{"includeApplications": []string{otherAppID(i)}}, "clientAppTypes": []string{"all"}}
		if i%3 == 2 {
			c["locations"] = obj{"includeLocations": []string{officeLoc}}
			policy(fmt.Sprintf("Block Other App %03d from the office network", i), c, block, nil)
		} else {
			policy(fmt.Sprintf("MFA for Other App %03d", i), c, mfa, nil)
		}
	}
	// 10: legacy authentication blocked everywhere (the browser is not legacy).
	for i := range 10 {
		policy(fmt.Sprintf("Block legacy authentication %d", i), obj{"users": obj{"includeUsers": []string{"All"}, "excludeGroups": []string{breakGlassID}},
			"applications": all, "clientAppTypes": []string{"exchangeActiveSync", "other"}}, block, nil)
	}
	// 5: MFA away from trusted networks (loopback is trusted).
	for i := range 5 {
		policy(fmt.Sprintf("MFA outside trusted networks %d", i), obj{"users": obj{"includeUsers": []string{"All"}, "excludeGroups": []string{breakGlassID}},
			"applications": all, "clientAppTypes": []string{"all"},
			"locations": obj{"includeLocations": []string{"All"}, "excludeLocations": []string{"AllTrusted"}}}, mfa, nil)
	}
	// 3: apply to the bench user on the bench application and are met (a
	// sign-in frequency; persistent browser off).
	for i := range 3 {
		policy(fmt.Sprintf("Bench App session controls %d", i), obj{"users": obj{"includeUsers": []string{"All"}},
			"applications": obj{"includeApplications": []string{benchAppID}}, "clientAppTypes": []string{"all"}}, nil,
			obj{"signInFrequency": obj{"isEnabled": true, "type": "hours", "value": 12 + i, "frequencyInterval": "timeBased"}})
	}
	// 2: compliant devices on mobile platforms (the browser runs on Linux).
	for i := range 2 {
		policy(fmt.Sprintf("Compliant mobile devices %d", i), obj{"users": obj{"includeUsers": []string{"All"}},
			"applications": all, "clientAppTypes": []string{"all"},
			"platforms": obj{"includePlatforms": []string{"android", "iOS"}}}, obj{"operator": "OR", "builtInControls": []string{"compliantDevice"}}, nil)
	}

	// Role assignments, 10,000: the bench user's access through its group
	// at the bench application, 299 other users there as readers, and the
	// other users' and groups' access to the other applications.
	assignments := []any{obj{"group": appUsersGroup, "role": appUserRole, "scope": "/apps/" + benchAppID, "description": "Bench App users"}}
	for i := range otherUsers {
		for k := range 4 {
			assignments = append(assignments, obj{"user": otherUser(i), "role": appUserRole, "scope": "/apps/" + otherAppID((i*4+k)%otherApps)})
		}
	}
	for i := range 1500 {
		assignments = append(assignments, obj{"user": otherUser(i), "role": "Reader", "scope": "/apps/" + otherAppID((i*7+3)%otherApps)})
	}
	for g := range groupCount {
		assignments = append(assignments, obj{"group": groupName(g), "role": appUserRole, "scope": "/apps/" + otherAppID(g%otherApps)})
	}
	for i := range 299 {
		assignments = append(assignments, obj{"user": otherUser(i), "role": "Reader", "scope": "/apps/" + benchAppID})
	}

	return obj{
		"users": users, "groups": groups, "applications": apps, "servicePrincipals": sps,
		"namedLocations": locations, "conditionalAccessPolicies": policies, "roleAssignments": assignments,
	}, len(policies), len(assignments)
}

// api is a client of the node's admin API.
type api struct {
	base   string
	token  string
	client *http.Client
}

func (a *api) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// want calls the API and fails unless the status is one of ok.
func (a *api) want(ctx context.Context, method, path string, body any, ok ...int) ([]byte, error) {
	status, b, err := a.do(ctx, method, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for _, s := range ok {
		if status == s {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s %s: %d %s", method, path, status, truncate(b, 600))
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// caPool reads the node's CA certificate.
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", file)
	}
	return pool, nil
}

// runSetup signs the bootstrap administrator in, applies the tenant,
// publishes the bench application through the proxy, gives the bench
// user a password and the oauth2-proxy client a secret, signs the bench
// user in through the browser flow, and prints what the script needs as
// shell assignments.
func runSetup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	var c conn
	c.flags(fs)
	adminUser := fs.String("admin-user", "admin@verity.local", "bootstrap administrator")
	adminPassword := fs.String("admin-password", "", "bootstrap administrator's one-time password")
	upstream := fs.String("upstream", "", "upstream base URL the route forwards to")
	o2pRedirect := fs.String("o2p-redirect", "http://127.0.0.1:4180/oauth2/callback", "oauth2-proxy's redirect URI")
	_ = fs.Parse(args)
	if *adminPassword == "" || *upstream == "" {
		return errors.New("-admin-password and -upstream are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := c.admin()
	if err != nil {
		return err
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	b, err := a.want(ctx, "POST", "/api/v1/login", obj{"userPrincipalName": *adminUser, "password": *adminPassword}, http.StatusOK)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &login); err != nil {
		return err
	}
	a.token = login.AccessToken

	m, nPolicies, nAssignments := manifest(*o2pRedirect)
	t0 := time.Now()
	if _, err := a.want(ctx, "POST", "/api/v1/apply", m, http.StatusOK); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "tenant applied in %.1fs: %d policies, %d role assignments\n", time.Since(t0).Seconds(), nPolicies, nAssignments)

	if _, err := a.want(ctx, "POST", "/api/v1/appRoutes", obj{"displayName": "Bench App", "appId": benchAppID, "from": c.route, "to": []string{*upstream}},
		http.StatusCreated); err != nil {
		return err
	}
	password := randomPassword()
	if _, err := a.want(ctx, "POST", "/api/v1/users/"+benchUser+"/password", obj{"password": password}, http.StatusNoContent, http.StatusOK); err != nil {
		return err
	}
	objectID := o2pObjectID
	var secret struct {
		SecretText string `json:"secretText"`
	}
	b, err = a.want(ctx, "POST", "/api/v1/applications/"+objectID+"/addPassword", obj{"passwordCredential": obj{"displayName": "oauth2-proxy"}}, http.StatusOK, http.StatusCreated)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &secret); err != nil {
		return err
	}
	// The route and the tenant reach the node's snapshot within moments.
	if err := c.waitRoute(ctx); err != nil {
		return err
	}
	cookie, err := c.signIn(ctx, benchUser, password)
	if err != nil {
		return err
	}
	status, body, err := a.do(ctx, "GET", "/api/v1/status", nil)
	if err == nil && status == http.StatusOK {
		fmt.Fprintf(os.Stderr, "status: %s\n", truncate(body, 800))
	}
	for _, kv := range [][2]string{
		{"BENCH_USER", benchUser}, {"BENCH_PASSWORD", password}, {"VERITY_COOKIE", cookie},
		{"O2P_CLIENT_ID", o2pAppID}, {"O2P_CLIENT_SECRET", secret.SecretText},
		{"ADMIN_TOKEN", a.token}, {"POLICIES", fmt.Sprint(nPolicies)}, {"ROLE_ASSIGNMENTS", fmt.Sprint(nAssignments)},
	} {
		fmt.Printf("%s='%s'\n", kv[0], strings.ReplaceAll(kv[1], "'", ""))
	}
	return nil
}

func randomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "Bench-" + base64.RawURLEncoding.EncodeToString(b)
}
