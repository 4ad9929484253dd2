package access

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/strictjson"
)

// CompileOptions carries what policies refer to outside themselves.
type CompileOptions struct {
	// NamedLocations are the tenant's named locations (Snapshot.Locations
	// gives them as directory.Location, whose NamedLocation field is
	// this). AllTrusted covers every IP location marked trusted.
	NamedLocations []directory.NamedLocation
	// MFATrustedIPs are the legacy "MFA trusted IPs", part of AllTrusted
	// and of the pseudo-location 00000000-0000-0000-0000-000000000000.
	MFATrustedIPs []netip.Prefix
	// AppGroups maps the application groups policies name (Office365,
	// MicrosoftAdminPortals) to their members' app ids. A policy naming a
	// group that is not here does not compile.
	AppGroups map[string][]string
}

// Engine is a set of policies compiled for evaluation. It is immutable and
// safe for concurrent use; Evaluate takes no lock and does no I/O.
type Engine struct {
	policies []*Policy // enabled and report-only, in input order
	pol      []compiled
	words    int
	enforced []uint64 // enabled policies
	nonEmpty []uint64 // policies with a grant or session control
	valid    []uint64 // a bit for every policy
	// blank is the result of a sign-in no policy applies to.
	blank []PolicyResult

	// Users: masks of the policies that include or exclude a token.
	usersAll  []uint64
	guestIncl [6][]uint64 // per GuestType bit, all external tenants
	guestExcl [6][]uint64
	tenants   []tenantRule
	principal table // rows: incl, excl for each user, group and role token
	userTok   map[string]int32
	groupTok  map[string]int32
	roleTok   map[string]int32
	groupIDs  idFilter // the keys of groupTok
	spAll     []uint64 // ServicePrincipalsInMyTenant
	spTok     map[string]int32

	// Target resources.
	appsAll []uint64 // includeApplications All: every app, user action and authentication context
	apps    table    // rows: incl, excl per app id
	appTok  map[string]int32
	actions [3][]uint64                  // per UserAction
	authCtx [maxAuthContext + 1][]uint64 // per context number, nil when no policy names it

	// Network.
	loc            *locationIndex
	locTok         table // rows: incl, excl per location token
	noLocation     []uint64
	locInclAll     []uint64
	locNeedsIP     []uint64 // policies naming a location decided by IP
	locNeedsCtry   []uint64 // policies naming a country location
	locAssumedIncl []uint64 // policies including a location Verity cannot decide
	locAssumed     []uint64 // policies naming such a location

	// Conditions with few values: the policies each value passes.
	clientOK   [numClientApps][]uint64
	platformOK [numPlatforms][]uint64
	signInOK   [numRiskLevels][]uint64
	userRiskOK [numRiskLevels][]uint64
	spRiskOK   [numRiskLevels][]uint64
	insiderOK  [numInsiderRisks][]uint64
	flowOK     [numTransferMethods][]uint64
	noFilter   []uint64 // policies without a device filter
	filters    []deviceFilter

	notes []Note
}

// tenantRule is an include or exclude of guests from enumerated tenants.
type tenantRule struct {
	policy  int
	exclude bool
	types   GuestType
	tenants []string
}

type deviceFilter struct {
	policy int
	filter devicefilter.Filter
}

// compiled is one policy's grant and session controls.
type compiled struct {
	enforced bool
	assumed  Reason // unsupported conditions, assumed to hold
	block    bool
	and      bool    // operator AND
	controls Control // grant controls (block aside)
	session  Control // session controls Verity cannot apply: always unmet
	strength *Strength
	sif      sifSetting
	browser  BrowserMode
	cae      CAEMode
	// disableResilience: sessionControls.disableResilienceDefaults is true.
	disableResilience bool
}

// sifSetting is a sign-in frequency.
type sifSetting struct {
	set       bool
	everyTime bool
	interval  time.Duration
	secondary bool // secondaryAuthentication only
}

