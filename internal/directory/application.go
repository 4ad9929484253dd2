package directory

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// Sign-in audiences of an application, as Graph spells them.
const (
	AudienceMyOrg                  = "AzureADMyOrg"
	AudienceMultipleOrgs           = "AzureADMultipleOrgs"
	AudienceOrgsAndPersonalAccount = "AzureADandPersonalMicrosoftAccount"
	AudiencePersonalAccount        = "PersonalMicrosoftAccount"
)

// Service principal types, as Graph spells them.
const (
	ServicePrincipalTypeApplication     = "Application"
	ServicePrincipalTypeManagedIdentity = "ManagedIdentity"
	ServicePrincipalTypeLegacy          = "Legacy"
	ServicePrincipalTypeSocialIdp       = "SocialIdp"
)

const maxTag = 256

// Limits on redirect URIs, per list (web, spa, publicClient) and per URI.
const (
	maxRedirectURIs = 256
	maxURLBytes     = 1024 // a redirect URI, logoutUrl or homePageUrl
)

// Application is an application registration: Graph's application
// resource, with the properties Verity models. Its store key is the appId.
// An application is an OIDC client: appId is its client id, the redirect
// URIs of web, spa and publicClient are where its authorization responses
// may go, and its client secrets are kept apart (see AddClientSecret).
type Application struct {
	ID             string   `json:"id,omitempty"`
	AppID          string   `json:"appId,omitempty"` // assigned by the server on create when empty
	DisplayName    string   `json:"displayName"`
	Description    string   `json:"description,omitempty"`
	SignInAudience string   `json:"signInAudience,omitempty"` // default AzureADMyOrg
	IdentifierURIs []string `json:"identifierUris,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	// IsFallbackPublicClient marks the application as a public client
	// (no secret) where the flow cannot tell, as Graph's property does.
	IsFallbackPublicClient bool `json:"isFallbackPublicClient,omitempty"`
	// Web holds a confidential client's redirect URIs (server-side web
	// applications, which authenticate with a secret).
	Web *WebApplication `json:"web,omitempty"`
	// SPA holds a browser application's redirect URIs (public client,
	// authorization code with PKCE).
	SPA *SPAApplication `json:"spa,omitempty"`
	// PublicClient holds a native or mobile application's redirect URIs
	// (public client; loopback and custom schemes allowed).
	PublicClient *PublicClientApplication `json:"publicClient,omitempty"`
	// PasswordCredentials is read-only: the metadata of the application's
	// client secrets, which live in store records (ClientSecrets), never
	// in the stored object. Normalize clears it; the API fills it on read.
	PasswordCredentials []PasswordCredential `json:"passwordCredentials,omitempty"`
	// KeyCredentials are the application's certificates (see
	// KeyCredential).
	KeyCredentials  []KeyCredential `json:"keyCredentials,omitempty"`
	CreatedDateTime *time.Time      `json:"createdDateTime,omitempty"` // read-only, set by the server
}

// WebApplication is Graph's webApplication: the redirect and sign-out
// URLs of a confidential web client.
type WebApplication struct {
	RedirectURIs []string `json:"redirectUris,omitempty"`
	// LogoutURL is where the provider sends the browser to sign the user
	// out of the application (front-channel logout).
	LogoutURL   string `json:"logoutUrl,omitempty"`
	HomePageURL string `json:"homePageUrl,omitempty"`
}

// SPAApplication is Graph's spaApplication: the redirect URIs of a
// single-page application.
type SPAApplication struct {
	RedirectURIs []string `json:"redirectUris,omitempty"`
}

// PublicClientApplication is Graph's publicClientApplication: the
// redirect URIs of a native, desktop or mobile application.
type PublicClientApplication struct {
	RedirectURIs []string `json:"redirectUris,omitempty"`
}

// PasswordCredential is what Graph shows of a client secret: its key id,
// name, first three characters and validity. The secret itself is shown
// once, by addPassword, and kept only as a hash.
type PasswordCredential struct {
	KeyID         string    `json:"keyId"`
	DisplayName   string    `json:"displayName,omitempty"`
	Hint          string    `json:"hint,omitempty"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
}

// applicationGraphOnly are Graph application properties Verity does not
// model (yet); a Graph export that carries them imports without them.
var applicationGraphOnly = []string{
	"addIns", "api", "appRoles", "applicationTemplateId", "authenticationBehaviors",
	"certification", "defaultRedirectUri", "deletedDateTime", "disabledByMicrosoftStatus",
	"groupMembershipClaims", "info", "isDeviceOnlyAuthSupported",
	"logo", "nativeAuthenticationApisEnabled", "notes",
	"oauth2RequirePostResponse", "optionalClaims", "parentalControlSettings",
	"publisherDomain", "requestSignatureVerification",
	"requiredResourceAccess", "samlMetadataUrl", "serviceManagementReference",
	"servicePrincipalLockConfiguration", "tokenEncryptionKeyId", "uniqueName",
	"verifiedPublisher",
}

