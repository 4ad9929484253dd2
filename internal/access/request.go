package access

import (
	"net/netip"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/strictjson"
)

// Request is the signals of one sign-in, as a policy enforcement point (or
// Graph's What If request) knows them. Ids are lower-case GUIDs, as the
// directory stores them.
//
// Zero values mean "not given" where Graph's evaluate has a default that
// cannot be evaluated: no application, user action or authentication
// context; ClientAppNotGiven; PlatformNotGiven; no IP and no country; a nil
// Device. A policy condition that needs a signal the request does not give
// is not satisfied, so the policy does not apply, as the What If API
// documents. Enforcement points always give them: an unrecognised platform
// is PlatformUnknown, an unknown device is &devicefilter.Device{} (not
// registered). Risk levels, insider risk and the authentication flow
// default to none, as in Graph.
type Request struct {
	// Who signs in.
	Identity           IdentityKind
	UserID             string
	ServicePrincipalID string
	// GuestType is the kind of guest or external user the user is (0 for
	// a member); ExternalTenantID is the user's home tenant, matched
	// against enumerated external tenants.
	GuestType        GuestType
	ExternalTenantID string
	// Groups are the user's transitive group ids (nested memberships
	// included); Roles the template ids of the user's directory roles in
	// force at Now. Resolve fills both; order does not matter.
	Groups []string
	Roles  []string

	// What the sign-in targets: applications (appIds; the policy applies
	// if it covers any of them), a user action, or an authentication
	// context (c1 to c99).
	Applications          []string
	UserAction            UserAction
	AuthenticationContext string

	// Conditions.
	ClientApp ClientApp
	Platform  Platform
	// IP is the client's public (egress) address; never a value from
	// X-Forwarded-For, which nothing vouches for.
	IP netip.Addr
	// Country is the ISO 3166-1 alpha-2 code (upper case) of IP, resolved
	// by the caller (from an MMDB); "" with a valid IP means the address
	// maps to no country.
	Country              string
	SignInRisk           RiskLevel
	UserRisk             RiskLevel
	ServicePrincipalRisk RiskLevel
	InsiderRisk          InsiderRisk
	AuthenticationFlow   TransferMethod
	// Device is the device the sign-in comes from; nil when not given.
	Device *devicefilter.Device

	// Authentication so far: the methods used and the controls already
	// satisfied (e.g. mfa from an earlier step-up, passwordChange after a
	// secure password change). Claims of controls Verity does not support
	// are ignored.
	Methods   AuthMethod
	Satisfied Control
	// Now is the time of the request; SignInTime and MFATime are when the
	// user last signed in with the first factor and with a second factor.
	// They decide sign-in frequency: a zero Now skips the check, a zero
	// SignInTime means the user is signing in now, a zero MFATime falls
	// back to SignInTime. Resolve takes the directory roles in force at
	// Now, the current time when Now is zero.
	Now        time.Time
	SignInTime time.Time
	MFATime    time.Time

	// AppliedPoliciesOnly asks What If output to list only the policies
	// that apply.
	AppliedPoliciesOnly bool
}

// Resolve fills the user's groups, roles (those in force at r.Now when p
// knows time-bound assignments: PrincipalLookupAt) and guest type from p.
// It does not allocate: the slices are p's, and must not be modified.
func (r *Request) Resolve(p Principals) {
	if r.Identity != IdentityUser || r.UserID == "" {
		return
	}
	var guest bool
	switch l := p.(type) {
	case PrincipalLookupAt:
		r.Groups, r.Roles, guest = l.PrincipalAt(r.UserID, r.Now)
	case PrincipalLookup:
		r.Groups, r.Roles, guest = l.Principal(r.UserID)
	default:
		r.Groups, r.Roles, guest = p.TransitiveMemberOf(r.UserID), p.DirectoryRoles(r.UserID), p.IsGuest(r.UserID)
	}
	if r.GuestType == 0 && guest {
		// Verity's guests are invited users of another organisation:
		// Entra's b2bCollaborationGuest.
		r.GuestType = GuestB2BCollaborationGuest
	}
}

