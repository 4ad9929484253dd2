package directory

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// ODataOpenIDConnectIdentityProvider is the @odata.type of an identity
// provider, as Graph writes it.
const ODataOpenIDConnectIdentityProvider = "#microsoft.graph.openIdConnectIdentityProvider"

// Defaults of an identity provider's properties.
const (
	DefaultIdentityProviderScope = "openid profile email"
	ResponseTypeCode             = "code"
)

// Limits on an identity provider.
const (
	maxClientID      = 256
	maxClaimName     = 256
	maxClaimValue    = 256
	maxScope         = 1024
	maxGroupMappings = 1000
	maxDomainHints   = 100
	maxMFAValues     = 32
)

// IdentityProvider is an external OpenID Connect identity provider people
// sign in to Verity with (Entra ID, Okta, Google, Keycloak, another
// Verity): Graph's openIdConnectIdentityProvider, with the issuer of Entra
// External ID's oidcIdentityProvider and what Verity adds for sign-in
// (the claims and groups to map, just-in-time provisioning, the domains
// routed to it, whether its MFA counts). Its store key is the issuer: one
// identity provider per issuer, because users are linked to an account
// at an issuer.
//
// The client secret is not part of it. It is write-only: the API takes it
// as "clientSecret" and keeps it sealed in a store record
// (SetIdentityProviderSecret), never in the object, a snapshot or an
// export.
type IdentityProvider struct {
	// ODataType is "#microsoft.graph.openIdConnectIdentityProvider", the
	// only kind of identity provider Verity federates with.
	ODataType   string `json:"@odata.type,omitempty"`
	ID          string `json:"id,omitempty"`
	DisplayName string `json:"displayName"`
	// Issuer is the provider's issuer identifier, exactly as its ID tokens
	// carry it in "iss"; discovery is read from
	// {issuer}/.well-known/openid-configuration. It must use https (http
	// only to a loopback address).
	Issuer string `json:"issuer"`
	// ClientID is Verity's client id at the provider.
	ClientID string `json:"clientId"`
	// Scope is what Verity asks for, space-separated; it must include
	// openid. Default "openid profile email".
	Scope string `json:"scope,omitempty"`
	// ResponseType is "code": the authorization code flow with PKCE, the
	// only one Verity uses.
	ResponseType string `json:"responseType,omitempty"`
	// ClaimsMapping names the ID token claims that identify the user and
	// fill a provisioned user's properties.
	ClaimsMapping *ClaimsMapping `json:"claimsMapping,omitempty"`
	// GroupMappings turn values of the groups claim into memberships of
	// Verity groups.
	GroupMappings []GroupMapping `json:"groupMappings,omitempty"`
	// JITProvisioning creates a Verity user on the first sign-in of an
	// account no user is linked to yet. Off by default: then an
	// administrator must link (provision) users first.
	JITProvisioning bool `json:"jitProvisioning"`
	// DomainHints are e-mail domains whose users the sign-in page sends to
	// this provider; a domain belongs to at most one provider.
	DomainHints []string `json:"domainHints,omitempty"`
	// MFAClaim says when the provider's own multifactor authentication
	// counts as Verity's (federatedMultiFactor). Unset (the default), it
	// never does: Verity asks for its own second factor when a policy
	// wants MFA.
	MFAClaim        *MFAClaim  `json:"mfaClaim,omitempty"`
	CreatedDateTime *time.Time `json:"createdDateTime,omitempty"` // read-only, set by the server
}

// ClaimsMapping names the ID token claims Verity reads: Graph's
// claimsMapping, with the user name and groups added. Normalize fills the
// defaults.
type ClaimsMapping struct {
	// UserID is the claim that identifies the account at the provider,
	// immutably (default "sub"; "oid" for Entra across applications). A
	// user is linked to the pair (issuer, value).
	UserID string `json:"userId,omitempty"`
	// UserPrincipalName gives a provisioned user's userPrincipalName
	// (default "preferred_username"; when that claim is absent or not of
	// the form name@domain, the email claim).
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	// Email gives mail (default "email").
	Email string `json:"email,omitempty"`
	// DisplayName gives displayName (default "name").
	DisplayName string `json:"displayName,omitempty"`
	// GivenName and Surname (defaults "given_name", "family_name").
	GivenName string `json:"givenName,omitempty"`
	Surname   string `json:"surname,omitempty"`
	// Groups is the claim listing the account's groups (default "groups"),
	// whose values GroupMappings map.
	Groups string `json:"groups,omitempty"`
}

// GroupMapping makes accounts whose groups claim holds ClaimValue members
// of the Verity group GroupID.
type GroupMapping struct {
	// ClaimValue is one value of the groups claim (an Entra group object
	// id, an Okta group name, ...), compared exactly.
	ClaimValue string `json:"claimValue"`
	GroupID    string `json:"groupId"`
}

// MFAClaim is when a sign-in at the provider counts as multifactor: its
// amr claim holds one of AMRValues, or its acr claim equals one of
// ACRValues.
type MFAClaim struct {
	AMRValues []string `json:"amrValues,omitempty"`
	ACRValues []string `json:"acrValues,omitempty"`
}

