package access

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/strictjson"
)

// Limits Entra documents or enforces.
const (
	maxDisplayName    = 256
	maxFilterRule     = 3072 // device filter rules
	maxAuthContext    = 99   // c1 .. c99
	maxSignInHours    = 23
	maxSignInDays     = 365
	agentUsersAll     = "AllAgentIdUsers"     // beta: every agent user
	agentResourcesAll = "AllAgentIdResources" // beta: every agent resource
)

// Values of enumerations Validate checks.
var (
	policyStates    = []string{StateEnabled, StateDisabled, StateReportOnly}
	clientAppValues = []string{"all", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync",
		"easSupported", "easUnsupported", "other"}
	platformValues        = []string{"all", "android", "iOS", "windows", "windowsPhone", "macOS", "linux"}
	riskValues            = []string{"low", "medium", "high", "hidden", "none"}
	spRiskValues          = []string{"low", "medium", "high", "none"}
	insiderRiskFlags      = []string{"minor", "moderate", "elevated"}
	agentRiskFlags        = []string{"low", "medium", "high"}
	transferMethodFlags   = []string{"deviceCodeFlow", "authenticationTransfer"}
	builtInControlValues  = []string{"block", "mfa", "compliantDevice", "domainJoinedDevice", "approvedApplication", "compliantApplication", "passwordChange", "verifiedID"}
	userActionValues      = []string{ActionRegisterSecurityInfo, ActionRegisterDevice, ActionAccountRecovery}
	filterModes           = []string{"include", "exclude"}
	operators             = []string{"AND", "OR"}
	signInFrequencyTypes  = []string{"days", "hours"}
	signInIntervals       = []string{"timeBased", "everyTime"}
	signInAuthTypes       = []string{"primaryAndSecondaryAuthentication", "secondaryAuthentication"}
	persistentModes       = []string{"always", "never"}
	caeModes              = []string{"strictEnforcement", "disabled", "strictLocation"}
	cloudAppSecurityTypes = []string{"mcasConfigured", "monitorOnly", "blockDownloads"}
	membershipKinds       = []string{"all", "enumerated"}
)

// Validate checks the policy against Graph's rules and the documented
// constraints Verity relies on: GUIDs where ids go, enumerations, special
// values in the right lists, the passwordChange, registerdevice, persistent
// browser and "disable CAE" restrictions. It returns the first problem as a
// *strictjson.FieldError naming its path. Properties Verity does not
// evaluate are checked only as far as their shape; they produce notes, not
// errors.
func (p *Policy) Validate() error {
	if err := firstError(
		optionalGUID("id", p.ID),
		optionalGUID("templateId", p.TemplateID),
		checkDisplayName(p.DisplayName),
		checkEnum("state", p.State, policyStates),
		p.Conditions.validate("conditions"),
		p.GrantControls.validate("grantControls"),
		p.SessionControls.validate("sessionControls"),
	); err != nil {
		return err
	}
	return p.validateCombinations() // needs the parts checked above

}

func checkDisplayName(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return strictjson.Errorf("displayName", "required")
	case len(s) > maxDisplayName:
		return strictjson.Errorf("displayName", "must be at most %d characters", maxDisplayName)
	}
	return nil
}