// webGraphOnly are properties of Graph's webApplication Verity does not
// model: the implicit grant (Verity issues tokens by authorization code
// only) and redirectUriSettings, which repeats redirectUris with indexes.
var webGraphOnly = []string{"implicitGrantSettings", "redirectUriSettings"}

// prepareApplication accepts two Graph shapes strict decoding would refuse:
// webApplication's Graph-only properties, dropped, and passwordCredentials
// as Graph prints them, with "secretText" and "customKeyIdentifier" null.
// A secretText with a value is refused rather than dropped: a secret is
// added with addPassword, and one silently ignored would surprise.
func prepareApplication(top map[string]json.RawMessage) (bool, error) {
	changed := false
	if raw, ok := top["web"]; ok {
		var web map[string]json.RawMessage
		if json.Unmarshal(raw, &web) == nil && web != nil {
			n := len(web)
			for _, p := range webGraphOnly {
				delete(web, p)
			}
			if len(web) != n {
				b, err := json.Marshal(web)
				if err != nil {
					return false, fmt.Errorf("decode application: %w", err)
				}
				top["web"], changed = b, true
			}
		}
	}
	raw, ok := top["passwordCredentials"]
	if !ok {
		return changed, nil
	}
	var creds []map[string]json.RawMessage
	if json.Unmarshal(raw, &creds) != nil {
		return changed, nil // not an array of objects: strictjson explains what is wrong
	}
	for i, c := range creds {
		if s, ok := c["secretText"]; ok && string(s) != "null" && string(s) != `""` {
			return false, strictjson.Errorf(strictjson.Join(strictjson.Index("passwordCredentials", i), "secretText"),
				"is read-only; add a client secret with POST /applications/{id}/addPassword")
		}
		delete(c, "secretText")
		delete(c, "customKeyIdentifier")
	}
	b, err := json.Marshal(creds)
	if err != nil {
		return false, fmt.Errorf("decode application: %w", err)
	}
	top["passwordCredentials"] = b
	return true, nil
}

// ObjectID implements Resource.
func (a *Application) ObjectID() string { return a.ID }

// SetObjectID implements Resource.
func (a *Application) SetObjectID(id string) { a.ID = id }

// SetCreatedDateTime implements Resource.
func (a *Application) SetCreatedDateTime(t time.Time) { t = t.UTC(); a.CreatedDateTime = &t }

// Key is the store key: the appId.
func (a *Application) Key() string { return a.AppID }

// Normalize implements Resource: signInAudience defaults to AzureADMyOrg
// (single tenant, the least exposure) and takes its canonical case; GUIDs
// are lower-cased; web, spa and publicClient without content are dropped;
// passwordCredentials is cleared, since it is never stored (the API
// shows it from the credential records).
func (a *Application) Normalize() {
	a.ID = lowerGUID(a.ID)
	a.AppID = lowerGUID(a.AppID)
	if a.SignInAudience == "" {
		a.SignInAudience = AudienceMyOrg
	}
	a.SignInAudience = canonical(a.SignInAudience, AudienceMyOrg, AudienceMultipleOrgs, AudienceOrgsAndPersonalAccount, AudiencePersonalAccount)
	if a.Web != nil && len(a.Web.RedirectURIs) == 0 && a.Web.LogoutURL == "" && a.Web.HomePageURL == "" {
		a.Web = nil
	}
	if a.SPA != nil && len(a.SPA.RedirectURIs) == 0 {
		a.SPA = nil
	}
	if a.PublicClient != nil && len(a.PublicClient.RedirectURIs) == 0 {
		a.PublicClient = nil
	}
	a.PasswordCredentials = nil
	a.KeyCredentials = normalizeKeyCredentials(a.KeyCredentials)
}

// Validate implements Resource.
func (a *Application) Validate() error {
	var web, spa, public []string
	var logout, home string
	if a.Web != nil {
		web, logout, home = a.Web.RedirectURIs, a.Web.LogoutURL, a.Web.HomePageURL
	}
	if a.SPA != nil {
		spa = a.SPA.RedirectURIs
	}
	if a.PublicClient != nil {
		public = a.PublicClient.RedirectURIs
	}
	return firstError(
		checkID("id", a.ID),
		checkID("appId", a.AppID),
		checkDisplayName("displayName", a.DisplayName),
		checkText("description", a.Description, maxDescription),
		checkEnum("signInAudience", a.SignInAudience, AudienceMyOrg, AudienceMultipleOrgs, AudienceOrgsAndPersonalAccount, AudiencePersonalAccount),
		checkStrings("identifierUris", a.IdentifierURIs, checkIdentifierURI),
		checkStrings("tags", a.Tags, textUpTo(maxTag)),
		checkRedirectURIs("web.redirectUris", web, false),
		optional("web.logoutUrl", logout, func(path, s string) error { return checkRedirectURI(path, s, false) }),
		optional("web.homePageUrl", home, checkHomePageURL),
		checkRedirectURIs("spa.redirectUris", spa, false),
		checkRedirectURIs("publicClient.redirectUris", public, true),
		checkKeyCredentials("keyCredentials", a.KeyCredentials),
		checkOnePlatform(web, spa, public),
	)
}