// Satisfied reports whether an ID token's amr and acr meet the rule; a nil
// rule is never met.
func (m *MFAClaim) Satisfied(amr []string, acr string) bool {
	if m == nil {
		return false
	}
	for _, v := range m.AMRValues {
		if slices.Contains(amr, v) {
			return true
		}
	}
	return acr != "" && slices.Contains(m.ACRValues, acr)
}

// ObjectID implements Resource.
func (p *IdentityProvider) ObjectID() string { return p.ID }

// SetObjectID implements Resource.
func (p *IdentityProvider) SetObjectID(id string) { p.ID = id }

// SetCreatedDateTime implements Resource.
func (p *IdentityProvider) SetCreatedDateTime(t time.Time) { t = t.UTC(); p.CreatedDateTime = &t }

// Key is the store key: the issuer, exactly.
func (p *IdentityProvider) Key() string { return p.Issuer }

// GroupsFor returns the ids of the groups the values of a groups claim
// map to, sorted and without repeats.
func (p *IdentityProvider) GroupsFor(values []string) []string {
	var out []string
	for _, m := range p.GroupMappings {
		if slices.Contains(values, m.ClaimValue) {
			out = append(out, m.GroupID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// MappedGroups returns the ids of every group the provider maps to, sorted
// and without repeats.
func (p *IdentityProvider) MappedGroups() []string {
	out := make([]string, 0, len(p.GroupMappings))
	for _, m := range p.GroupMappings {
		out = append(out, m.GroupID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ServesDomain reports whether e-mail domain d is routed to the provider.
func (p *IdentityProvider) ServesDomain(d string) bool {
	return d != "" && slices.Contains(p.DomainHints, strings.ToLower(d))
}

// Normalize implements Resource: @odata.type, scope, responseType and
// every claim name default; GUIDs and domains are lower-cased; group
// mappings are sorted and de-duplicated; an empty mfaClaim is dropped.
func (p *IdentityProvider) Normalize() {
	if p.ODataType == "" {
		p.ODataType = ODataOpenIDConnectIdentityProvider
	}
	p.ID = lowerGUID(p.ID)
	p.Scope = strings.Join(strings.Fields(p.Scope), " ")
	if p.Scope == "" {
		p.Scope = DefaultIdentityProviderScope
	}
	if p.ResponseType == "" {
		p.ResponseType = ResponseTypeCode
	}
	if p.ClaimsMapping == nil {
		p.ClaimsMapping = &ClaimsMapping{}
	}
	c := p.ClaimsMapping
	for _, f := range []struct {
		v   *string
		def string
	}{{&c.UserID, "sub"}, {&c.UserPrincipalName, "preferred_username"}, {&c.Email, "email"}, {&c.DisplayName, "name"},
		{&c.GivenName, "given_name"}, {&c.Surname, "family_name"}, {&c.Groups, "groups"}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	for i := range p.GroupMappings {
		p.GroupMappings[i].GroupID = lowerGUID(p.GroupMappings[i].GroupID)
	}
	if !slices.IsSortedFunc(p.GroupMappings, compareGroupMapping) {
		slices.SortFunc(p.GroupMappings, compareGroupMapping)
	}
	p.GroupMappings = slices.Compact(p.GroupMappings)
	for i, d := range p.DomainHints {
		p.DomainHints[i] = strings.ToLower(strings.TrimSpace(d))
	}
	if p.MFAClaim != nil && len(p.MFAClaim.AMRValues) == 0 && len(p.MFAClaim.ACRValues) == 0 {
		p.MFAClaim = nil
	}
}

func compareGroupMapping(a, b GroupMapping) int {
	return cmp.Or(cmp.Compare(a.ClaimValue, b.ClaimValue), cmp.Compare(a.GroupID, b.GroupID))
}

// Validate implements Resource.
func (p *IdentityProvider) Validate() error {
	c := p.ClaimsMapping
	if c == nil {
		c = &ClaimsMapping{}
	}
	var mfaAMR, mfaACR []string
	if p.MFAClaim != nil {
		mfaAMR, mfaACR = p.MFAClaim.AMRValues, p.MFAClaim.ACRValues
	}
	return firstError(
		checkEnum("@odata.type", p.ODataType, ODataOpenIDConnectIdentityProvider),
		checkID("id", p.ID),
		checkDisplayName("displayName", p.DisplayName),
		CheckIssuer("issuer", p.Issuer),
		checkClientID("clientId", p.ClientID),
		checkScope("scope", p.Scope),
		checkResponseType("responseType", p.ResponseType),
		checkClaimName("claimsMapping.userId", c.UserID),
		checkClaimName("claimsMapping.userPrincipalName", c.UserPrincipalName),
		checkClaimName("claimsMapping.email", c.Email),
		checkClaimName("claimsMapping.displayName", c.DisplayName),
		checkClaimName("claimsMapping.givenName", c.GivenName),
		checkClaimName("claimsMapping.surname", c.Surname),
		checkClaimName("claimsMapping.groups", c.Groups),
		checkGroupMappings("groupMappings", p.GroupMappings),
		checkDomainHints("domainHints", p.DomainHints),
		checkMFAValues("mfaClaim.amrValues", mfaAMR),
		checkMFAValues("mfaClaim.acrValues", mfaACR),
	)
}

// CheckIssuer checks an OpenID Connect issuer identifier: an absolute
// https URL with a host and no query, fragment or user information (OIDC
// Discovery 3), or an http URL to a loopback address (a provider on the
// same machine, as in tests).
func CheckIssuer(path, s string) error {
	switch {
	case s == "":
		return strictjson.Errorf(path, "required")
	case len(s) > maxURLBytes:
		return strictjson.Errorf(path, "must be at most %d bytes, not %d", maxURLBytes, len(s))
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return strictjson.Errorf(path, "must not contain spaces or control characters")
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return strictjson.Errorf(path, "must be an absolute URL such as https://login.microsoftonline.com/{tenant-id}/v2.0, not %q", s)
	}
	switch {
	case u.User != nil:
		return strictjson.Errorf(path, "must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#"):
		return strictjson.Errorf(path, "must not have a query or fragment: it is the issuer identifier, not the discovery URL")
	case strings.HasSuffix(u.Path, "/.well-known/openid-configuration"):
		return strictjson.Errorf(path, "must be the issuer, without /.well-known/openid-configuration")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return strictjson.Errorf(path, "must use https; http is allowed only for localhost, 127.0.0.1 and [::1]")
	}
	return strictjson.Errorf(path, "must use https, not %q", u.Scheme+":")
}

// checkClientID accepts 1 to maxClientID visible ASCII characters.
func checkClientID(path, s string) error {
	if s == "" {
		return strictjson.Errorf(path, "required: the client id Verity is registered with at the identity provider")
	}
	if len(s) > maxClientID {
		return strictjson.Errorf(path, "must be at most %d characters, not %d", maxClientID, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return strictjson.Errorf(path, "must be visible ASCII characters without spaces")
		}
	}
	return nil
}

// checkScope checks a space-separated scope list (RFC 6749 3.3) that
// includes openid.
func checkScope(path, s string) error {
	if len(s) > maxScope {
		return strictjson.Errorf(path, "must be at most %d characters, not %d", maxScope, len(s))
	}
	fields := strings.Fields(s)
	for _, f := range fields {
		for i := 0; i < len(f); i++ {
			if c := f[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return strictjson.Errorf(path, "scope %q has a character OAuth does not allow in a scope (quote, backslash or non-ASCII)", f)
			}
		}
	}
	if !slices.Contains(fields, "openid") {
		return strictjson.Errorf(path, "must include openid, as in %q", DefaultIdentityProviderScope)
	}
	return nil
}

func checkResponseType(path, s string) error {
	if s != ResponseTypeCode {
		return strictjson.Errorf(path, "must be \"code\", not %q: Verity signs in with the authorization code flow and PKCE only", s)
	}
	return nil
}

// checkClaimName accepts a claim name: 1 to maxClaimName characters, no
// spaces or control characters.
func checkClaimName(path, s string) error {
	if s == "" {
		return strictjson.Errorf(path, "must not be empty")
	}
	if len(s) > maxClaimName {
		return strictjson.Errorf(path, "must be at most %d characters, not %d", maxClaimName, len(s))
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return strictjson.Errorf(path, "must be a claim name, without spaces or control characters")
		}
	}
	return nil
}

func checkGroupMappings(path string, ms []GroupMapping) error {
	if len(ms) > maxGroupMappings {
		return strictjson.Errorf(path, "must have at most %d entries, not %d", maxGroupMappings, len(ms))
	}
	for i, m := range ms {
		p := strictjson.Index(path, i)
		if m.ClaimValue == "" {
			return strictjson.Errorf(strictjson.Join(p, "claimValue"), "required: the value of the groups claim to map")
		}
		if err := checkText(strictjson.Join(p, "claimValue"), m.ClaimValue, maxClaimValue); err != nil {
			return err
		}
		if err := checkGUID(strictjson.Join(p, "groupId"), m.GroupID); err != nil {
			return err
		}
	}
	return nil
}

func checkDomainHints(path string, ds []string) error {
	if len(ds) > maxDomainHints {
		return strictjson.Errorf(path, "must have at most %d entries, not %d", maxDomainHints, len(ds))
	}
	return checkStrings(path, ds, func(path, d string) error {
		if !isDomain(d) || !strings.Contains(d, ".") {
			return strictjson.Errorf(path, "must be an e-mail domain such as contoso.com, not %q", d)
		}
		return nil
	})
}

func checkMFAValues(path string, vs []string) error {
	if len(vs) > maxMFAValues {
		return strictjson.Errorf(path, "must have at most %d entries, not %d", maxMFAValues, len(vs))
	}
	return checkStrings(path, vs, textUpTo(maxClaimValue))
}