// evaluateJSON is the body of Graph's POST /identity/conditionalAccess/evaluate
// plus Verity's satisfiedControls and authenticationMethods.
type evaluateJSON struct {
	SignInIdentity *struct {
		ODataType          string `json:"@odata.type"`
		UserID             string `json:"userId,omitempty"`
		ExternalTenantID   string `json:"externalTenantId,omitempty"`
		ExternalUserType   string `json:"externalUserType,omitempty"`
		ServicePrincipalID string `json:"servicePrincipalId,omitempty"`
	} `json:"signInIdentity"`
	SignInContext *struct {
		ODataType                  string   `json:"@odata.type"`
		IncludeApplications        []string `json:"includeApplications,omitempty"`
		UserAction                 string   `json:"userAction,omitempty"`
		AuthenticationContextValue string   `json:"authenticationContextValue,omitempty"`
	} `json:"signInContext"`
	SignInConditions *struct {
		DevicePlatform            string `json:"devicePlatform,omitempty"`
		ClientAppType             string `json:"clientAppType,omitempty"`
		SignInRiskLevel           string `json:"signInRiskLevel,omitempty"`
		UserRiskLevel             string `json:"userRiskLevel,omitempty"`
		ServicePrincipalRiskLevel string `json:"servicePrincipalRiskLevel,omitempty"`
		InsiderRiskLevel          string `json:"insiderRiskLevel,omitempty"`
		Country                   string `json:"country,omitempty"`
		IPAddress                 string `json:"ipAddress,omitempty"`
		AuthenticationFlow        *struct {
			TransferMethod string `json:"transferMethod"`
		} `json:"authenticationFlow,omitempty"`
		DeviceInfo *deviceInfoJSON `json:"deviceInfo,omitempty"`
	} `json:"signInConditions"`
	AppliedPoliciesOnly   bool     `json:"appliedPoliciesOnly,omitempty"`
	SatisfiedControls     []string `json:"satisfiedControls,omitempty"`
	AuthenticationMethods []string `json:"authenticationMethods,omitempty"`
}

// deviceInfoJSON is Graph's deviceInfo (What If).
type deviceInfoJSON struct {
	DeviceID               string   `json:"deviceId,omitempty"`
	DisplayName            string   `json:"displayName,omitempty"`
	EnrollmentProfileName  string   `json:"enrollmentProfileName,omitempty"`
	IsCompliant            *bool    `json:"isCompliant,omitempty"`
	Manufacturer           string   `json:"manufacturer,omitempty"`
	MDMAppID               string   `json:"mdmAppId,omitempty"`
	Model                  string   `json:"model,omitempty"`
	OperatingSystem        string   `json:"operatingSystem,omitempty"`
	OperatingSystemVersion string   `json:"operatingSystemVersion,omitempty"`
	Ownership              string   `json:"ownership,omitempty"`
	PhysicalIDs            []string `json:"physicalIds,omitempty"`
	ProfileType            string   `json:"profileType,omitempty"`
	SystemLabels           []string `json:"systemLabels,omitempty"`
	TrustType              string   `json:"trustType,omitempty"`
	IsManaged              bool     `json:"isManaged,omitempty"` // Verity: Intune (MDM) managed
	ExtensionAttribute1    string   `json:"extensionAttribute1,omitempty"`
	ExtensionAttribute2    string   `json:"extensionAttribute2,omitempty"`
	ExtensionAttribute3    string   `json:"extensionAttribute3,omitempty"`
	ExtensionAttribute4    string   `json:"extensionAttribute4,omitempty"`
	ExtensionAttribute5    string   `json:"extensionAttribute5,omitempty"`
	ExtensionAttribute6    string   `json:"extensionAttribute6,omitempty"`
	ExtensionAttribute7    string   `json:"extensionAttribute7,omitempty"`
	ExtensionAttribute8    string   `json:"extensionAttribute8,omitempty"`
	ExtensionAttribute9    string   `json:"extensionAttribute9,omitempty"`
	ExtensionAttribute10   string   `json:"extensionAttribute10,omitempty"`
	ExtensionAttribute11   string   `json:"extensionAttribute11,omitempty"`
	ExtensionAttribute12   string   `json:"extensionAttribute12,omitempty"`
	ExtensionAttribute13   string   `json:"extensionAttribute13,omitempty"`
	ExtensionAttribute14   string   `json:"extensionAttribute14,omitempty"`
	ExtensionAttribute15   string   `json:"extensionAttribute15,omitempty"`
}

// device converts deviceInfo for the device filter. A deviceInfo with any
// property describes a registered device. The What If API writes trustType
// "EntraID" where filters say "AzureAD" (Entra joined).
func (d *deviceInfoJSON) device() *devicefilter.Device {
	trust := d.TrustType
	if strings.EqualFold(trust, "EntraID") {
		trust = "AzureAD"
	}
	return &devicefilter.Device{
		Registered: true, DeviceID: d.DeviceID, DisplayName: d.DisplayName, DeviceOwnership: d.Ownership,
		EnrollmentProfileName: d.EnrollmentProfileName, IsCompliant: d.IsCompliant, IsManaged: d.IsManaged,
		Manufacturer: d.Manufacturer, MDMAppID: d.MDMAppID, Model: d.Model, OperatingSystem: d.OperatingSystem,
		OperatingSystemVersion: d.OperatingSystemVersion, PhysicalIDs: d.PhysicalIDs, ProfileType: d.ProfileType,
		SystemLabels: d.SystemLabels, TrustType: trust,
		ExtensionAttribute1: d.ExtensionAttribute1, ExtensionAttribute2: d.ExtensionAttribute2,
		ExtensionAttribute3: d.ExtensionAttribute3, ExtensionAttribute4: d.ExtensionAttribute4,
		ExtensionAttribute5: d.ExtensionAttribute5, ExtensionAttribute6: d.ExtensionAttribute6,
		ExtensionAttribute7: d.ExtensionAttribute7, ExtensionAttribute8: d.ExtensionAttribute8,
		ExtensionAttribute9: d.ExtensionAttribute9, ExtensionAttribute10: d.ExtensionAttribute10,
		ExtensionAttribute11: d.ExtensionAttribute11, ExtensionAttribute12: d.ExtensionAttribute12,
		ExtensionAttribute13: d.ExtensionAttribute13, ExtensionAttribute14: d.ExtensionAttribute14,
		ExtensionAttribute15: d.ExtensionAttribute15,
	}
}