func (c *Conditions) validate(path string) error {
	if c.Applications == nil {
		return strictjson.Errorf(strictjson.Join(path, "applications"), "required")
	}
	if c.Users == nil && c.ClientApplications == nil {
		return strictjson.Errorf(strictjson.Join(path, "users"), "required (or clientApplications for workload identities)")
	}
	return firstError(
		c.Applications.validate(strictjson.Join(path, "applications")),
		c.Users.validate(strictjson.Join(path, "users")),
		c.ClientApplications.validate(strictjson.Join(path, "clientApplications")),
		eachEnum(strictjson.Join(path, "clientAppTypes"), c.ClientAppTypes, clientAppValues, "All"),
		c.Platforms.validate(strictjson.Join(path, "platforms")),
		c.Locations.validate(strictjson.Join(path, "locations")),
		c.Devices.validate(strictjson.Join(path, "devices")),
		eachEnum(strictjson.Join(path, "signInRiskLevels"), c.SignInRiskLevels, riskValues),
		eachEnum(strictjson.Join(path, "userRiskLevels"), c.UserRiskLevels, riskValues),
		eachEnum(strictjson.Join(path, "servicePrincipalRiskLevels"), c.ServicePrincipalRiskLevels, spRiskValues),
		checkFlags(strictjson.Join(path, "insiderRiskLevels"), c.InsiderRiskLevels, insiderRiskFlags),
		checkFlags(strictjson.Join(path, "agentIdRiskLevels"), c.AgentIDRiskLevels, agentRiskFlags),
		c.AuthenticationFlows.validate(strictjson.Join(path, "authenticationFlows")),
	)
}

func (u *Users) validate(path string) error {
	if u == nil {
		return nil
	}
	return firstError(
		checkIDs(strictjson.Join(path, "includeUsers"), u.IncludeUsers, All, None, GuestsOrExternalUsers, agentUsersAll),
		checkAlone(strictjson.Join(path, "includeUsers"), u.IncludeUsers, All),
		checkAlone(strictjson.Join(path, "includeUsers"), u.IncludeUsers, None),
		checkIDs(strictjson.Join(path, "excludeUsers"), u.ExcludeUsers, GuestsOrExternalUsers),
		checkIDs(strictjson.Join(path, "includeGroups"), u.IncludeGroups),
		checkIDs(strictjson.Join(path, "excludeGroups"), u.ExcludeGroups),
		checkIDs(strictjson.Join(path, "includeRoles"), u.IncludeRoles),
		checkIDs(strictjson.Join(path, "excludeRoles"), u.ExcludeRoles),
		u.IncludeGuestsOrExternalUsers.validate(strictjson.Join(path, "includeGuestsOrExternalUsers")),
		u.ExcludeGuestsOrExternalUsers.validate(strictjson.Join(path, "excludeGuestsOrExternalUsers")),
	)
}

func (g *ExternalUsers) validate(path string) error {
	if g == nil {
		return nil
	}
	types, bad, ok := parseGuestTypes(g.GuestOrExternalUserTypes)
	if !ok {
		return strictjson.Errorf(strictjson.Join(path, "guestOrExternalUserTypes"), "unknown value %q; want a comma-separated list of %s", bad, strings.Join(guestTypeNames, ", "))
	}
	t := g.ExternalTenants
	if t == nil {
		return nil
	}
	tpath := strictjson.Join(path, "externalTenants")
	if types == 0 {
		return strictjson.Errorf(tpath, "allowed only when guestOrExternalUserTypes is not none")
	}
	if err := checkEnum(strictjson.Join(tpath, "membershipKind"), t.MembershipKind, membershipKinds); err != nil {
		return err
	}
	if t.MembershipKind == "enumerated" && len(t.Members) == 0 {
		return strictjson.Errorf(strictjson.Join(tpath, "members"), "must list at least one tenant id when membershipKind is enumerated")
	}
	if t.MembershipKind == "all" && len(t.Members) > 0 {
		return strictjson.Errorf(strictjson.Join(tpath, "members"), "must be empty when membershipKind is all")
	}
	return checkIDs(strictjson.Join(tpath, "members"), t.Members)
}