// Compile checks and compiles policies. Disabled policies are left out:
// What If and enforcement only consider enabled and report-only ones. The
// engine keeps the policies (it does not copy them); do not modify them
// afterwards.
func Compile(policies []*Policy, opts CompileOptions) (*Engine, error) {
	e := &Engine{userTok: map[string]int32{}, groupTok: map[string]int32{}, roleTok: map[string]int32{},
		spTok: map[string]int32{}, appTok: map[string]int32{}}
	for i, p := range policies {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("compile policy %d (%s): %w", i, p.Label(), err)
		}
		if p.State != StateDisabled {
			e.policies = append(e.policies, p)
		}
	}
	n := len(e.policies)
	e.words = max(1, (n+63)/64)
	mask := func() []uint64 { return make([]uint64, e.words) }
	e.enforced, e.nonEmpty = mask(), mask()
	e.usersAll, e.spAll, e.appsAll = mask(), mask(), mask()
	for i := range e.guestIncl {
		e.guestIncl[i], e.guestExcl[i] = mask(), mask()
	}
	e.principal.words, e.apps.words = e.words, e.words
	for i := range e.actions {
		e.actions[i] = mask()
	}
	e.noLocation, e.locInclAll, e.locNeedsIP, e.locNeedsCtry = mask(), mask(), mask(), mask()
	e.locAssumedIncl, e.locAssumed = mask(), mask()
	e.locTok.words = e.words
	for _, ms := range [][][]uint64{e.clientOK[:], e.platformOK[:], e.signInOK[:], e.userRiskOK[:], e.spRiskOK[:], e.insiderOK[:], e.flowOK[:]} {
		for v := range ms {
			ms[v] = mask()
		}
	}
	e.noFilter = mask()

	groups := map[string][]string{}
	for name, ids := range opts.AppGroups {
		groups[name] = lowerAll(ids)
	}
	locs := newLocationCompiler(opts.NamedLocations, opts.MFATrustedIPs)
	e.pol = make([]compiled, n)
	for i, p := range e.policies {
		c := &p.Conditions
		if err := firstError(
			e.compileUsers(i, c),
			e.compileApps(i, c.Applications, groups),
			e.compileLocations(i, c.Locations, locs),
			e.compileDevices(i, c.Devices),
		); err != nil {
			return nil, fmt.Errorf("compile policy %q: %w", p.Label(), err)
		}
		e.compileConditions(i, c)
		e.pol[i] = compilePolicy(p)
		if p.State == StateEnabled {
			setBit(e.enforced, i)
		}
		if !p.empty() {
			setBit(e.nonEmpty, i)
		}
	}
	e.loc = locs.build()
	for id := range e.groupTok {
		e.groupIDs.add(id)
	}
	e.valid = mask()
	e.blank = make([]PolicyResult, n)
	for i := range n {
		setBit(e.valid, i)
		e.blank[i].Status = StatusNotApplied
		if !e.pol[i].enforced {
			e.blank[i].Status = StatusReportOnlyNotApplied
		}
	}
	for _, tok := range locs.tokens {
		if tok.kind == locNever {
			e.notes = append(e.notes, Note{Path: "namedLocations." + tok.id,
				Message: "unsupported: compliant network locations (Global Secure Access); no Verity sign-in comes from one, so it never matches"})
		}
		if tok.kind == locUnsupported {
			e.notes = append(e.notes, Note{Path: "namedLocations." + tok.id,
				Message: "unsupported: country lookup by Authenticator GPS; assumed to contain the sign-in when included, and not when excluded"})
		}
	}
	return e, nil
}

// Policies lists the compiled policies (enabled and report-only), in the
// order of Result.Policies.
func (e *Engine) Policies() []*Policy { return e.policies }

// NamesAuthenticationContext reports whether a policy that is on or in
// report-only mode names the authentication context claim ("c1"):
// whether asking for the context means anything beyond the sign-in.
func (e *Engine) NamesAuthenticationContext(claim string) bool {
	n, ok := authContextNumber(claim)
	return ok && e.authCtx[n] != nil
}

// Notes lists what the engine cannot evaluate exactly in the named
// locations (the policies' own notes come from ParsePolicy).
func (e *Engine) Notes() []Note { return e.notes }

// token returns the row pair of id in t, adding it on first use.
func token(m map[string]int32, t *table, id string) int {
	if r, ok := m[id]; ok {
		return int(r)
	}
	r := t.add()
	t.add()
	m[id] = int32(r)
	return r
}

