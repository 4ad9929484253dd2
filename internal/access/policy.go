package access

import (
	"encoding/json"
	"strings"
	"time"
)

// Policy is a conditional access policy in the shape of Graph's
// conditionalAccessPolicy (v1.0, plus the beta properties current tenant
// exports carry). It marshals back to the same JSON; properties Verity
// does not evaluate are kept verbatim (json.RawMessage) so nothing is lost
// on a round trip. A Policy is plain data: ParsePolicy reads one, Validate
// checks it, Compile turns a set into an Engine.
type Policy struct {
	ID               string     `json:"id,omitempty"`
	TemplateID       string     `json:"templateId,omitempty"`
	DisplayName      string     `json:"displayName"`
	Description      string     `json:"description,omitempty"` // "not used" per Graph
	State            string     `json:"state"`
	CreatedDateTime  *time.Time `json:"createdDateTime,omitempty"`
	ModifiedDateTime *time.Time `json:"modifiedDateTime,omitempty"`
	DeletedDateTime  *time.Time `json:"deletedDateTime,omitempty"` // beta exports
	// PartialEnablementStrategy is a beta property; Verity keeps it and
	// notes it when set.
	PartialEnablementStrategy json.RawMessage `json:"partialEnablementStrategy,omitempty"`

	Conditions      Conditions       `json:"conditions"`
	GrantControls   *GrantControls   `json:"grantControls"`
	SessionControls *SessionControls `json:"sessionControls"`
}

// Conditions is Graph's conditionalAccessConditionSet: every configured
// condition must hold for the policy to apply.
type Conditions struct {
	Applications       *Applications       `json:"applications"`
	Users              *Users              `json:"users"`
	ClientApplications *ClientApplications `json:"clientApplications,omitempty"`
	// ClientAppTypes lists browser, mobileAppsAndDesktopClients,
	// exchangeActiveSync, easSupported, other or all; empty means all.
	ClientAppTypes             []string    `json:"clientAppTypes,omitempty"`
	Platforms                  *Platforms  `json:"platforms,omitempty"`
	Locations                  *Locations  `json:"locations,omitempty"`
	Devices                    *Devices    `json:"devices,omitempty"`
	SignInRiskLevels           []string    `json:"signInRiskLevels,omitempty"`
	UserRiskLevels             []string    `json:"userRiskLevels,omitempty"`
	ServicePrincipalRiskLevels []string    `json:"servicePrincipalRiskLevels,omitempty"`
	InsiderRiskLevels          *string     `json:"insiderRiskLevels,omitempty"` // beta flags: "minor,moderate,elevated"
	AuthenticationFlows        *AuthFlows  `json:"authenticationFlows,omitempty"`
	AgentIDRiskLevels          *string     `json:"agentIdRiskLevels,omitempty"` // beta flags
	Times                      RawProperty `json:"times,omitempty"`             // deprecated
	DeviceStates               RawProperty `json:"deviceStates,omitempty"`      // deprecated
	Clients                    RawProperty `json:"clients,omitempty"`           // beta
	Agents                     RawProperty `json:"agents,omitempty"`            // beta, agent identities
	AgentContext               RawProperty `json:"agentContext,omitempty"`      // beta, agent identities
}

// RawProperty is a property Verity keeps verbatim but does not evaluate.
// JSON null and absence both read as unset.
type RawProperty = json.RawMessage

// isSet reports whether a verbatim property holds a value other than null.
// An empty array or object is unset too.
func isSet(r RawProperty) bool {
	t := strings.TrimSpace(string(r))
	return t != "" && t != "null" && strings.Trim(t, "[] \t\r\n") != "" && strings.Trim(t, "{} \t\r\n") != ""
}

// Users is Graph's conditionalAccessUsers.
type Users struct {
	// IncludeUsers holds user ids, All, None or GuestsOrExternalUsers.
	IncludeUsers []string `json:"includeUsers,omitempty"`
	// ExcludeUsers holds user ids or GuestsOrExternalUsers.
	ExcludeUsers  []string `json:"excludeUsers,omitempty"`
	IncludeGroups []string `json:"includeGroups,omitempty"`
	ExcludeGroups []string `json:"excludeGroups,omitempty"`
	// IncludeRoles and ExcludeRoles hold directory role template ids.
	IncludeRoles                 []string       `json:"includeRoles,omitempty"`
	ExcludeRoles                 []string       `json:"excludeRoles,omitempty"`
	IncludeGuestsOrExternalUsers *ExternalUsers `json:"includeGuestsOrExternalUsers,omitempty"`
	ExcludeGuestsOrExternalUsers *ExternalUsers `json:"excludeGuestsOrExternalUsers,omitempty"`
}