// OData types of the evaluate request's polymorphic parts.
const (
	odataUserSignIn             = "#microsoft.graph.userSignIn"
	odataServicePrincipalSignIn = "#microsoft.graph.servicePrincipalSignIn"
	odataApplicationContext     = "#microsoft.graph.applicationContext"
	odataUserActionContext      = "#microsoft.graph.userActionContext"
	odataAuthContext            = "#microsoft.graph.authContext"
)

// ParseEvaluateRequest reads the body of Graph's POST
// /identity/conditionalAccess/evaluate (signInIdentity, signInContext,
// signInConditions, appliedPoliciesOnly) plus Verity's optional
// "satisfiedControls" (control names, e.g. ["mfa"]) and
// "authenticationMethods" (method names or combinations, e.g.
// ["password", "microsoftAuthenticatorPush"]). Groups, roles and the guest
// type are not in the body: call Resolve. A country the body does not give
// is not looked up from the IP; the caller may set Request.Country.
func ParseEvaluateRequest(data []byte) (*Request, error) {
	var in evaluateJSON
	if err := strictjson.Unmarshal(data, &in); err != nil {
		return nil, err
	}
	r := &Request{AppliedPoliciesOnly: in.AppliedPoliciesOnly}
	if err := r.setIdentity(&in); err != nil {
		return nil, err
	}
	if err := r.setContext(&in); err != nil {
		return nil, err
	}
	if err := r.setConditions(&in); err != nil {
		return nil, err
	}
	for i, s := range in.SatisfiedControls {
		c, ok := ParseControl(s)
		if !ok {
			return nil, strictjson.Errorf(strictjson.Index("satisfiedControls", i), "%v", errUnknown("control", s, controlNames))
		}
		r.Satisfied |= c
	}
	for i, s := range in.AuthenticationMethods {
		m, err := ParseAuthMethods(s)
		if err != nil {
			return nil, strictjson.Errorf(strictjson.Index("authenticationMethods", i), "%v", err)
		}
		r.Methods |= m
	}
	return r, nil
}

func (r *Request) setIdentity(in *evaluateJSON) error {
	id := in.SignInIdentity
	if id == nil {
		return strictjson.Errorf("signInIdentity", "required")
	}
	switch id.ODataType {
	case odataUserSignIn:
		if id.ServicePrincipalID != "" {
			return strictjson.Errorf("signInIdentity.servicePrincipalId", "not a property of %s", odataUserSignIn)
		}
		if err := checkGUID("signInIdentity.userId", id.UserID); err != nil {
			return err
		}
		r.Identity, r.UserID = IdentityUser, strings.ToLower(id.UserID)
		if id.ExternalTenantID != "" {
			if err := checkGUID("signInIdentity.externalTenantId", id.ExternalTenantID); err != nil {
				return err
			}
			r.ExternalTenantID = strings.ToLower(id.ExternalTenantID)
		}
		if id.ExternalUserType != "" {
			t, bad, ok := parseGuestTypes(id.ExternalUserType)
			if !ok {
				return strictjson.Errorf("signInIdentity.externalUserType", "%v", errUnknown("value", bad, guestTypeNames))
			}
			r.GuestType = t
		}
	case odataServicePrincipalSignIn:
		if id.UserID != "" || id.ExternalTenantID != "" || id.ExternalUserType != "" {
			return strictjson.Errorf("signInIdentity", "%s has only servicePrincipalId", odataServicePrincipalSignIn)
		}
		if err := checkGUID("signInIdentity.servicePrincipalId", id.ServicePrincipalID); err != nil {
			return err
		}
		r.Identity, r.ServicePrincipalID = IdentityServicePrincipal, strings.ToLower(id.ServicePrincipalID)
	default:
		return strictjson.Errorf("signInIdentity.@odata.type", "%v", errUnknown("sign-in identity type", id.ODataType, []string{odataUserSignIn, odataServicePrincipalSignIn}))
	}
	return nil
}

