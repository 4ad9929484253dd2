package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// cityDB writes a GeoLite2-City-shaped database: each CIDR to a country,
// a city and its coordinates.
func cityDB(t *testing.T, path string, cities map[string][4]string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 28, IPVersion: 6, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, c := range cities {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		var lat, lon float64
		fmt.Sscan(c[2], &lat)
		fmt.Sscan(c[3], &lon)
		if err := tree.Insert(network, mmdbtype.Map{
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(c[0])},
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(c[1])}},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
}

// forwardedFor sends every request to Verity's own listener as if a
// load balancer on 127.0.0.1 had forwarded it for the address in *from.
type forwardedFor struct {
	next http.RoundTripper
	host string
	mu   sync.Mutex
	from string
}

func (f *forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	from := f.from
	f.mu.Unlock()
	if r.URL.Host == f.host && from != "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Forwarded-For", from)
	}
	return f.next.RoundTrip(r)
}

func (f *forwardedFor) set(from string) { f.mu.Lock(); f.from = from; f.mu.Unlock() }

// TestLiveAttacksRespond runs attacks against `verity up`'s own sign-in on
// loopback, behind a trusted load balancer (X-Forwarded-For) and with a
// city database:
//   - bob signs in through the proxy from Paris, then his password is used
//     from Sydney seconds later: the sign-in carries its risk, the impossible
//     travel is raised, bob's risk goes up, the playbook revokes his sessions
//     and posts a signed webhook — and bob's next request through the proxy
//     is sent to sign in again, where a user risk policy refuses him;
//   - carol's Sydney sign-in after Paris is refused at once by a policy on
//     sign-in risk — the risk of the attempt in flight;
//   - dave's password is used with eleven wrong second factors, then gets
//     in: MFA fatigue, raised, responded to, and dave is refused next.
//
// Every step is in the audit log.
func TestLiveAttacksRespond(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mmdb := filepath.Join(dir, "city.mmdb")
	cityDB(t, mmdb, map[string][4]string{
		"198.51.100.0/24": {"FR", "Paris", "48.8566", "2.3522"},
		"203.0.113.0/24":  {"AU", "Sydney", "-33.8688", "151.2093"},
	})
	anonymous := filepath.Join(dir, "anonymous.txt")
	if err := os.WriteFile(anonymous, []byte("# exit nodes\n192.0.2.0/28\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretFile := filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	verifier, _ := standardwebhooks.NewWebhook(secret)
	var mu sync.Mutex
	hooked := map[string]string{} // detector → user
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			Alert struct{ Detector, UserPrincipalName string }
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		hooked[ev.Alert.Detector] = ev.Alert.UserPrincipalName
		mu.Unlock()
	}))
	defer hook.Close()
	playbooks := fmt.Sprintf(`[{"name": "contain", "detectors": ["impossibleTravel", "mfaFatigue"],
		"actions": ["revokeSessions", "webhook"], "webhookURL": %q, "webhookSecretFile": %q}]`, hook.URL, secretFile)
	env := baseEnv("VERITY_CREDENTIALS_FILE="+filepath.Join(dir, "credentials.json"), "VERITY_AUTH_MAX_FAILED_LOGINS=50",
		"VERITY_HTTP_TRUSTED_PROXIES=127.0.0.1", "VERITY_GEO_MMDB_FILE="+mmdb, "VERITY_DETECT_ANONYMOUS_ADDRESS_LIST="+anonymous,
		"VERITY_DETECT_PLAYBOOKS="+playbooks)
	n := start(t, env, "up", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "verity-data"))
	tok := n.login(n.user, n.password)
	ids := map[string]string{}
	for _, name := range []string{"bob", "carol", "dave"} {
		status, body := n.do(tok, "POST", "/api/v1/users", fmt.Sprintf(`{"userPrincipalName": "%s@contoso.com", "displayName": %q, "accountEnabled": true}`, name, name))
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, status, body)
		}
		var u struct{ ID string }
		_ = json.Unmarshal(body, &u)
		ids[name] = u.ID
		if status, body := n.do(tok, "POST", "/api/v1/users/"+name+"@contoso.com/password", `{"password": "correct horse battery staple 7"}`); status != http.StatusNoContent {
			t.Fatalf("set password: %d %s", status, body)
		}
	}
	for _, p := range []string{
		`{"displayName": "Block risky users", "state": "enabled",
		"conditions": {"users": {"includeUsers": ["` + ids["bob"] + `", "` + ids["dave"] + `"]}, "applications": {"includeApplications": ["All"]},
		"clientAppTypes": ["all"], "userRiskLevels": ["medium", "high"]}, "grantControls": {"operator": "OR", "builtInControls": ["block"]}}`,
		`{"displayName": "Block risky sign-ins", "state": "enabled",
		"conditions": {"users": {"includeUsers": ["` + ids["carol"] + `"]}, "applications": {"includeApplications": ["All"]},
		"clientAppTypes": ["all"], "signInRiskLevels": ["medium", "high"]}, "grantControls": {"operator": "OR", "builtInControls": ["block"]}}`,
	} {
		if status, body := n.do(tok, "POST", "/api/v1/identity/conditionalAccess/policies", p); status != http.StatusCreated {
			t.Fatalf("policy: %d %s", status, body)
		}
	}
	m := bannerProxy.FindStringSubmatch(n.stdout.String())
	if m == nil {
		t.Fatalf("no proxy line in the banner:\n%s", n.stdout)
	}
	upstream := helloUpstream(t)
	appURL, tr := publishHello(t, n, tok, m[1], upstream.URL)

	nodeHost := strings.TrimPrefix(n.url, "https://")
	lb := &forwardedFor{next: tr, host: nodeHost}
	jar, _ := cookiejar.New(nil)
	bobBrowser := &http.Client{Transport: lb, Jar: jar, Timeout: 20 * time.Second}
	api := &http.Client{Transport: lb, Timeout: 20 * time.Second}
	login := func(from, user, otp string) (int, string) {
		t.Helper()
		lb.set(from)
		body := fmt.Sprintf(`{"userPrincipalName": "%s@contoso.com", "password": "correct horse battery staple 7", "otp": %q}`, user, otp)
		if otp == "" {
			body = fmt.Sprintf(`{"userPrincipalName": "%s@contoso.com", "password": "correct horse battery staple 7"}`, user)
		}
		resp, err := api.Post(n.url+"/api/v1/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Bob signs in from Paris through the proxy.
	lb.set("198.51.100.7")
	openAs(t, n, bobBrowser, appURL, "bob@contoso.com", "correct horse battery staple 7")
	// His password, moments later, from Sydney.
	if status, body := login("203.0.113.9", "bob", ""); status != http.StatusOK {
		t.Fatalf("bob from Sydney: %d %s", status, body)
	}
	// Carol: Paris, then Sydney — refused in flight.
	if status, body := login("198.51.100.8", "carol", ""); status != http.StatusOK {
		t.Fatalf("carol from Paris: %d %s", status, body)
	}
	if status, body := login("203.0.113.10", "carol", ""); status != http.StatusForbidden || !strings.Contains(body, "ConditionalAccessBlocked") {
		t.Fatalf("carol from Sydney seconds later: %d %s", status, body)
	}
	// Dave: eleven denied second factors, then in.
	for i := range 11 {
		if status, body := login("198.51.100.50", "dave", fmt.Sprintf("%06d", i)); status != http.StatusUnauthorized {
			t.Fatalf("dave's second factor %d: %d %s", i, status, body)
		}
	}
	if status, body := login("198.51.100.50", "dave", ""); status != http.StatusOK {
		t.Fatalf("dave let in: %d %s", status, body)
	}

	// Within seconds: bob's next request through the proxy is sent to sign
	// in again (his session was revoked), and there he is refused.
	lb.set("198.51.100.7")
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := bobBrowser.Get(appURL + "/docs/b")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.HasPrefix(resp.Request.URL.String(), n.url+"/signin") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's session still works after the impossible travel: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, user := range []string{"bob", "dave"} {
		for deadline := time.Now().Add(10 * time.Second); ; {
			status, body := login("198.51.100.7", user, "")
			if status == http.StatusForbidden && strings.Contains(body, "ConditionalAccessBlocked") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still signs in: %d %s", user, status, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		done := hooked["impossibleTravel"] == "bob@contoso.com" && hooked["mfaFatigue"] == "dave@contoso.com"
		got := fmt.Sprint(hooked)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks received: %s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Each step is in the audit log: the risky sign-in, the responses.
	cli := append(env, "VERITY_SERVER="+n.url, "VERITY_CA_FILE="+n.caFile, "VERITY_TOKEN="+tok)
	out, _, err := run(t, cli, "", "alerts", "list")
	if err != nil || !strings.Contains(out, "impossibleTravel") || !strings.Contains(out, "mfaFatigue") {
		t.Fatalf("alerts: %v\n%s", err, out)
	}
	status, body := n.do(tok, "GET", "/api/v1/auditLogs/signIns?userId="+ids["carol"], "")
	if status != http.StatusOK || !strings.Contains(string(body), `"riskEventTypes_v2":["impossibleTravel"`) || !strings.Contains(string(body), `"city":"Sydney"`) {
		t.Fatalf("carol's sign-ins: %d %s", status, body)
	}
	status, body = n.do(tok, "GET", "/api/v1/auditLogs/directoryAudits?action=detect.response", "")
	if status != http.StatusOK || strings.Count(string(body), `"action":"revokeSessions"`) < 2 || strings.Count(string(body), `"action":"webhook"`) < 2 {
		t.Fatalf("responses in the audit log: %d %s", status, body)
	}
}