// ExternalUsers is Graph's conditionalAccessGuestsOrExternalUsers.
type ExternalUsers struct {
	// GuestOrExternalUserTypes is a comma-joined set of internalGuest,
	// b2bCollaborationGuest, b2bCollaborationMember, b2bDirectConnectUser,
	// otherExternalUser, serviceProvider (or "none").
	GuestOrExternalUserTypes string           `json:"guestOrExternalUserTypes"`
	ExternalTenants          *ExternalTenants `json:"externalTenants,omitempty"`
}

// ExternalTenants is Graph's conditionalAccessExternalTenants: all tenants
// or an enumerated list of tenant ids.
type ExternalTenants struct {
	ODataType      string   `json:"@odata.type,omitempty"`
	MembershipKind string   `json:"membershipKind"` // all, enumerated
	Members        []string `json:"members,omitempty"`
}

// Applications is Graph's conditionalAccessApplications: what the sign-in
// targets. A policy targets applications, user actions or authentication
// contexts.
type Applications struct {
	// IncludeApplications holds app ids, All, None, Office365 or
	// MicrosoftAdminPortals; ExcludeApplications the same without All and
	// None.
	IncludeApplications []string `json:"includeApplications,omitempty"`
	ExcludeApplications []string `json:"excludeApplications,omitempty"`
	// IncludeUserActions holds urn:user:registersecurityinfo or
	// urn:user:registerdevice.
	IncludeUserActions []string `json:"includeUserActions,omitempty"`
	// IncludeAuthenticationContextClassReferences holds c1 to c99.
	IncludeAuthenticationContextClassReferences []string    `json:"includeAuthenticationContextClassReferences,omitempty"`
	ApplicationFilter                           *Filter     `json:"applicationFilter,omitempty"`
	NetworkAccess                               RawProperty `json:"networkAccess,omitempty"`           // beta, Global Secure Access
	GlobalSecureAccess                          RawProperty `json:"globalSecureAccess,omitempty"`      // beta, Global Secure Access
	IncludeProtectionLevels                     RawProperty `json:"includeProtectionLevels,omitempty"` // old beta
}

// ClientApplications is Graph's conditionalAccessClientApplications:
// workload identities (service principals) the policy covers.
type ClientApplications struct {
	IncludeServicePrincipals []string `json:"includeServicePrincipals,omitempty"`
	ExcludeServicePrincipals []string `json:"excludeServicePrincipals,omitempty"`
	ServicePrincipalFilter   *Filter  `json:"servicePrincipalFilter,omitempty"`
	// Agent identities (beta); Verity has none.
	IncludeAgentIDServicePrincipals []string `json:"includeAgentIdServicePrincipals,omitempty"`
	ExcludeAgentIDServicePrincipals []string `json:"excludeAgentIdServicePrincipals,omitempty"`
	AgentIDServicePrincipalFilter   *Filter  `json:"agentIdServicePrincipalFilter,omitempty"`
}

// Filter is Graph's conditionalAccessFilter.
type Filter struct {
	Mode string `json:"mode"` // include, exclude
	Rule string `json:"rule"`
}

// Platforms is Graph's conditionalAccessPlatforms.
type Platforms struct {
	IncludePlatforms []string `json:"includePlatforms,omitempty"`
	ExcludePlatforms []string `json:"excludePlatforms,omitempty"`
}

// Locations is Graph's conditionalAccessLocations.
type Locations struct {
	// IncludeLocations holds named location ids, All or AllTrusted;
	// ExcludeLocations ids or AllTrusted.
	IncludeLocations []string `json:"includeLocations,omitempty"`
	ExcludeLocations []string `json:"excludeLocations,omitempty"`
}

// Devices is Graph's conditionalAccessDevices. Only the device filter is
// current; the device-state lists are deprecated.
type Devices struct {
	DeviceFilter        *Filter  `json:"deviceFilter,omitempty"`
	IncludeDevices      []string `json:"includeDevices,omitempty"`
	ExcludeDevices      []string `json:"excludeDevices,omitempty"`
	IncludeDeviceStates []string `json:"includeDeviceStates,omitempty"`
	ExcludeDeviceStates []string `json:"excludeDeviceStates,omitempty"`
}