func (e *Engine) compileUsers(i int, c *Conditions) error {
	if u := c.Users; u != nil {
		for _, id := range u.IncludeUsers {
			switch id {
			case All:
				setBit(e.usersAll, i)
			case None, agentUsersAll:
			case GuestsOrExternalUsers:
				for g := range e.guestIncl {
					setBit(e.guestIncl[g], i)
				}
			default:
				setBit(e.principal.row(token(e.userTok, &e.principal, strings.ToLower(id))), i)
			}
		}
		for _, id := range u.ExcludeUsers {
			if id == GuestsOrExternalUsers {
				for g := range e.guestExcl {
					setBit(e.guestExcl[g], i)
				}
				continue
			}
			setBit(e.principal.row(token(e.userTok, &e.principal, strings.ToLower(id))+1), i)
		}
		for _, list := range []struct {
			ids     []string
			tok     map[string]int32
			exclude int
		}{{u.IncludeGroups, e.groupTok, 0}, {u.ExcludeGroups, e.groupTok, 1}, {u.IncludeRoles, e.roleTok, 0}, {u.ExcludeRoles, e.roleTok, 1}} {
			for _, id := range list.ids {
				setBit(e.principal.row(token(list.tok, &e.principal, strings.ToLower(id))+list.exclude), i)
			}
		}
		e.compileGuests(i, u.IncludeGuestsOrExternalUsers, false)
		e.compileGuests(i, u.ExcludeGuestsOrExternalUsers, true)
	}
	if ca := c.ClientApplications; ca != nil {
		for _, id := range ca.IncludeServicePrincipals {
			if id == ServicePrincipalsInMyTenant {
				setBit(e.spAll, i)
				continue
			}
			setBit(e.principal.row(token(e.spTok, &e.principal, strings.ToLower(id))), i)
		}
		for _, id := range ca.ExcludeServicePrincipals {
			setBit(e.principal.row(token(e.spTok, &e.principal, strings.ToLower(id))+1), i)
		}
	}
	return nil
}

func (e *Engine) compileGuests(i int, g *ExternalUsers, exclude bool) {
	if g == nil {
		return
	}
	types, _, _ := parseGuestTypes(g.GuestOrExternalUserTypes)
	if t := g.ExternalTenants; t != nil && t.MembershipKind == "enumerated" {
		e.tenants = append(e.tenants, tenantRule{policy: i, exclude: exclude, types: types, tenants: lowerAll(t.Members)})
		return
	}
	masks := &e.guestIncl
	if exclude {
		masks = &e.guestExcl
	}
	for b := range masks {
		if types&(1<<b) != 0 {
			setBit(masks[b], i)
		}
	}
}

func (e *Engine) compileApps(i int, a *Applications, groups map[string][]string) error {
	add := func(id string, exclude int, path string) error {
		ids := []string{strings.ToLower(id)}
		if id == Office365 || id == MicrosoftAdminPortals {
			members, ok := groups[id]
			if !ok {
				return strictjson.Errorf(path, "the application group %s has no members in CompileOptions.AppGroups", id)
			}
			ids = members
		}
		for _, app := range ids {
			setBit(e.apps.row(token(e.appTok, &e.apps, app)+exclude), i)
		}
		return nil
	}
	for j, id := range a.IncludeApplications {
		switch id {
		case All:
			setBit(e.appsAll, i)
		case None, agentResourcesAll:
		default:
			if err := add(id, 0, strictjson.Index("conditions.applications.includeApplications", j)); err != nil {
				return err
			}
		}
	}
	for j, id := range a.ExcludeApplications {
		if err := add(id, 1, strictjson.Index("conditions.applications.excludeApplications", j)); err != nil {
			return err
		}
	}
	for _, urn := range a.IncludeUserActions {
		if act, ok := userActionURNs.parse(urn); ok {
			setBit(e.actions[act], i)
		}
	}
	for _, ref := range a.IncludeAuthenticationContextClassReferences {
		n, _ := authContextNumber(ref)
		if e.authCtx[n] == nil {
			e.authCtx[n] = make([]uint64, e.words)
		}
		setBit(e.authCtx[n], i)
	}
	return nil
}