func (a *Applications) validate(path string) error {
	targets := 0
	for _, set := range []bool{len(a.IncludeApplications) > 0, len(a.IncludeUserActions) > 0, len(a.IncludeAuthenticationContextClassReferences) > 0} {
		if set {
			targets++
		}
	}
	if targets > 1 {
		return strictjson.Errorf(path, "includeApplications, includeUserActions and includeAuthenticationContextClassReferences exclude each other")
	}
	if len(a.IncludeUserActions) > 0 && len(a.ExcludeApplications) > 0 {
		return strictjson.Errorf(strictjson.Join(path, "excludeApplications"), "must be empty when the policy targets user actions")
	}
	return firstError(
		checkIDs(strictjson.Join(path, "includeApplications"), a.IncludeApplications, All, None, Office365, MicrosoftAdminPortals, agentResourcesAll),
		checkAlone(strictjson.Join(path, "includeApplications"), a.IncludeApplications, All),
		checkAlone(strictjson.Join(path, "includeApplications"), a.IncludeApplications, None),
		checkIDs(strictjson.Join(path, "excludeApplications"), a.ExcludeApplications, Office365, MicrosoftAdminPortals),
		eachEnum(strictjson.Join(path, "includeUserActions"), a.IncludeUserActions, userActionValues),
		each(strictjson.Join(path, "includeAuthenticationContextClassReferences"), a.IncludeAuthenticationContextClassReferences, checkAuthContext),
		a.ApplicationFilter.validate(strictjson.Join(path, "applicationFilter")),
	)
}

// checkAuthContext accepts c1 .. c99.
func checkAuthContext(path, s string) error {
	if _, ok := authContextNumber(s); !ok {
		return strictjson.Errorf(path, "must be an authentication context c1 to c%d, not %q", maxAuthContext, s)
	}
	return nil
}

// authContextNumber reads "c37" as 37.
func authContextNumber(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "c")
	if !ok || rest == "" || rest[0] == '0' || len(rest) > 2 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || n > maxAuthContext {
		return 0, false
	}
	return n, true
}

func (c *ClientApplications) validate(path string) error {
	if c == nil {
		return nil
	}
	return firstError(
		checkIDs(strictjson.Join(path, "includeServicePrincipals"), c.IncludeServicePrincipals, ServicePrincipalsInMyTenant),
		checkIDs(strictjson.Join(path, "excludeServicePrincipals"), c.ExcludeServicePrincipals),
		c.ServicePrincipalFilter.validate(strictjson.Join(path, "servicePrincipalFilter")),
		checkIDs(strictjson.Join(path, "includeAgentIdServicePrincipals"), c.IncludeAgentIDServicePrincipals, All),
		checkIDs(strictjson.Join(path, "excludeAgentIdServicePrincipals"), c.ExcludeAgentIDServicePrincipals),
		c.AgentIDServicePrincipalFilter.validate(strictjson.Join(path, "agentIdServicePrincipalFilter")),
	)
}

func (f *Filter) validate(path string) error {
	if f == nil {
		return nil
	}
	if err := checkEnum(strictjson.Join(path, "mode"), f.Mode, filterModes); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(f.Rule) == "":
		return strictjson.Errorf(strictjson.Join(path, "rule"), "required")
	case len(f.Rule) > maxFilterRule:
		return strictjson.Errorf(strictjson.Join(path, "rule"), "must be at most %d characters", maxFilterRule)
	}
	return nil
}

func (p *Platforms) validate(path string) error {
	if p == nil {
		return nil
	}
	if len(p.IncludePlatforms) == 0 && len(p.ExcludePlatforms) > 0 {
		return strictjson.Errorf(strictjson.Join(path, "includePlatforms"), "required when excludePlatforms is set")
	}
	return firstError(
		eachEnum(strictjson.Join(path, "includePlatforms"), p.IncludePlatforms, platformValues),
		checkAlone(strictjson.Join(path, "includePlatforms"), p.IncludePlatforms, "all"),
		eachEnum(strictjson.Join(path, "excludePlatforms"), p.ExcludePlatforms, platformValues[1:]),
	)
}

func (l *Locations) validate(path string) error {
	if l == nil {
		return nil
	}
	if len(l.IncludeLocations) == 0 && len(l.ExcludeLocations) > 0 {
		return strictjson.Errorf(strictjson.Join(path, "includeLocations"), "required when excludeLocations is set")
	}
	return firstError(
		checkIDs(strictjson.Join(path, "includeLocations"), l.IncludeLocations, All, AllTrusted),
		checkAlone(strictjson.Join(path, "includeLocations"), l.IncludeLocations, All),
		checkIDs(strictjson.Join(path, "excludeLocations"), l.ExcludeLocations, AllTrusted),
	)
}