// checkIdentifierURI accepts absolute URIs such as api://{appId},
// https://contoso.com/api or urn:contoso:api, without a fragment.
func checkIdentifierURI(path, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Opaque == "" && u.Host == "") || u.Fragment != "" || strings.ContainsAny(s, " \t*") {
		return strictjson.Errorf(path, "must be an absolute URI without wildcards or fragment, such as api://contoso-payroll, not %q", s)
	}
	return nil
}

// checkRedirectURIs checks one platform's list: at most maxRedirectURIs
// entries, each a valid redirect URI, none repeated.
func checkRedirectURIs(path string, list []string, custom bool) error {
	if len(list) > maxRedirectURIs {
		return strictjson.Errorf(path, "must have at most %d entries, not %d", maxRedirectURIs, len(list))
	}
	seen := make(map[string]int, len(list))
	for i, s := range list {
		p := strictjson.Index(path, i)
		if err := checkRedirectURI(p, s, custom); err != nil {
			return err
		}
		if j, dup := seen[s]; dup {
			return strictjson.Errorf(p, "repeats entry %d (%q)", j, s)
		}
		seen[s] = i
	}
	return nil
}

// Schemes no redirect may use, even a native client's: they run code,
// read local files, or (urn:ietf:wg:oauth:2.0:oob) ask the user to copy
// the code by hand, which RFC 8252 retired.
var forbiddenRedirectSchemes = map[string]bool{
	"javascript": true, "vbscript": true, "data": true, "blob": true, "file": true,
	"filesystem": true, "about": true, "urn": true, "ftp": true, "ws": true, "wss": true,
}

// checkRedirectURI applies OAuth's rules for where an authorization
// response may be sent: an absolute URI of at most maxURLBytes without a
// fragment (RFC 6749 3.1.2), without user information or wildcards, over
// https, or over http only to the loopback interface (RFC 8252 7.3).
// custom also admits a native application's private-use scheme, such as
// com.example.app:/callback (RFC 8252 7.1).
func checkRedirectURI(path, s string, custom bool) error {
	switch {
	case s == "":
		return strictjson.Errorf(path, "must not be empty")
	case len(s) > maxURLBytes:
		return strictjson.Errorf(path, "must be at most %d bytes, not %d", maxURLBytes, len(s))
	case strings.Contains(s, "#"):
		return strictjson.Errorf(path, "must not have a fragment (#...): the authorization response is added to it")
	case strings.Contains(s, "*"):
		return strictjson.Errorf(path, "must not contain a wildcard (*): list each redirect URI")
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return strictjson.Errorf(path, "must not contain spaces or control characters")
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return strictjson.Errorf(path, "must be an absolute URI such as https://app.contoso.com/signin-oidc, not %q", s)
	}
	if u.User != nil {
		return strictjson.Errorf(path, "must not contain a user name or password")
	}
	switch u.Scheme {
	case "https":
		if u.Hostname() == "" {
			return strictjson.Errorf(path, "must name a host, as in https://app.contoso.com/signin-oidc")
		}
		return nil
	case "http":
		if !isLoopback(u.Hostname()) {
			return strictjson.Errorf(path, "must use https; http is allowed only for http://localhost, http://127.0.0.1 and http://[::1] (any port)")
		}
		return nil
	}
	if !custom {
		return strictjson.Errorf(path, "must use https (or http to localhost, 127.0.0.1 or [::1]), not %q; custom schemes are for publicClient", u.Scheme+":")
	}
	if forbiddenRedirectSchemes[u.Scheme] {
		return strictjson.Errorf(path, "must not use the scheme %q; a native application uses its own, such as com.example.app:/callback", u.Scheme+":")
	}
	if u.Opaque == "" && u.Host == "" && u.Path == "" {
		return strictjson.Errorf(path, "must have a path after the scheme, as in com.example.app:/callback")
	}
	return nil
}

