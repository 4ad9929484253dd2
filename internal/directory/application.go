package directory

import (
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

// Application is an application registration: Graph's application
// resource, with the properties Verity models. Its store key is the appId.
type Application struct {
	ID              string     `json:"id,omitempty"`
	AppID           string     `json:"appId,omitempty"` // assigned by the server on create when empty
	DisplayName     string     `json:"displayName"`
	Description     string     `json:"description,omitempty"`
	SignInAudience  string     `json:"signInAudience,omitempty"` // default AzureADMyOrg
	IdentifierURIs  []string   `json:"identifierUris,omitempty"`
	Tags            []string   `json:"tags,omitempty"`
	CreatedDateTime *time.Time `json:"createdDateTime,omitempty"` // read-only, set by the server
}

// applicationGraphOnly are Graph application properties Verity does not
// model (yet); a Graph export that carries them imports without them.
var applicationGraphOnly = []string{
	"addIns", "api", "appRoles", "applicationTemplateId", "authenticationBehaviors",
	"certification", "defaultRedirectUri", "deletedDateTime", "disabledByMicrosoftStatus",
	"groupMembershipClaims", "info", "isDeviceOnlyAuthSupported", "isFallbackPublicClient",
	"keyCredentials", "logo", "nativeAuthenticationApisEnabled", "notes",
	"oauth2RequirePostResponse", "optionalClaims", "parentalControlSettings",
	"passwordCredentials", "publicClient", "publisherDomain", "requestSignatureVerification",
	"requiredResourceAccess", "samlMetadataUrl", "serviceManagementReference",
	"servicePrincipalLockConfiguration", "spa", "tokenEncryptionKeyId", "uniqueName",
	"verifiedPublisher", "web",
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
// are lower-cased.
func (a *Application) Normalize() {
	a.ID = lowerGUID(a.ID)
	a.AppID = lowerGUID(a.AppID)
	if a.SignInAudience == "" {
		a.SignInAudience = AudienceMyOrg
	}
	a.SignInAudience = canonical(a.SignInAudience, AudienceMyOrg, AudienceMultipleOrgs, AudienceOrgsAndPersonalAccount, AudiencePersonalAccount)
}

// Validate implements Resource.
func (a *Application) Validate() error {
	return firstError(
		checkID("id", a.ID),
		checkID("appId", a.AppID),
		checkDisplayName("displayName", a.DisplayName),
		checkText("description", a.Description, maxDescription),
		checkEnum("signInAudience", a.SignInAudience, AudienceMyOrg, AudienceMultipleOrgs, AudienceOrgsAndPersonalAccount, AudiencePersonalAccount),
		checkStrings("identifierUris", a.IdentifierURIs, checkIdentifierURI),
		checkStrings("tags", a.Tags, textUpTo(maxTag)),
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