func (d *Devices) validate(path string) error {
	if d == nil {
		return nil
	}
	states := len(d.IncludeDevices) + len(d.ExcludeDevices) + len(d.IncludeDeviceStates) + len(d.ExcludeDeviceStates)
	if d.DeviceFilter != nil && states > 0 {
		return strictjson.Errorf(path, "deviceFilter cannot be combined with the deprecated device states")
	}
	if err := d.DeviceFilter.validate(strictjson.Join(path, "deviceFilter")); err != nil {
		return err
	}
	if f := d.DeviceFilter; f != nil {
		if _, err := devicefilter.Parse(f.Rule); err != nil {
			return strictjson.Errorf(strictjson.Join(path, "deviceFilter.rule"), "%v", err)
		}
	}
	return nil
}

func (f *AuthFlows) validate(path string) error {
	if f == nil {
		return nil
	}
	return checkFlags(strictjson.Join(path, "transferMethods"), &f.TransferMethods, transferMethodFlags)
}

func (g *GrantControls) validate(path string) error {
	if g == nil {
		return nil
	}
	n := len(g.BuiltInControls) + len(g.CustomAuthenticationFactors) + len(g.TermsOfUse)
	if g.AuthenticationStrength != nil {
		n++
	}
	if g.Operator == "" && n > 1 {
		return strictjson.Errorf(strictjson.Join(path, "operator"), "required with more than one control: AND or OR")
	}
	if g.Operator != "" {
		if err := checkEnum(strictjson.Join(path, "operator"), g.Operator, operators); err != nil {
			return err
		}
	}
	if slices.Contains(g.BuiltInControls, "block") && n > 1 {
		return strictjson.Errorf(strictjson.Join(path, "builtInControls"), "block cannot be combined with other controls")
	}
	return firstError(
		eachEnum(strictjson.Join(path, "builtInControls"), g.BuiltInControls, builtInControlValues),
		each(strictjson.Join(path, "customAuthenticationFactors"), g.CustomAuthenticationFactors, nonEmpty),
		// Terms-of-use agreement ids are GUIDs in Graph, but Verity never
		// resolves them (the control is unsupported), so any name passes.
		each(strictjson.Join(path, "termsOfUse"), g.TermsOfUse, nonEmpty),
		g.AuthenticationStrength.validate(strictjson.Join(path, "authenticationStrength")),
	)
}

func (s *AuthenticationStrength) validate(path string) error {
	if s == nil {
		return nil
	}
	if err := checkGUID(strictjson.Join(path, "id"), s.ID); err != nil {
		return err
	}
	return firstError(
		optionalEnum(strictjson.Join(path, "policyType"), s.PolicyType, []string{"builtIn", "custom"}),
		optionalEnum(strictjson.Join(path, "requirementsSatisfied"), s.RequirementsSatisfied, []string{"none", "mfa"}),
		each(strictjson.Join(path, "allowedCombinations"), s.AllowedCombinations, func(path, c string) error {
			if _, err := ParseAuthMethods(c); err != nil {
				return strictjson.Errorf(path, "%v", err)
			}
			return nil
		}),
	)
}

func (s *SessionControls) validate(path string) error {
	if s == nil {
		return nil
	}
	if c := s.CloudAppSecurity; c != nil && c.IsEnabled {
		if err := optionalEnum(strictjson.Join(path, "cloudAppSecurity.cloudAppSecurityType"), c.CloudAppSecurityType, cloudAppSecurityTypes); err != nil {
			return err
		}
	}
	if b := s.PersistentBrowser; b != nil && b.IsEnabled {
		if err := checkEnum(strictjson.Join(path, "persistentBrowser.mode"), b.Mode, persistentModes); err != nil {
			return err
		}
	}
	if c := s.ContinuousAccessEvaluation; c != nil {
		if err := checkEnum(strictjson.Join(path, "continuousAccessEvaluation.mode"), c.Mode, caeModes); err != nil {
			return err
		}
	}
	return s.SignInFrequency.validate(strictjson.Join(path, "signInFrequency"))
}