// isLoopback reports whether host names the loopback interface as RFC
// 8252 allows for http redirects.
func isLoopback(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

// checkHomePageURL accepts an absolute http or https URL of at most
// maxURLBytes: a link, never a destination for tokens.
func checkHomePageURL(path, s string) error {
	if len(s) > maxURLBytes {
		return strictjson.Errorf(path, "must be at most %d bytes, not %d", maxURLBytes, len(s))
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil || strings.ContainsAny(s, " \t\r\n") {
		return strictjson.Errorf(path, "must be an absolute http or https URL such as https://app.contoso.com/, not %q", s)
	}
	return nil
}

// checkOnePlatform refuses a redirect URI listed under two platforms: the
// platform says whether the client behind a redirect is confidential (web)
// or public (spa, publicClient), so it must be unambiguous.
func checkOnePlatform(web, spa, public []string) error {
	in := make(map[string]string, len(web)+len(spa))
	for _, s := range web {
		in[s] = "web"
	}
	for i, s := range spa {
		if p, ok := in[s]; ok {
			return strictjson.Errorf(strictjson.Index("spa.redirectUris", i), "is also a %s redirect URI; a redirect URI belongs to one platform", p)
		}
		in[s] = "spa"
	}
	for i, s := range public {
		if p, ok := in[s]; ok {
			return strictjson.Errorf(strictjson.Index("publicClient.redirectUris", i), "is also a %s redirect URI; a redirect URI belongs to one platform", p)
		}
	}
	return nil
}

// ServicePrincipal is the identity of an application or managed identity
// in the tenant: Graph's servicePrincipal resource, with the properties
// Verity models. Its store key is the appId.
type ServicePrincipal struct {
	ID                        string     `json:"id,omitempty"`
	AppID                     string     `json:"appId"`
	DisplayName               string     `json:"displayName"`
	AccountEnabled            *bool      `json:"accountEnabled,omitempty"`       // default true
	ServicePrincipalType      string     `json:"servicePrincipalType,omitempty"` // default Application
	AppRoleAssignmentRequired bool       `json:"appRoleAssignmentRequired"`
	Tags                      []string   `json:"tags,omitempty"`
	CreatedDateTime           *time.Time `json:"createdDateTime,omitempty"` // read-only, set by the server
}

var servicePrincipalGraphOnly = []string{
	"addIns", "alternativeNames", "appDescription", "appDisplayName", "applicationTemplateId",
	"appOwnerOrganizationId", "appRoles", "customSecurityAttributes", "deletedDateTime",
	"description", "disabledByMicrosoftStatus", "homepage", "info", "keyCredentials",
	"loginUrl", "logoutUrl", "notes", "notificationEmailAddresses", "oauth2PermissionScopes",
	"passwordCredentials", "preferredSingleSignOnMode", "preferredTokenSigningKeyThumbprint",
	"replyUrls", "resourceSpecificApplicationPermissions", "samlSingleSignOnSettings",
	"servicePrincipalNames", "signInAudience", "tokenEncryptionKeyId", "verifiedPublisher",
}

// ObjectID implements Resource.
func (s *ServicePrincipal) ObjectID() string { return s.ID }

// SetObjectID implements Resource.
func (s *ServicePrincipal) SetObjectID(id string) { s.ID = id }

// SetCreatedDateTime implements Resource.
func (s *ServicePrincipal) SetCreatedDateTime(t time.Time) { t = t.UTC(); s.CreatedDateTime = &t }

// Key is the store key: the appId.
func (s *ServicePrincipal) Key() string { return s.AppID }

// Enabled reports whether the service principal may sign in.
func (s *ServicePrincipal) Enabled() bool { return s.AccountEnabled == nil || *s.AccountEnabled }

// IsManagedIdentity reports whether the service principal is a managed
// identity.
func (s *ServicePrincipal) IsManagedIdentity() bool {
	return s.ServicePrincipalType == ServicePrincipalTypeManagedIdentity
}

// Normalize implements Resource: accountEnabled defaults to true,
// servicePrincipalType to Application in canonical case; GUIDs are
// lower-cased.
func (s *ServicePrincipal) Normalize() {
	s.ID = lowerGUID(s.ID)
	s.AppID = lowerGUID(s.AppID)
	s.AccountEnabled = boolDefault(s.AccountEnabled, true)
	if s.ServicePrincipalType == "" {
		s.ServicePrincipalType = ServicePrincipalTypeApplication
	}
	s.ServicePrincipalType = canonical(s.ServicePrincipalType, ServicePrincipalTypeApplication,
		ServicePrincipalTypeManagedIdentity, ServicePrincipalTypeLegacy, ServicePrincipalTypeSocialIdp)
}

// Validate implements Resource.
func (s *ServicePrincipal) Validate() error {
	return firstError(
		checkID("id", s.ID),
		checkGUID("appId", s.AppID),
		checkDisplayName("displayName", s.DisplayName),
		checkEnum("servicePrincipalType", s.ServicePrincipalType, ServicePrincipalTypeApplication,
			ServicePrincipalTypeManagedIdentity, ServicePrincipalTypeLegacy, ServicePrincipalTypeSocialIdp),
		checkStrings("tags", s.Tags, textUpTo(maxTag)),
	)
}