func (e *Engine) compileLocations(i int, l *Locations, locs *locationCompiler) error {
	if l == nil || len(l.IncludeLocations) == 0 {
		setBit(e.noLocation, i)
		return nil
	}
	lists := []struct {
		name    string
		ids     []string
		exclude int
	}{{"includeLocations", l.IncludeLocations, 0}, {"excludeLocations", l.ExcludeLocations, 1}}
	for _, list := range lists {
		for j, id := range list.ids {
			if id == All {
				setBit(e.locInclAll, i)
				continue
			}
			t, ok := locs.token(id)
			if !ok {
				return strictjson.Errorf(strictjson.Index("conditions.locations."+list.name, j), "no named location has id %s", id)
			}
			for len(e.locTok.rows)/e.words < 2*t+2 {
				e.locTok.add()
			}
			setBit(e.locTok.row(2*t+list.exclude), i)
			switch locs.tokens[t].kind {
			case locIP:
				setBit(e.locNeedsIP, i)
			case locCountry:
				setBit(e.locNeedsCtry, i)
			case locUnsupported:
				setBit(e.locAssumed, i)
				if list.exclude == 0 {
					setBit(e.locAssumedIncl, i)
				}
			}
		}
	}
	return nil
}

func (e *Engine) compileDevices(i int, d *Devices) error {
	if d == nil || d.DeviceFilter == nil {
		setBit(e.noFilter, i)
		return nil
	}
	f, err := devicefilter.ParseFilter(d.DeviceFilter.Mode, d.DeviceFilter.Rule)
	if err != nil {
		return strictjson.Errorf("conditions.devices.deviceFilter", "%v", err)
	}
	e.filters = append(e.filters, deviceFilter{policy: i, filter: f})
	return nil
}

// compileConditions fills the per-value masks of the small conditions.
func (e *Engine) compileConditions(i int, c *Conditions) {
	// Client apps: unconfigured (or every type listed) passes every value,
	// even "not given".
	apps := map[ClientApp]bool{}
	for _, t := range c.ClientAppTypes {
		switch t {
		case "all", "All":
			apps = nil
		case "easSupported", "easUnsupported":
			if apps != nil {
				apps[ClientAppExchangeActiveSync] = true
			}
		default:
			if v, ok := clientAppNames.parse(t); ok && apps != nil {
				apps[ClientApp(v)] = true
			}
		}
		if apps == nil {
			break
		}
	}
	allApps := len(apps) == 0 || len(apps) == int(numClientApps)-1
	for v := range numClientApps {
		if allApps || apps[v] {
			setBit(e.clientOK[v], i)
		}
	}

	// Platforms: "all" includes every platform, even one not recognised.
	incl, excl := map[Platform]bool{}, map[Platform]bool{}
	includeAll, configured := false, c.Platforms != nil && len(c.Platforms.IncludePlatforms) > 0
	if configured {
		for _, s := range c.Platforms.IncludePlatforms {
			if s == "all" {
				includeAll = true
			} else if v, ok := platformNames.parse(s); ok {
				incl[Platform(v)] = true
			}
		}
		for _, s := range c.Platforms.ExcludePlatforms {
			if v, ok := platformNames.parse(s); ok {
				excl[Platform(v)] = true
			}
		}
		configured = !includeAll || len(excl) > 0
	}
	for v := range numPlatforms {
		switch {
		case !configured:
			setBit(e.platformOK[v], i)
		case v == PlatformNotGiven:
		case (includeAll || incl[v]) && !excl[v]:
			setBit(e.platformOK[v], i)
		}
	}

	risk := func(levels []string, masks [][]uint64) {
		for v := range masks {
			if len(levels) == 0 || slices.Contains(levels, riskNames.name(uint8(v))) {
				setBit(masks[v], i)
			}
		}
	}
	risk(c.SignInRiskLevels, e.signInOK[:])
	risk(c.UserRiskLevels, e.userRiskOK[:])
	risk(c.ServicePrincipalRiskLevels, e.spRiskOK[:])

	flags := func(s *string, names enum, masks [][]uint64) {
		var set uint64
		if s != nil {
			set, _, _ = parseFlags(*s, names[1:])
		}
		for v := range masks {
			if s == nil || (v > 0 && set&(1<<(v-1)) != 0) {
				setBit(masks[v], i)
			}
		}
	}
	flags(c.InsiderRiskLevels, insiderRiskNames, e.insiderOK[:])
	var flows *string
	if c.AuthenticationFlows != nil {
		flows = &c.AuthenticationFlows.TransferMethods
	}
	flags(flows, transferNames, e.flowOK[:])
}