func (f *SignInFrequency) validate(path string) error {
	if f == nil {
		return nil
	}
	if err := firstError(
		optionalEnum(strictjson.Join(path, "frequencyInterval"), f.FrequencyInterval, signInIntervals),
		optionalEnum(strictjson.Join(path, "authenticationType"), f.AuthenticationType, signInAuthTypes),
	); err != nil {
		return err
	}
	if !f.IsEnabled {
		return nil
	}
	if f.FrequencyInterval == "everyTime" {
		if f.Type != "" || f.Value != 0 {
			return strictjson.Errorf(path, "type and value must be empty when frequencyInterval is everyTime")
		}
		return nil
	}
	if err := checkEnum(strictjson.Join(path, "type"), f.Type, signInFrequencyTypes); err != nil {
		return err
	}
	limit := maxSignInHours
	if f.Type == "days" {
		limit = maxSignInDays
	}
	if f.Value < 1 || int(f.Value) > limit {
		return strictjson.Errorf(strictjson.Join(path, "value"), "must be 1 to %d %s, not %d", limit, f.Type, f.Value)
	}
	return nil
}

// validateCombinations checks rules that span several parts of a policy.
func (p *Policy) validateCombinations() error {
	c := &p.Conditions
	g := p.GrantControls
	apps := c.Applications
	allApps := slices.Equal(apps.IncludeApplications, []string{All}) && len(apps.ExcludeApplications) == 0
	if g != nil && slices.Contains(g.BuiltInControls, "passwordChange") {
		// Graph: "passwordChange must be accompanied by mfa using an AND
		// operator; must be used in a policy containing userRiskLevels;
		// the policy should target all applications and not exclude any;
		// the policy cannot contain any other condition."
		path := "grantControls.builtInControls"
		switch {
		case !slices.Contains(g.BuiltInControls, "mfa") || g.Operator != "AND":
			return strictjson.Errorf(path, "passwordChange requires mfa with operator AND")
		case len(c.UserRiskLevels) == 0:
			return strictjson.Errorf("conditions.userRiskLevels", "required with the passwordChange control")
		case !allApps:
			return strictjson.Errorf("conditions.applications", "passwordChange requires includeApplications [\"All\"] without exclusions")
		case c.hasOtherConditions(true):
			return strictjson.Errorf("conditions", "a passwordChange policy cannot have conditions other than userRiskLevels")
		}
	}
	if slices.Contains(apps.IncludeUserActions, ActionRegisterDevice) {
		// "Require multifactor authentication is the only access control
		// available with this user action"; an authentication strength is
		// a form of it. Client apps and device filters are unavailable.
		if g != nil && slices.ContainsFunc(g.BuiltInControls, func(s string) bool { return s != "mfa" }) {
			return strictjson.Errorf("grantControls.builtInControls", "only mfa is allowed with the %s user action", ActionRegisterDevice)
		}
		if !clientAppsAll(c.ClientAppTypes) {
			return strictjson.Errorf("conditions.clientAppTypes", "not available with the %s user action", ActionRegisterDevice)
		}
		if c.Devices != nil && c.Devices.DeviceFilter != nil {
			return strictjson.Errorf("conditions.devices", "not available with the %s user action", ActionRegisterDevice)
		}
	}
	s := p.SessionControls
	if s == nil {
		return nil
	}
	if b := s.PersistentBrowser; b != nil && b.IsEnabled && !allApps {
		return strictjson.Errorf("sessionControls.persistentBrowser", "requires includeApplications [\"All\"] without exclusions")
	}
	if e := s.ContinuousAccessEvaluation; e != nil && e.Mode == "disabled" && (!allApps || c.hasOtherConditions(false)) {
		return strictjson.Errorf("sessionControls.continuousAccessEvaluation", "mode disabled requires includeApplications [\"All\"] and no conditions")
	}
	return nil
}