func (r *Request) setContext(in *evaluateJSON) error {
	c := in.SignInContext
	if c == nil {
		return strictjson.Errorf("signInContext", "required")
	}
	only := func(want string, set ...bool) error {
		for _, s := range set {
			if s {
				return strictjson.Errorf("signInContext", "%s takes only %s", c.ODataType, want)
			}
		}
		return nil
	}
	switch c.ODataType {
	case odataApplicationContext:
		if err := only("includeApplications", c.UserAction != "", c.AuthenticationContextValue != ""); err != nil {
			return err
		}
		if len(c.IncludeApplications) == 0 {
			return strictjson.Errorf("signInContext.includeApplications", "required")
		}
		// App groups (Office365, MicrosoftAdminPortals) are not valid
		// here, as in Graph: "provide the App ID".
		if err := checkIDs("signInContext.includeApplications", c.IncludeApplications); err != nil {
			return err
		}
		r.Applications = lowerAll(c.IncludeApplications)
	case odataUserActionContext:
		if err := only("userAction", len(c.IncludeApplications) > 0, c.AuthenticationContextValue != ""); err != nil {
			return err
		}
		a, ok := userActionNames.parse(c.UserAction)
		if !ok {
			return strictjson.Errorf("signInContext.userAction", "%v", errUnknown("user action", c.UserAction, userActionNames[1:]))
		}
		r.UserAction = UserAction(a)
	case odataAuthContext:
		if err := only("authenticationContextValue", len(c.IncludeApplications) > 0, c.UserAction != ""); err != nil {
			return err
		}
		if err := checkAuthContext("signInContext.authenticationContextValue", c.AuthenticationContextValue); err != nil {
			return err
		}
		r.AuthenticationContext = c.AuthenticationContextValue
	default:
		return strictjson.Errorf("signInContext.@odata.type", "%v", errUnknown("sign-in context type", c.ODataType, []string{odataApplicationContext, odataUserActionContext, odataAuthContext}))
	}
	return nil
}

func (r *Request) setConditions(in *evaluateJSON) error {
	c := in.SignInConditions
	if c == nil {
		return strictjson.Errorf("signInConditions", "required")
	}
	const path = "signInConditions"
	var err error
	pick := func(field, s string, names enum, skip ...string) uint8 {
		if err != nil || s == "" {
			return 0
		}
		for _, k := range skip {
			if s == k {
				return 0
			}
		}
		v, ok := names.parse(s)
		if !ok {
			var allowed []string
			for _, n := range names {
				if n != "" {
					allowed = append(allowed, n)
				}
			}
			err = strictjson.Errorf(strictjson.Join(path, field), "%v", errUnknown("value", s, allowed))
		}
		return v
	}
	// "all" is Graph's default for platform and client app: not given.
	r.Platform = Platform(pick("devicePlatform", c.DevicePlatform, platformNames[:PlatformUnknown], "all"))
	clientApp := c.ClientAppType
	if clientApp == "easSupported" {
		clientApp = ClientAppExchangeActiveSync.String()
	}
	r.ClientApp = ClientApp(pick("clientAppType", clientApp, clientAppNames, "all"))
	r.SignInRisk = RiskLevel(pick("signInRiskLevel", c.SignInRiskLevel, riskNames))
	r.UserRisk = RiskLevel(pick("userRiskLevel", c.UserRiskLevel, riskNames))
	r.ServicePrincipalRisk = RiskLevel(pick("servicePrincipalRiskLevel", c.ServicePrincipalRiskLevel, riskNames))
	r.InsiderRisk = InsiderRisk(pick("insiderRiskLevel", c.InsiderRiskLevel, insiderRiskNames))
	if f := c.AuthenticationFlow; f != nil {
		r.AuthenticationFlow = TransferMethod(pick("authenticationFlow.transferMethod", f.TransferMethod, transferNames))
	}
	if err != nil {
		return err
	}
	if c.Country != "" {
		if !isCountryCode(c.Country) {
			return strictjson.Errorf(strictjson.Join(path, "country"), "must be an ISO 3166-1 alpha-2 code, not %q", c.Country)
		}
		r.Country = strings.ToUpper(c.Country)
	}
	if c.IPAddress != "" {
		ip, perr := netip.ParseAddr(c.IPAddress)
		if perr != nil || ip.Zone() != "" {
			return strictjson.Errorf(strictjson.Join(path, "ipAddress"), "must be an IPv4 or IPv6 address, not %q", c.IPAddress)
		}
		r.IP = ip.Unmap()
	}
	if c.DeviceInfo != nil {
		r.Device = c.DeviceInfo.device()
	}
	return nil
}

// isCountryCode accepts two ASCII letters, in any case.
func isCountryCode(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := range 2 {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
