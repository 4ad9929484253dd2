package access

import (
	"math/bits"
	"strings"
)

// Policy states, as Graph spells them.
const (
	StateEnabled    = "enabled"
	StateDisabled   = "disabled"
	StateReportOnly = "enabledForReportingButNotEnforced"
)

// Special values of users, applications and locations conditions.
const (
	All                   = "All"
	None                  = "None"
	GuestsOrExternalUsers = "GuestsOrExternalUsers"
	Office365             = "Office365"
	MicrosoftAdminPortals = "MicrosoftAdminPortals"
	AllTrusted            = "AllTrusted"
	// ServicePrincipalsInMyTenant selects every single-tenant service
	// principal of the tenant (clientApplications.includeServicePrincipals).
	ServicePrincipalsInMyTenant = "ServicePrincipalsInMyTenant"
	// MFATrustedIPsLocation is the id Graph's documentation puts in
	// excludeLocations next to named locations; Verity reads it as the
	// legacy "MFA trusted IPs" (CompileOptions.MFATrustedIPs), which
	// AllTrusted includes too. The docs do not say so; it is our reading.
	MFATrustedIPsLocation = "00000000-0000-0000-0000-000000000000"
)

// User actions in includeUserActions.
const (
	ActionRegisterSecurityInfo = "urn:user:registersecurityinfo"
	ActionRegisterDevice       = "urn:user:registerdevice"
	ActionAccountRecovery      = "urn:user:accountrecovery" // preview; Verity has no such flow
)

// enum is a small closed set of Graph string values, indexed by a Go
// constant; index 0 is the zero value and may have no name.
type enum []string

func (e enum) name(i uint8) string {
	if int(i) < len(e) {
		return e[i]
	}
	return ""
}