// empty reports a policy with neither grant nor session controls, which
// What If reports as emptyPolicy.
func (p *Policy) empty() bool {
	if g := p.GrantControls; g != nil && len(g.BuiltInControls)+len(g.TermsOfUse)+len(g.CustomAuthenticationFactors) > 0 || g != nil && g.AuthenticationStrength != nil {
		return false
	}
	s := p.SessionControls
	if s == nil {
		return true
	}
	return !(s.ApplicationEnforcedRestrictions != nil && s.ApplicationEnforcedRestrictions.IsEnabled ||
		s.CloudAppSecurity != nil && s.CloudAppSecurity.IsEnabled ||
		s.SignInFrequency != nil && s.SignInFrequency.IsEnabled ||
		s.PersistentBrowser != nil && s.PersistentBrowser.IsEnabled ||
		s.ContinuousAccessEvaluation != nil ||
		s.DisableResilienceDefaults != nil ||
		s.SecureSignInSession != nil && s.SecureSignInSession.IsEnabled ||
		isSet(s.GlobalSecureAccessFilteringProfile) || isSet(s.NetworkAccessSecurity) || isSet(s.BlockSensitiveActions))
}

// compilePolicy compiles the grant and session controls.
func compilePolicy(p *Policy) compiled {
	c := compiled{enforced: p.State == StateEnabled}
	for _, f := range p.findings() {
		c.assumed |= f.assumed
		if f.unmet&(ControlApplicationEnforcedRestrictions|ControlCloudAppSecurity|ControlSecureSignInSession|
			ControlGlobalSecureAccessFilteringProfile|ControlNetworkAccessSecurity|ControlBlockSensitiveActions) != 0 {
			c.session |= f.unmet
		}
	}
	if g := p.GrantControls; g != nil {
		c.and = g.Operator == "AND"
		for _, b := range g.BuiltInControls {
			if b == "block" {
				c.block = true
				continue
			}
			if ctl, ok := ParseControl(b); ok {
				c.controls |= ctl
			}
		}
		if len(g.TermsOfUse) > 0 {
			c.controls |= ControlTermsOfUse
		}
		if len(g.CustomAuthenticationFactors) > 0 {
			c.controls |= ControlCustomAuthenticationFactors
		}
		if g.AuthenticationStrength != nil {
			c.controls |= ControlAuthenticationStrength
			c.strength = compileStrength(g.AuthenticationStrength)
		}
	}
	if s := p.SessionControls; s != nil {
		if f := s.SignInFrequency; f != nil && f.IsEnabled {
			c.sif = sifSetting{set: true, everyTime: f.FrequencyInterval == "everyTime",
				secondary: f.AuthenticationType == "secondaryAuthentication"}
			if !c.sif.everyTime {
				unit := time.Hour
				if f.Type == "days" {
					unit = 24 * time.Hour
				}
				c.sif.interval = time.Duration(f.Value) * unit
			}
		}
		if b := s.PersistentBrowser; b != nil && b.IsEnabled {
			c.browser = BrowserAlways
			if b.Mode == "never" {
				c.browser = BrowserNever
			}
		}
		c.disableResilience = s.DisableResilienceDefaults != nil && *s.DisableResilienceDefaults
		if m := s.ContinuousAccessEvaluation; m != nil {
			switch m.Mode {
			case "disabled":
				c.cae = CAEDisabled
			case "strictEnforcement":
				c.cae = CAEStrictEnforcement
			case "strictLocation":
				c.cae = CAEStrictLocation
			}
		}
	}
	return c
}