// AuthFlows is Graph's (beta) conditionalAccessAuthenticationFlows.
type AuthFlows struct {
	// TransferMethods is a comma-joined set of deviceCodeFlow and
	// authenticationTransfer.
	TransferMethods string `json:"transferMethods"`
}

// GrantControls is Graph's conditionalAccessGrantControls.
type GrantControls struct {
	Operator string `json:"operator,omitempty"` // AND, OR
	// BuiltInControls holds block, mfa, compliantDevice,
	// domainJoinedDevice, approvedApplication, compliantApplication,
	// passwordChange (and verifiedID in templates).
	BuiltInControls             []string                `json:"builtInControls,omitempty"`
	CustomAuthenticationFactors []string                `json:"customAuthenticationFactors,omitempty"`
	TermsOfUse                  []string                `json:"termsOfUse,omitempty"`
	AuthenticationStrength      *AuthenticationStrength `json:"authenticationStrength,omitempty"`
}

// AuthenticationStrength is the expanded authenticationStrengthPolicy a
// grant can require. A reference may carry only the id (a built-in
// strength); an export carries the allowed method combinations too.
type AuthenticationStrength struct {
	ID                        string      `json:"id"`
	CreatedDateTime           *time.Time  `json:"createdDateTime,omitempty"`
	ModifiedDateTime          *time.Time  `json:"modifiedDateTime,omitempty"`
	DisplayName               string      `json:"displayName,omitempty"`
	Description               string      `json:"description,omitempty"`
	PolicyType                string      `json:"policyType,omitempty"`            // builtIn, custom
	RequirementsSatisfied     string      `json:"requirementsSatisfied,omitempty"` // none, mfa
	AllowedCombinations       []string    `json:"allowedCombinations,omitempty"`
	CombinationConfigurations RawProperty `json:"combinationConfigurations,omitempty"`
}

// SessionControls is Graph's conditionalAccessSessionControls.
type SessionControls struct {
	ApplicationEnforcedRestrictions    *Toggle                     `json:"applicationEnforcedRestrictions,omitempty"`
	CloudAppSecurity                   *CloudAppSecurity           `json:"cloudAppSecurity,omitempty"`
	SignInFrequency                    *SignInFrequency            `json:"signInFrequency,omitempty"`
	PersistentBrowser                  *PersistentBrowser          `json:"persistentBrowser,omitempty"`
	ContinuousAccessEvaluation         *ContinuousAccessEvaluation `json:"continuousAccessEvaluation,omitempty"`
	DisableResilienceDefaults          *bool                       `json:"disableResilienceDefaults,omitempty"`
	SecureSignInSession                *Toggle                     `json:"secureSignInSession,omitempty"` // token protection, beta
	GlobalSecureAccessFilteringProfile RawProperty                 `json:"globalSecureAccessFilteringProfile,omitempty"`
	NetworkAccessSecurity              RawProperty                 `json:"networkAccessSecurity,omitempty"`
	BlockSensitiveActions              RawProperty                 `json:"blockSensitiveActions,omitempty"`
}

// Toggle is a session control that is only switched on or off.
type Toggle struct {
	IsEnabled bool `json:"isEnabled"`
}

// CloudAppSecurity is Graph's cloudAppSecuritySessionControl.
type CloudAppSecurity struct {
	IsEnabled            bool   `json:"isEnabled"`
	CloudAppSecurityType string `json:"cloudAppSecurityType,omitempty"` // mcasConfigured, monitorOnly, blockDownloads
}

// SignInFrequency is Graph's signInFrequencySessionControl.
type SignInFrequency struct {
	IsEnabled bool   `json:"isEnabled"`
	Type      string `json:"type,omitempty"`  // days, hours (time-based only)
	Value     int32  `json:"value,omitempty"` // time-based only
	// AuthenticationType is primaryAndSecondaryAuthentication (default) or
	// secondaryAuthentication.
	AuthenticationType string `json:"authenticationType,omitempty"`
	// FrequencyInterval is timeBased (default) or everyTime.
	FrequencyInterval string `json:"frequencyInterval,omitempty"`
}

// PersistentBrowser is Graph's persistentBrowserSessionControl.
type PersistentBrowser struct {
	IsEnabled bool   `json:"isEnabled"`
	Mode      string `json:"mode,omitempty"` // always, never
}

// ContinuousAccessEvaluation is Graph's (beta)
// continuousAccessEvaluationSessionControl.
type ContinuousAccessEvaluation struct {
	Mode string `json:"mode"` // strictEnforcement, disabled, strictLocation
}

// Label names the policy in messages: its display name, else its id.
func (p *Policy) Label() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.ID
}
