package directory

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/strictjson"
)

// TestApplicationFromAzADAppShow imports an application as `az ad app
// show` prints it and checks what Verity keeps, what it drops, and that
// the stored form reads back unchanged through both the API's strict
// decoder and the store's.
func TestApplicationFromAzADAppShow(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/applications/az-ad-app-show.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Applications.Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if a.AppID != "3f9c7a52-6b1e-4d0a-9e8f-2c4b7d1a5e60" || a.DisplayName != "Contoso Expenses" || !a.IsFallbackPublicClient {
		t.Errorf("application = %+v", a)
	}
	if a.Web == nil || !slices.Equal(a.Web.RedirectURIs, []string{"https://expenses.contoso.com/signin-oidc", "https://localhost:5001/signin-oidc"}) ||
		a.Web.LogoutURL != "https://expenses.contoso.com/signout-oidc" || a.Web.HomePageURL != "https://expenses.contoso.com/" {
		t.Errorf("web = %+v", a.Web)
	}
	if a.SPA == nil || !slices.Equal(a.SPA.RedirectURIs, []string{"https://expenses.contoso.com/app/"}) {
		t.Errorf("spa = %+v", a.SPA)
	}
	if a.PublicClient == nil || !slices.Equal(a.PublicClient.RedirectURIs, []string{"com.contoso.expenses:/oauth2redirect", "http://localhost"}) {
		t.Errorf("publicClient = %+v", a.PublicClient)
	}
	if a.PasswordCredentials != nil {
		t.Errorf("passwordCredentials kept: %+v (they live in records, never in the object)", a.PasswordCredentials)
	}

	o, err := Applications.Object(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"passwordCredentials", "kP8", "implicitGrantSettings", "redirectUriSettings", "requiredResourceAccess"} {
		if strings.Contains(string(o.Body), gone) {
			t.Errorf("stored body holds %q: %s", gone, o.Body)
		}
	}
	back, err := Applications.Parse(o.Body)
	if err != nil {
		t.Fatalf("Parse(stored body): %v", err)
	}
	if got := string(mustJSON(t, back)); got != string(o.Body) {
		t.Errorf("strict round trip:\n got %s\nwant %s", got, o.Body)
	}
	fromStore, err := Applications.FromObject(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(mustJSON(t, fromStore)); got != string(o.Body) {
		t.Errorf("store round trip:\n got %s\nwant %s", got, o.Body)
	}
}

func TestApplicationEmptyPlatformsNormalizeAway(t *testing.T) {
	t.Parallel()
	a, err := Applications.Parse([]byte(`{"displayName":"A","isFallbackPublicClient":null,
		"web":{"homePageUrl":null,"logoutUrl":null,"redirectUris":[],"implicitGrantSettings":{"enableIdTokenIssuance":false},"redirectUriSettings":[]},
		"spa":{"redirectUris":[]},"publicClient":{"redirectUris":[]},"passwordCredentials":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(mustJSON(t, a)); got != `{"displayName":"A","signInAudience":"AzureADMyOrg"}` {
		t.Errorf("normalised = %s", got)
	}
}

func TestApplicationRedirectValidation(t *testing.T) {
	t.Parallel()
	long := "https://app.contoso.com/" + strings.Repeat("a", maxURLBytes-len("https://app.contoso.com/")+1)
	many := `"https://a.contoso.com/0"`
	for i := 1; i <= maxRedirectURIs; i++ {
		many += `,"https://a.contoso.com/` + strings.Repeat("x", i) + `"`
	}
	tests := []struct {
		name     string
		body     string // the application's properties besides displayName
		wantPath string // "" means valid
		wantMsg  string
	}{
		{"web https", `"web":{"redirectUris":["https://app.contoso.com/signin-oidc","https://app.contoso.com:8443/cb?tenant=x"]}`, "", ""},
		{"web loopback http any port", `"web":{"redirectUris":["http://localhost:5000/cb","http://127.0.0.1/cb","http://[::1]:8080/cb","http://LOCALHOST/x"]}`, "", ""},
		{"web http elsewhere", `"web":{"redirectUris":["https://ok.contoso.com/","http://app.contoso.com/cb"]}`, "web.redirectUris[1]", "must use https"},
		{"web http localhost lookalike", `"web":{"redirectUris":["http://localhost.evil.example/cb"]}`, "web.redirectUris[0]", "must use https"},
		{"web fragment", `"web":{"redirectUris":["https://app.contoso.com/cb#x"]}`, "web.redirectUris[0]", "fragment"},
		{"web empty fragment", `"web":{"redirectUris":["https://app.contoso.com/cb#"]}`, "web.redirectUris[0]", "fragment"},
		{"web relative", `"web":{"redirectUris":["/signin-oidc"]}`, "web.redirectUris[0]", "absolute URI"},
		{"web no host", `"web":{"redirectUris":["https:///cb"]}`, "web.redirectUris[0]", "must name a host"},
		{"web user info", `"web":{"redirectUris":["https://user:pw@app.contoso.com/cb"]}`, "web.redirectUris[0]", "user name or password"},
		{"web wildcard", `"web":{"redirectUris":["https://*.contoso.com/cb"]}`, "web.redirectUris[0]", "wildcard"},
		{"web space", `"web":{"redirectUris":["https://app.contoso.com/a b"]}`, "web.redirectUris[0]", "spaces"},
		{"web empty", `"web":{"redirectUris":[""]}`, "web.redirectUris[0]", "must not be empty"},
		{"web custom scheme", `"web":{"redirectUris":["com.contoso.app:/cb"]}`, "web.redirectUris[0]", "custom schemes are for publicClient"},
		{"web repeated", `"web":{"redirectUris":["https://a.contoso.com/","https://a.contoso.com/"]}`, "web.redirectUris[1]", "repeats entry 0"},
		{"web too long", `"web":{"redirectUris":["` + long + `"]}`, "web.redirectUris[0]", "at most 1024 bytes"},
		{"web at the length limit", `"web":{"redirectUris":["` + long[:maxURLBytes] + `"]}`, "", ""},
		{"web too many", `"web":{"redirectUris":[` + many + `]}`, "web.redirectUris", "at most 256 entries, not 257"},
		{"web not a list", `"web":{"redirectUris":"https://a.contoso.com/"}`, "web.redirectUris", "must be an array"},
		{"web unknown property", `"web":{"redirectUri":["https://a.contoso.com/"]}`, "web.redirectUri", "unknown field"},
		{"logout url", `"web":{"logoutUrl":"https://app.contoso.com/signout-oidc"}`, "", ""},
		{"logout url http", `"web":{"logoutUrl":"http://app.contoso.com/signout"}`, "web.logoutUrl", "must use https"},
		{"logout url fragment", `"web":{"logoutUrl":"https://app.contoso.com/signout#now"}`, "web.logoutUrl", "fragment"},
		{"home page http", `"web":{"homePageUrl":"http://intranet.contoso.com/#/home"}`, "", ""},
		{"home page not a url", `"web":{"homePageUrl":"contoso.com"}`, "web.homePageUrl", "absolute http or https URL"},
		{"home page javascript", `"web":{"homePageUrl":"javascript:alert(1)"}`, "web.homePageUrl", "absolute http or https URL"},
		{"spa https", `"spa":{"redirectUris":["https://app.contoso.com/","http://localhost:3000"]}`, "", ""},
		{"spa custom scheme", `"spa":{"redirectUris":["com.contoso.app:/cb"]}`, "spa.redirectUris[0]", "custom schemes are for publicClient"},
		{"public client custom scheme", `"publicClient":{"redirectUris":["com.contoso.app:/oauth2redirect","msal` + guidA + `://auth","http://127.0.0.1:49152","https://login.contoso.com/native"]}`, "", ""},
		{"public client http", `"publicClient":{"redirectUris":["http://device.contoso.com/cb"]}`, "publicClient.redirectUris[0]", "must use https"},
		{"public client javascript", `"publicClient":{"redirectUris":["javascript:alert(1)"]}`, "publicClient.redirectUris[0]", `scheme "javascript:"`},
		{"public client file", `"publicClient":{"redirectUris":["file:///tmp/cb"]}`, "publicClient.redirectUris[0]", `scheme "file:"`},
		{"public client out of band", `"publicClient":{"redirectUris":["urn:ietf:wg:oauth:2.0:oob"]}`, "publicClient.redirectUris[0]", `scheme "urn:"`},
		{"public client scheme only", `"publicClient":{"redirectUris":["com.contoso.app:"]}`, "publicClient.redirectUris[0]", "path after the scheme"},
		{"public client fragment", `"publicClient":{"redirectUris":["com.contoso.app:/cb#x"]}`, "publicClient.redirectUris[0]", "fragment"},
		{"same uri web and spa", `"web":{"redirectUris":["https://app.contoso.com/cb"]},"spa":{"redirectUris":["https://app.contoso.com/other","https://app.contoso.com/cb"]}`, "spa.redirectUris[1]", "also a web redirect URI"},
		{"same uri spa and public", `"spa":{"redirectUris":["http://localhost:3000"]},"publicClient":{"redirectUris":["http://localhost:3000"]}`, "publicClient.redirectUris[0]", "also a spa redirect URI"},
		{"fallback public client", `"isFallbackPublicClient":true`, "", ""},
		{"fallback public client not bool", `"isFallbackPublicClient":"yes"`, "isFallbackPublicClient", "true or false"},
		{"credential metadata dropped", `"passwordCredentials":[{"customKeyIdentifier":null,"displayName":"x","endDateTime":"2026-01-01T00:00:00Z","hint":"abc","keyId":"` + guidA + `","secretText":null,"startDateTime":"2025-01-01T00:00:00Z"}]`, "", ""},
		{"credential secret refused", `"passwordCredentials":[{"keyId":"` + guidA + `"},{"keyId":"` + guidB + `","secretText":"abc~vcs~xyz"}]`, "passwordCredentials[1].secretText", "read-only"},
		{"credential unknown property", `"passwordCredentials":[{"keyId":"` + guidA + `","secret":"x"}]`, "passwordCredentials[0].secret", "unknown field"},
		{"credential wrong type", `"passwordCredentials":[{"keyId":42}]`, "passwordCredentials[0].keyId", "must be a string"},
		{"credentials not a list", `"passwordCredentials":{"keyId":"` + guidA + `"}`, "passwordCredentials", "must be an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := Applications.Parse([]byte(`{"displayName":"App",` + tt.body + `}`))
			if tt.wantPath == "" && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if a.PasswordCredentials != nil {
					t.Errorf("passwordCredentials kept: %+v", a.PasswordCredentials)
				}
				return
			}
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error = %v; want a field error at %s", err, tt.wantPath)
			}
			if fe.Path != tt.wantPath || !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("error at %q: %q; want %q containing %q", fe.Path, fe.Message, tt.wantPath, tt.wantMsg)
			}
		})
	}
}