// hasOtherConditions reports conditions beyond users and applications
// (and, when exceptUserRisk, beyond userRiskLevels).
func (c *Conditions) hasOtherConditions(exceptUserRisk bool) bool {
	return !clientAppsAll(c.ClientAppTypes) ||
		(c.Platforms != nil && len(c.Platforms.IncludePlatforms) > 0) ||
		(c.Locations != nil && len(c.Locations.IncludeLocations) > 0) ||
		(c.Devices != nil && c.Devices.DeviceFilter != nil) ||
		len(c.SignInRiskLevels) > 0 || len(c.ServicePrincipalRiskLevels) > 0 ||
		(!exceptUserRisk && len(c.UserRiskLevels) > 0) ||
		(c.InsiderRiskLevels != nil && *c.InsiderRiskLevels != "") ||
		(c.AuthenticationFlows != nil && c.AuthenticationFlows.TransferMethods != "")
}

// clientAppsAll reports whether clientAppTypes leaves client apps
// unrestricted: empty, or "all" (which two public policy sets write "All").
func clientAppsAll(types []string) bool {
	return len(types) == 0 || slices.ContainsFunc(types, func(s string) bool { return s == "all" || s == "All" })
}

// --- small checks, each returning a *strictjson.FieldError ---

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func each(path string, list []string, check func(path, s string) error) error {
	for i, s := range list {
		if err := check(strictjson.Index(path, i), s); err != nil {
			return err
		}
	}
	return nil
}

func nonEmpty(path, s string) error {
	if strings.TrimSpace(s) == "" {
		return strictjson.Errorf(path, "must not be empty")
	}
	return nil
}

func checkGUID(path, s string) error {
	if !directory.IsGUID(s) {
		return strictjson.Errorf(path, "not a GUID: %q", s)
	}
	return nil
}

func optionalGUID(path, s string) error {
	if s == "" {
		return nil
	}
	return checkGUID(path, s)
}

// checkIDs accepts GUIDs and the given special values.
func checkIDs(path string, list []string, specials ...string) error {
	return each(path, list, func(path, s string) error {
		if directory.IsGUID(s) || slices.Contains(specials, s) {
			return nil
		}
		if len(specials) == 0 {
			return strictjson.Errorf(path, "not a GUID: %q", s)
		}
		return strictjson.Errorf(path, "not a GUID or one of %s: %q", strings.Join(specials, ", "), s)
	})
}

// checkAlone rejects special (All, None) next to other entries.
func checkAlone(path string, list []string, special string) error {
	if len(list) > 1 && slices.Contains(list, special) {
		return strictjson.Errorf(path, "%s cannot be combined with other entries", special)
	}
	return nil
}

func checkEnum(path, s string, allowed []string) error {
	if slices.Contains(allowed, s) {
		return nil
	}
	return strictjson.Errorf(path, "%v", errUnknown("value", s, allowed))
}

func optionalEnum(path, s string, allowed []string) error {
	if s == "" {
		return nil
	}
	return checkEnum(path, s, allowed)
}

// eachEnum checks every entry; quirks are accepted spellings outside the
// enumeration.
func eachEnum(path string, list, allowed []string, quirks ...string) error {
	return each(path, list, func(path, s string) error {
		if slices.Contains(quirks, s) {
			return nil
		}
		return checkEnum(path, s, allowed)
	})
}

// checkFlags checks a comma-joined flags value.
func checkFlags(path string, s *string, allowed []string) error {
	if s == nil {
		return nil
	}
	if strings.TrimSpace(*s) == "" {
		return strictjson.Errorf(path, "must not be empty; leave it null")
	}
	if _, bad, ok := parseFlags(*s, allowed); !ok {
		return strictjson.Errorf(path, "%v", errUnknown("value", bad, allowed))
	}
	return nil
}

func errUnknown(what, s string, allowed []string) error {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = strconv.Quote(a)
	}
	return fmt.Errorf("unknown %s %q; want one of %s", what, s, strings.Join(q, ", "))
}