// parse finds s (exact case) among the names.
func (e enum) parse(s string) (uint8, bool) {
	for i, n := range e {
		if n != "" && n == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// ClientApp is the client application type of a sign-in.
type ClientApp uint8

// Client app types. ClientAppNotGiven means the request does not say
// (Graph's evaluate default "all"): a policy that restricts client apps
// cannot be evaluated and does not apply.
const (
	ClientAppNotGiven ClientApp = iota
	ClientAppBrowser
	ClientAppMobileAndDesktop
	ClientAppExchangeActiveSync
	ClientAppOther
	numClientApps
)

var clientAppNames = enum{"", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"}

// String returns the Graph name of the value.
func (c ClientApp) String() string { return clientAppNames.name(uint8(c)) }

// Legacy reports whether the client speaks legacy authentication, which
// can neither do MFA nor pass device state.
func (c ClientApp) Legacy() bool { return c == ClientAppExchangeActiveSync || c == ClientAppOther }

// Platform is the device platform of a sign-in, from its user agent.
type Platform uint8

// Device platforms. PlatformNotGiven means the request does not say
// (Graph's evaluate default "all"); PlatformUnknown is a sign-in whose
// platform could not be recognised, which only "all" includes.
const (
	PlatformNotGiven Platform = iota
	PlatformAndroid
	PlatformIOS
	PlatformWindows
	PlatformWindowsPhone
	PlatformMacOS
	PlatformLinux
	PlatformUnknown
	numPlatforms
)

var platformNames = enum{"", "android", "iOS", "windows", "windowsPhone", "macOS", "linux", "unknown"}

// String returns the Graph name of the value.
func (p Platform) String() string { return platformNames.name(uint8(p)) }

// RiskLevel is a sign-in, user or service principal risk level. The zero
// value is none (Graph's evaluate default).
type RiskLevel uint8

// Risk levels.
const (
	RiskNone RiskLevel = iota
	RiskLow
	RiskMedium
	RiskHigh
	RiskHidden
	numRiskLevels
)

var riskNames = enum{"none", "low", "medium", "high", "hidden"}

// String returns the Graph name of the value.
func (r RiskLevel) String() string { return riskNames.name(uint8(r)) }

// InsiderRisk is the insider risk level of a user (Microsoft Purview
// Adaptive Protection). Verity has no source for it; a caller may supply it.
type InsiderRisk uint8

// Insider risk levels; the zero value is none.
const (
	InsiderRiskNone InsiderRisk = iota
	InsiderRiskMinor
	InsiderRiskModerate
	InsiderRiskElevated
	numInsiderRisks
)

var insiderRiskNames = enum{"none", "minor", "moderate", "elevated"}

// String returns the Graph name of the value.
func (r InsiderRisk) String() string { return insiderRiskNames.name(uint8(r)) }

// TransferMethod is the authentication flow of a sign-in.
type TransferMethod uint8

// Authentication flows; the zero value is none (an ordinary sign-in).
const (
	TransferNone TransferMethod = iota
	TransferDeviceCodeFlow
	TransferAuthenticationTransfer
	numTransferMethods
)

var transferNames = enum{"none", "deviceCodeFlow", "authenticationTransfer"}

// String returns the Graph name of the value.
func (t TransferMethod) String() string { return transferNames.name(uint8(t)) }

// IdentityKind tells who signs in.
type IdentityKind uint8

// Identity kinds. Conditional access covers users and single-tenant
// service principals; managed identities are never covered.
const (
	IdentityUser IdentityKind = iota
	IdentityServicePrincipal
	IdentityManagedIdentity
)

// UserAction is a user action the sign-in performs instead of accessing
// an application.
type UserAction uint8

// User actions, named as Graph's evaluate request names them.
const (
	UserActionNone UserAction = iota
	UserActionRegisterSecurityInformation
	UserActionRegisterOrJoinDevices
)

var userActionNames = enum{"", "registerSecurityInformation", "registerOrJoinDevices"}

// userActionURNs are the same actions as policies name them.
var userActionURNs = enum{"", ActionRegisterSecurityInfo, ActionRegisterDevice}

// String returns the Graph name of the value.
func (a UserAction) String() string { return userActionNames.name(uint8(a)) }

// GuestType is a set of guest or external user kinds (Graph's
// conditionalAccessGuestOrExternalUserTypes flags).
type GuestType uint8

// Guest and external user kinds.
const (
	GuestInternal GuestType = 1 << iota
	GuestB2BCollaborationGuest
	GuestB2BCollaborationMember
	GuestB2BDirectConnectUser
	GuestOtherExternalUser
	GuestServiceProvider
)

var guestTypeNames = []string{"internalGuest", "b2bCollaborationGuest", "b2bCollaborationMember",
	"b2bDirectConnectUser", "otherExternalUser", "serviceProvider"}

// AnyGuest is every guest or external user kind.
const AnyGuest = GuestInternal | GuestB2BCollaborationGuest | GuestB2BCollaborationMember |
	GuestB2BDirectConnectUser | GuestOtherExternalUser | GuestServiceProvider

// String writes the set as Graph does: comma-joined names, "none" if empty.
func (g GuestType) String() string { return flagString(uint64(g), guestTypeNames, "none") }

// parseGuestTypes reads a comma-joined flags value; "none" alone is the
// empty set.
func parseGuestTypes(s string) (GuestType, string, bool) {
	if strings.TrimSpace(s) == "none" {
		return 0, "", true
	}
	f, bad, ok := parseFlags(s, guestTypeNames)
	return GuestType(f), bad, ok
}

// parseFlags reads a Graph flags enum ("a,b,c"). It reports the first
// unknown member.
func parseFlags(s string, names []string) (uint64, string, bool) {
	var f uint64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		i := indexOf(names, part)
		if i < 0 {
			return 0, part, false
		}
		f |= 1 << i
	}
	return f, "", true
}

func indexOf(names []string, s string) int {
	for i, n := range names {
		if n == s {
			return i
		}
	}
	return -1
}

// flagString writes set bits as Graph writes flags: comma-joined names.
func flagString(f uint64, names []string, empty string) string {
	if f == 0 {
		return empty
	}
	var b strings.Builder
	for f != 0 {
		i := bits.TrailingZeros64(f)
		f &^= 1 << i
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if i < len(names) {
			b.WriteString(names[i])
		}
	}
	return b.String()
}

// Control is a set of grant requirements (and the session requirements
// Verity cannot apply). Bit order is the documented prompt order: "MFA,
// compliant device, hybrid joined device, approved client app, app
// protection policy, password change, terms of use, custom controls";
// Verity puts an authentication strength next to MFA and the unsupported
// session controls last.
type Control uint32

// Controls.
const (
	ControlMFA Control = 1 << iota
	ControlAuthenticationStrength
	ControlCompliantDevice
	ControlDomainJoinedDevice
	ControlApprovedApplication
	ControlCompliantApplication
	ControlPasswordChange
	ControlTermsOfUse
	ControlCustomAuthenticationFactors
	ControlVerifiedID
	// Session controls Verity cannot apply: a policy that demands them
	// cannot be satisfied (see doc.go).
	ControlApplicationEnforcedRestrictions
	ControlCloudAppSecurity
	ControlSecureSignInSession
	ControlGlobalSecureAccessFilteringProfile
	ControlNetworkAccessSecurity
	ControlBlockSensitiveActions
	numControls = iota
)

var controlNames = []string{"mfa", "authenticationStrength", "compliantDevice", "domainJoinedDevice",
	"approvedApplication", "compliantApplication", "passwordChange", "termsOfUse",
	"customAuthenticationFactors", "verifiedID", "applicationEnforcedRestrictions", "cloudAppSecurity",
	"secureSignInSession", "globalSecureAccessFilteringProfile", "networkAccessSecurity", "blockSensitiveActions"}

// unsupportedControls can never be satisfied in Verity, whatever a request
// claims: Verity has no app protection (Intune MAM), terms of use, custom
// controls, Verified ID, Defender for Cloud Apps, token protection or
// Global Secure Access.
const unsupportedControls = ControlApprovedApplication | ControlCompliantApplication | ControlTermsOfUse |
	ControlCustomAuthenticationFactors | ControlVerifiedID | ControlApplicationEnforcedRestrictions |
	ControlCloudAppSecurity | ControlSecureSignInSession | ControlGlobalSecureAccessFilteringProfile |
	ControlNetworkAccessSecurity | ControlBlockSensitiveActions

// interactiveControls are those a user can satisfy by acting during
// sign-in; the others depend on the device, the client or the platform.
// Report-only results use the difference ("User action required" versus
// "Failure").
const interactiveControls = ControlMFA | ControlAuthenticationStrength | ControlPasswordChange |
	ControlTermsOfUse | ControlCustomAuthenticationFactors | ControlVerifiedID

// Names lists the controls in prompt order.
func (c Control) Names() []string {
	var out []string
	for f := uint64(c); f != 0; f &= f - 1 {
		out = append(out, controlNames[bits.TrailingZeros64(f)])
	}
	return out
}

// String writes the set as comma-joined Graph names, in prompt order.
func (c Control) String() string { return flagString(uint64(c), controlNames, "") }

// ParseControl finds a control by its Graph name.
func ParseControl(s string) (Control, bool) {
	i := indexOf(controlNames, s)
	if i < 0 {
		return 0, false
	}
	return 1 << i, true
}

// Reason is a set of reasons why a policy does not apply, as Graph's What
// If API names them (whatIfAnalysisReasons). Evaluate sets exactly one:
// the first condition, in the order below, that is not satisfied.
type Reason uint32

// Reasons, in the order Evaluate checks the conditions (the order of the
// Entra admin center: users, target resources, network, then conditions).
const (
	ReasonUsers Reason = 1 << iota
	ReasonWorkloadIdentities
	ReasonApplication
	ReasonUserActions
	ReasonAuthenticationContext
	ReasonLocation
	ReasonUserRisk
	ReasonSignInRisk
	// ReasonServicePrincipalRisk has no Graph v1.0 name; Verity writes
	// "servicePrincipalRisk".
	ReasonServicePrincipalRisk
	ReasonInsiderRisk
	ReasonDevicePlatform
	ReasonClientApps
	ReasonDevices
	ReasonAuthenticationFlow
	ReasonTime
	ReasonEmptyPolicy
	ReasonNotEnoughInformation
	ReasonInvalidCondition
	ReasonInvalidPolicy
	ReasonPolicyNotEnabled
)

var reasonNames = []string{"users", "workloadIdentities", "application", "userActions",
	"authenticationContext", "location", "userRisk", "signInRisk", "servicePrincipalRisk", "insiderRisk",
	"devicePlatform", "clientApps", "devices", "authenticationFlow", "time", "emptyPolicy",
	"notEnoughInformation", "invalidCondition", "invalidPolicy", "policyNotEnabled"}

// String writes the reasons as Graph does: "notSet" for none, otherwise
// comma-joined names.
func (r Reason) String() string { return flagString(uint64(r), reasonNames, "notSet") }

// Names lists the reasons.
func (r Reason) Names() []string {
	var out []string
	for f := uint64(r); f != 0; f &= f - 1 {
		out = append(out, reasonNames[bits.TrailingZeros64(f)])
	}
	return out
}

// AuthMethod is a set of authentication methods used in a sign-in
// (Graph's authenticationMethodModes flags).
type AuthMethod uint32

// Authentication methods.
const (
	MethodPassword AuthMethod = 1 << iota
	MethodVoice
	MethodHardwareOath
	MethodSoftwareOath
	MethodSMS
	MethodFIDO2
	MethodWindowsHelloForBusiness
	MethodMicrosoftAuthenticatorPush
	MethodDeviceBasedPush
	MethodTemporaryAccessPassOneTime
	MethodTemporaryAccessPassMultiUse
	MethodEmail
	MethodX509CertificateSingleFactor
	MethodX509CertificateMultiFactor
	MethodFederatedSingleFactor
	MethodFederatedMultiFactor
	MethodQRCodePin
)

var methodNames = []string{"password", "voice", "hardwareOath", "softwareOath", "sms", "fido2",
	"windowsHelloForBusiness", "microsoftAuthenticatorPush", "deviceBasedPush",
	"temporaryAccessPassOneTime", "temporaryAccessPassMultiUse", "email",
	"x509CertificateSingleFactor", "x509CertificateMultiFactor", "federatedSingleFactor",
	"federatedMultiFactor", "qrCodePin"}

// String writes the set as Graph does: comma-joined names, "none" if empty.
func (m AuthMethod) String() string { return flagString(uint64(m), methodNames, "none") }

// ParseAuthMethods reads one combination ("password,sms").
func ParseAuthMethods(s string) (AuthMethod, error) {
	f, bad, ok := parseFlags(s, methodNames)
	if !ok {
		return 0, errUnknown("authentication method", bad, methodNames)
	}
	return AuthMethod(f), nil
}

// Outcome is the overall result of a sign-in's conditional access.
type Outcome uint8

// Outcomes, from the least to the most restrictive but one: block beats
// everything, then interrupt (the user must act), then grant.
const (
	OutcomeNotApplied Outcome = iota // no enforced policy applies
	OutcomeGrant                     // every applying enforced policy is satisfied
	OutcomeInterrupt                 // the user must satisfy unmet controls or sign in again
	OutcomeBlock                     // an applying enforced policy blocks, or its controls cannot be met
)

var outcomeNames = enum{"notApplied", "grant", "interrupt", "block"}

// String returns the Graph name of the value.
func (o Outcome) String() string { return outcomeNames.name(uint8(o)) }

// Status is one policy's result, with the values of Graph's
// appliedConditionalAccessPolicyResult that sign-in logs use.
type Status uint8

// Statuses.
const (
	StatusNotApplied Status = iota
	StatusSuccess
	StatusFailure
	StatusReportOnlyNotApplied
	StatusReportOnlySuccess
	StatusReportOnlyFailure
	StatusReportOnlyInterrupted
)

var statusNames = enum{"notApplied", "success", "failure", "reportOnlyNotApplied", "reportOnlySuccess",
	"reportOnlyFailure", "reportOnlyInterrupted"}

// String returns the Graph name of the value.
func (s Status) String() string { return statusNames.name(uint8(s)) }
