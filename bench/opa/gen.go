// Package opabench compares Verity's conditional access engine with the
// same decision written in Rego and evaluated by OPA, on one generated
// tenant: a directory, a set of Graph conditionalAccessPolicy objects,
// named locations and a sample of sign-in requests.
//
// It is its own Go module so that OPA never becomes a dependency of
// Verity itself.
package opabench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"

	"github.com/verityhq/verity/internal/directory"
)

// Config sizes a generated tenant. The zero value of a field means the
// default given by DefaultConfig.
type Config struct {
	Seed     uint64
	Users    int
	Groups   int
	Policies int
	Requests int
}

// DefaultConfig is the size the conditional access issue asks for.
func DefaultConfig() Config {
	return Config{Seed: 1, Users: 100_000, Groups: 5_000, Policies: 200, Requests: 10_000}
}

// User is one generated user.
type User struct {
	ID     string
	UPN    string
	Guest  bool
	Direct []int    // indexes into Dataset.Groups: direct memberships
	Roles  []string // directory role template ids, assigned directly
}

// Group is one generated security group. Parents are the groups this
// group is a direct member of (nesting).
type Group struct {
	ID      string
	Name    string
	Level   int
	Parents []int
}

// NamedLocation is one generated IP named location.
type NamedLocation struct {
	ID      string
	Name    string
	Trusted bool
	Ranges  []netip.Prefix
}

// Request is one sampled sign-in.
type Request struct {
	UserID        string
	AppID         string
	ClientAppType string // browser | mobileAppsAndDesktopClients | exchangeActiveSync | other
	Platform      string // android | iOS | windows | windowsPhone | macOS | linux | "" (unknown)
	IP            netip.Addr
	SignInRisk    string // none | low | medium | high
	UserRisk      string // none | low | medium | high
	Satisfied     []string
}

// Dataset is a generated tenant and request sample.
type Dataset struct {
	Config    Config
	Users     []User
	Groups    []Group
	Locations []NamedLocation
	Apps      []string
	// Policies are Graph conditionalAccessPolicy objects, one JSON
	// document each, as an export of /identity/conditionalAccess/policies
	// would hold them.
	Policies []json.RawMessage
	Requests []Request

	userIndex  map[string]int
	transitive [][]int32 // per user: sorted indexes of all groups, direct and inherited
}

// Well-known first-party application ids (as found in real policy exports)
// followed by generated line-of-business apps.
var firstPartyApps = []string{
	"00000002-0000-0ff1-ce00-000000000000", // Exchange Online
	"00000003-0000-0ff1-ce00-000000000000", // SharePoint Online
	"00000003-0000-0000-c000-000000000000", // Microsoft Graph
	"cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", // Microsoft Teams services
	"797f4846-ba00-4fd7-ba43-dac1f8f63013", // Windows Azure Service Management API
	"d4ebce55-015a-49b5-a083-c84d1797ae8c", // Microsoft Intune Enrollment
	"0000000a-0000-0000-c000-000000000000", // Microsoft Intune
	"00000004-0000-0ff1-ce00-000000000000", // Skype for Business Online
	"c44b4083-3bb0-49c1-b47d-974e53cbdf3c", // Azure portal
	"00000007-0000-0000-c000-000000000000", // Dynamics CRM Online
}

var (
	clientAppTypes = []string{"browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"}
	platforms      = []string{"android", "iOS", "windows", "windowsPhone", "macOS", "linux"}
	riskLevels     = []string{"none", "low", "medium", "high"}
	// The grant controls requests claim. Verity cannot verify app
	// protection (approvedApplication, compliantApplication): it ignores
	// claims of them and treats policies requiring them as unsatisfiable,
	// so the generator uses neither.
	grantControls = []string{"mfa", "compliantDevice", "domainJoinedDevice", "passwordChange"}
)

type gen struct {
	r   *rand.Rand
	ds  *Dataset
	cfg Config

	adminRoles   []string // privileged role template ids
	otherRoles   []string
	roleHolders  []int // users with at least one role
	guests       []int
	named        []int // users named in some policy's includeUsers
	targetGroups []int // groups used by policies
	breakGlass   int   // group of emergency access accounts
	exclusion    int   // group of users excluded from most policies
	serviceAccts int   // group of service accounts
}

// Generate builds a deterministic tenant from cfg.
func Generate(cfg Config) *Dataset {
	def := DefaultConfig()
	if cfg.Users == 0 {
		cfg.Users = def.Users
	}
	if cfg.Groups == 0 {
		cfg.Groups = def.Groups
	}
	if cfg.Policies == 0 {
		cfg.Policies = def.Policies
	}
	if cfg.Requests == 0 {
		cfg.Requests = def.Requests
	}
	g := &gen{r: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)), cfg: cfg, ds: &Dataset{Config: cfg}}
	for _, rd := range directory.BuiltinRoles() {
		if rd.IsPrivileged {
			g.adminRoles = append(g.adminRoles, rd.TemplateID)
		} else {
			g.otherRoles = append(g.otherRoles, rd.TemplateID)
		}
	}
	g.apps()
	g.groups()
	g.users()
	g.locations()
	g.ds.closure()
	for i := range cfg.Policies {
		g.ds.Policies = append(g.ds.Policies, g.policy(i))
	}
	for range cfg.Requests {
		g.ds.Requests = append(g.ds.Requests, g.request())
	}
	return g.ds
}

func (g *gen) uuid() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// pick returns a value from vals with the given relative weights.
func pick[T any](r *rand.Rand, vals []T, weights []int) T {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return vals[i]
		}
		n -= w
	}
	return vals[len(vals)-1]
}

// sample returns k distinct elements of vals (k capped at len(vals)).
func sample[T any](r *rand.Rand, vals []T, k int) []T {
	k = min(k, len(vals))
	idx := r.Perm(len(vals))[:k]
	out := make([]T, k)
	for i, j := range idx {
		out[i] = vals[j]
	}
	return out
}

func (g *gen) apps() {
	g.ds.Apps = slices.Clone(firstPartyApps)
	for range 40 {
		g.ds.Apps = append(g.ds.Apps, g.uuid())
	}
}

// groups builds a forest 4 levels deep: level 0 roots (divisions), then
// departments, teams and sub-teams; about 1 in 10 non-root groups has a
// second parent, so the nesting is a DAG, not only a tree.
func (g *gen) groups() {
	n := g.cfg.Groups
	sizes := []int{max(n/125, 1), max(n*9/125, 1), max(n*40/125, 1)}
	sizes = append(sizes, n-sizes[0]-sizes[1]-sizes[2])
	start := 0
	prevStart, prevEnd := 0, 0
	for level, size := range sizes {
		for i := range size {
			grp := Group{ID: g.uuid(), Name: fmt.Sprintf("sg-l%d-%04d", level, i), Level: level}
			if level > 0 {
				grp.Parents = append(grp.Parents, prevStart+g.r.IntN(prevEnd-prevStart))
				if g.chance(0.1) {
					p := prevStart + g.r.IntN(prevEnd-prevStart)
					if p != grp.Parents[0] {
						grp.Parents = append(grp.Parents, p)
					}
				}
			}
			g.ds.Groups = append(g.ds.Groups, grp)
		}
		prevStart, prevEnd = start, start+size
		start += size
	}
	// Three special groups, taken from the roots' level so that they have
	// no parents: emergency access accounts, a policy exclusion group and
	// service accounts.
	g.breakGlass, g.exclusion, g.serviceAccts = 0, 1, 2
	g.ds.Groups[0].Name = "CA-BreakGlassAccounts"
	g.ds.Groups[1].Name = "CA-Exclusions-Permanent"
	g.ds.Groups[2].Name = "CA-ServiceAccounts"
	for i := 3; i < len(g.ds.Groups); i++ {
		g.targetGroups = append(g.targetGroups, i)
	}
}

func (g *gen) users() {
	nGroups := len(g.ds.Groups)
	// Direct memberships go mostly to the two deepest levels.
	l2 := 0
	for i, grp := range g.ds.Groups {
		if grp.Level == 2 {
			l2 = i
			break
		}
	}
	g.ds.userIndex = make(map[string]int, g.cfg.Users)
	for i := range g.cfg.Users {
		u := User{ID: g.uuid()}
		u.Guest = g.chance(0.05)
		if u.Guest {
			u.UPN = fmt.Sprintf("guest%06d_partner.example#EXT#@contoso.onmicrosoft.com", i)
			g.guests = append(g.guests, i)
		} else {
			u.UPN = fmt.Sprintf("user%06d@contoso.example", i)
		}
		k := 3 + g.r.IntN(3)
		for len(u.Direct) < k {
			var grp int
			if g.chance(0.85) {
				// skewed: low indexes of each level are bigger groups
				span := nGroups - l2
				grp = l2 + int(float64(span)*g.r.Float64()*g.r.Float64())
			} else {
				grp = 3 + g.r.IntN(l2-3)
			}
			if !slices.Contains(u.Direct, grp) {
				u.Direct = append(u.Direct, grp)
			}
		}
		if !u.Guest && g.chance(0.01) {
			u.Roles = append(u.Roles, g.adminRoles[g.r.IntN(len(g.adminRoles))])
			if g.chance(0.3) {
				u.Roles = append(u.Roles, g.otherRoles[g.r.IntN(len(g.otherRoles))])
			}
			g.roleHolders = append(g.roleHolders, i)
		}
		g.ds.userIndex[u.ID] = i
		g.ds.Users = append(g.ds.Users, u)
	}
	// Special groups: 2 break-glass accounts (Global Administrators), ~40
	// permanent exclusions, ~200 service accounts.
	for j := range 2 {
		i := j * 7
		u := &g.ds.Users[i]
		u.Guest = false
		u.Direct = append(u.Direct, g.breakGlass)
		u.Roles = append(u.Roles, directory.GlobalAdministratorRoleID)
	}
	for range 40 {
		u := &g.ds.Users[g.r.IntN(len(g.ds.Users))]
		if !slices.Contains(u.Direct, g.exclusion) {
			u.Direct = append(u.Direct, g.exclusion)
		}
	}
	for range 200 {
		u := &g.ds.Users[g.r.IntN(len(g.ds.Users))]
		if !slices.Contains(u.Direct, g.serviceAccts) {
			u.Direct = append(u.Direct, g.serviceAccts)
		}
	}
}

func (g *gen) locations() {
	add := func(name string, trusted bool, cidrs ...string) {
		l := NamedLocation{ID: g.uuid(), Name: name, Trusted: trusted}
		for _, c := range cidrs {
			l.Ranges = append(l.Ranges, netip.MustParsePrefix(c))
		}
		g.ds.Locations = append(g.ds.Locations, l)
	}
	randomNet := func(bits int) string {
		a := netip.AddrFrom4([4]byte{byte(20 + g.r.IntN(180)), byte(g.r.IntN(256)), byte(g.r.IntN(256)), byte(g.r.IntN(256))})
		p, _ := a.Prefix(bits)
		return p.String()
	}
	add("HQ egress", true, "203.0.113.0/24", "198.51.100.0/25", "2001:db8:1000::/48")
	add("Branch offices", true, randomNet(24), randomNet(26), randomNet(27), randomNet(28), randomNet(24))
	add("Datacenter NAT", true, randomNet(28), randomNet(29))
	add("VPN concentrators", true, randomNet(27))
	add("Partner network", false, randomNet(22), randomNet(24))
	add("Blocked ranges", false, randomNet(16), randomNet(18), "192.0.2.0/24")
	add("Tor exits (sample)", false, randomNet(24), randomNet(24), randomNet(24), randomNet(24))
	add("Lab", false, randomNet(20), "2001:db8:2000::/48")
}

// closure computes each user's transitive groups.
func (ds *Dataset) closure() {
	anc := make([][]int32, len(ds.Groups))
	var up func(int) []int32
	up = func(i int) []int32 {
		if anc[i] != nil {
			return anc[i]
		}
		set := []int32{int32(i)}
		for _, p := range ds.Groups[i].Parents {
			set = append(set, up(p)...)
		}
		slices.Sort(set)
		set = slices.Compact(set)
		anc[i] = set
		return set
	}
	ds.transitive = make([][]int32, len(ds.Users))
	for ui, u := range ds.Users {
		var set []int32
		for _, d := range u.Direct {
			set = append(set, up(d)...)
		}
		slices.Sort(set)
		ds.transitive[ui] = slices.Compact(set)
	}
}

// TransitiveGroups returns the indexes of every group the user is a
// member of, directly or through nesting, sorted.
func (ds *Dataset) TransitiveGroups(user int) []int32 { return ds.transitive[user] }

// UserIndex returns the index of the user with this id.
func (ds *Dataset) UserIndex(id string) (int, bool) {
	i, ok := ds.userIndex[id]
	return i, ok
}

// --- policies ---

type usersJSON struct {
	IncludeUsers  []string `json:"includeUsers"`
	ExcludeUsers  []string `json:"excludeUsers"`
	IncludeGroups []string `json:"includeGroups"`
	ExcludeGroups []string `json:"excludeGroups"`
	IncludeRoles  []string `json:"includeRoles"`
	ExcludeRoles  []string `json:"excludeRoles"`
}

type appsJSON struct {
	IncludeApplications []string `json:"includeApplications"`
	ExcludeApplications []string `json:"excludeApplications"`
	IncludeUserActions  []string `json:"includeUserActions"`
}

type platformsJSON struct {
	IncludePlatforms []string `json:"includePlatforms"`
	ExcludePlatforms []string `json:"excludePlatforms"`
}

type locationsJSON struct {
	IncludeLocations []string `json:"includeLocations"`
	ExcludeLocations []string `json:"excludeLocations"`
}

type conditionsJSON struct {
	UserRiskLevels   []string       `json:"userRiskLevels"`
	SignInRiskLevels []string       `json:"signInRiskLevels"`
	ClientAppTypes   []string       `json:"clientAppTypes"`
	Platforms        *platformsJSON `json:"platforms"`
	Locations        *locationsJSON `json:"locations"`
	Applications     appsJSON       `json:"applications"`
	Users            usersJSON      `json:"users"`
}

type grantJSON struct {
	Operator                    string   `json:"operator"`
	BuiltInControls             []string `json:"builtInControls"`
	CustomAuthenticationFactors []string `json:"customAuthenticationFactors"`
	TermsOfUse                  []string `json:"termsOfUse"`
}

type signInFrequencyJSON struct {
	Value              *int    `json:"value"`
	Type               *string `json:"type"`
	AuthenticationType string  `json:"authenticationType"`
	FrequencyInterval  string  `json:"frequencyInterval"`
	IsEnabled          bool    `json:"isEnabled"`
}

type sessionJSON struct {
	SignInFrequency *signInFrequencyJSON `json:"signInFrequency"`
}

type policyJSON struct {
	ID               string         `json:"id"`
	DisplayName      string         `json:"displayName"`
	CreatedDateTime  string         `json:"createdDateTime"`
	ModifiedDateTime *string        `json:"modifiedDateTime"`
	State            string         `json:"state"`
	Conditions       conditionsJSON `json:"conditions"`
	GrantControls    *grantJSON     `json:"grantControls"`
	SessionControls  *sessionJSON   `json:"sessionControls"`
}

func (g *gen) groupIDs(idx ...int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = g.ds.Groups[j].ID
	}
	return out
}

func (g *gen) randomGroups(k int) []string {
	return g.groupIDs(sample(g.r, g.targetGroups, k)...)
}

func (g *gen) randomUsers(k int) []string {
	out := make([]string, k)
	for i := range out {
		ui := g.r.IntN(len(g.ds.Users))
		g.named = append(g.named, ui)
		out[i] = g.ds.Users[ui].ID
	}
	return out
}

func (g *gen) someApps(k int) []string { return sample(g.r, g.ds.Apps, k) }

func grant(op string, controls ...string) *grantJSON {
	return &grantJSON{Operator: op, BuiltInControls: controls, CustomAuthenticationFactors: []string{}, TermsOfUse: []string{}}
}

// policy generates policy number i, from one of a dozen shapes seen in
// real baselines (Microsoft templates, j0eyv, AlexFilipin), with random
// targets and exclusions.
func (g *gen) policy(i int) json.RawMessage {
	p := policyJSON{
		ID:              g.uuid(),
		CreatedDateTime: "2026-01-15T09:30:00Z",
		State:           "enabled",
		Conditions: conditionsJSON{
			UserRiskLevels:   []string{},
			SignInRiskLevels: []string{},
			ClientAppTypes:   []string{"all"},
			Applications:     appsJSON{IncludeApplications: []string{"All"}, ExcludeApplications: []string{}, IncludeUserActions: []string{}},
			Users: usersJSON{IncludeUsers: []string{}, ExcludeUsers: []string{}, IncludeGroups: []string{},
				ExcludeGroups: []string{g.ds.Groups[g.breakGlass].ID}, IncludeRoles: []string{}, ExcludeRoles: []string{}},
		},
	}
	switch s := g.r.Float64(); {
	case s < 0.10:
		p.State = "enabledForReportingButNotEnforced"
	case s < 0.13:
		p.State = "disabled"
	}
	c := &p.Conditions
	u := &c.Users
	allUsers := func() {
		u.IncludeUsers = []string{"All"}
		if g.chance(0.5) {
			u.ExcludeGroups = append(u.ExcludeGroups, g.ds.Groups[g.exclusion].ID)
		}
		if g.chance(0.3) {
			u.ExcludeGroups = append(u.ExcludeGroups, g.ds.Groups[g.serviceAccts].ID)
		}
	}
	untrusted := func() {
		c.Locations = &locationsJSON{IncludeLocations: []string{"All"}, ExcludeLocations: []string{"AllTrusted"}}
	}
	var shape string
	switch k := g.r.IntN(100); {
	case k < 8: // admins: MFA (often phishing-resistant in real tenants; here mfa)
		shape = "Admins-AllApps-MFA"
		u.IncludeRoles = sample(g.r, g.adminRoles, 5+g.r.IntN(25))
		p.GrantControls = grant("OR", "mfa")
	case k < 13: // admins: block from untrusted locations
		shape = "Admins-AllApps-BLOCK-UntrustedLocations"
		u.IncludeRoles = sample(g.r, g.adminRoles, 10+g.r.IntN(20))
		c.ClientAppTypes = []string{"browser", "mobileAppsAndDesktopClients"}
		untrusted()
		p.GrantControls = grant("OR", "block")
	case k < 18: // legacy authentication
		shape = "Global-AllApps-BLOCK-LegacyAuth"
		allUsers()
		c.ClientAppTypes = []string{"exchangeActiveSync", "other"}
		p.GrantControls = grant("OR", "block")
	case k < 28: // everyone: MFA, maybe outside trusted locations
		shape = "Global-AllApps-MFA"
		allUsers()
		if g.chance(0.5) {
			untrusted()
			shape += "-UntrustedLocations"
		}
		if g.chance(0.3) {
			u.ExcludeUsers = append(u.ExcludeUsers, "GuestsOrExternalUsers")
		}
		if g.chance(0.3) {
			c.Applications.ExcludeApplications = g.someApps(1 + g.r.IntN(3))
		}
		p.GrantControls = grant("OR", "mfa")
	case k < 36: // sign-in risk
		allUsers()
		if g.chance(0.5) {
			shape = "Global-AllApps-BLOCK-HighSignInRisk"
			c.SignInRiskLevels = []string{"high"}
			p.GrantControls = grant("OR", "block")
		} else {
			shape = "Global-AllApps-MFA-MediumHighSignInRisk"
			c.SignInRiskLevels = []string{"medium", "high"}
			p.GrantControls = grant("OR", "mfa")
			p.SessionControls = &sessionJSON{SignInFrequency: &signInFrequencyJSON{AuthenticationType: "primaryAndSecondaryAuthentication", FrequencyInterval: "everyTime", IsEnabled: true}}
		}
	case k < 41: // user risk: secure password change
		shape = "Global-AllApps-PasswordChange-HighUserRisk"
		allUsers()
		c.UserRiskLevels = []string{"high"}
		p.GrantControls = grant("AND", "mfa", "passwordChange")
	case k < 56: // groups, specific apps, trusted device
		shape = "Internals-SelectedApps-CompliantOrHybrid"
		u.IncludeGroups = g.randomGroups(1 + g.r.IntN(4))
		c.Applications.IncludeApplications = g.someApps(1 + g.r.IntN(3))
		if g.chance(0.5) {
			c.Platforms = &platformsJSON{IncludePlatforms: []string{"windows", "macOS"}, ExcludePlatforms: []string{}}
			shape += "-WindowsMacOS"
		}
		if g.chance(0.4) {
			p.GrantControls = grant("OR", "compliantDevice", "domainJoinedDevice")
		} else {
			p.GrantControls = grant("AND", "mfa", "compliantDevice")
		}
	case k < 64: // mobile clients: MFA or a compliant device
		shape = "Internals-O365-iOSAndroid-MFAOrCompliant"
		u.IncludeGroups = g.randomGroups(1 + g.r.IntN(3))
		c.Applications.IncludeApplications = []string{firstPartyApps[0], firstPartyApps[1], firstPartyApps[3]}
		c.Platforms = &platformsJSON{IncludePlatforms: []string{"android", "iOS"}, ExcludePlatforms: []string{}}
		c.ClientAppTypes = []string{"mobileAppsAndDesktopClients"}
		p.GrantControls = grant("OR", "mfa", "compliantDevice")
	case k < 71: // guests
		u.IncludeUsers = []string{"GuestsOrExternalUsers"}
		if g.chance(0.5) {
			shape = "Guests-AllApps-MFA"
			c.Applications.ExcludeApplications = g.someApps(g.r.IntN(3))
			p.GrantControls = grant("OR", "mfa")
		} else {
			shape = "Guests-SelectedApps-BLOCK"
			c.Applications.IncludeApplications = g.someApps(2 + g.r.IntN(6))
			p.GrantControls = grant("OR", "block")
		}
	case k < 80: // groups blocked outside trusted or named locations
		shape = "Internals-AllApps-BLOCK-Locations"
		u.IncludeGroups = g.randomGroups(1 + g.r.IntN(5))
		if g.chance(0.5) {
			untrusted()
		} else {
			// include specific untrusted named locations
			var ids []string
			for _, l := range g.ds.Locations {
				if !l.Trusted && g.chance(0.5) {
					ids = append(ids, l.ID)
				}
			}
			if len(ids) == 0 {
				ids = []string{g.ds.Locations[5].ID}
			}
			c.Locations = &locationsJSON{IncludeLocations: ids, ExcludeLocations: []string{}}
			shape += "-Named"
		}
		if g.chance(0.3) {
			c.Applications.IncludeApplications = g.someApps(1 + g.r.IntN(4))
		}
		p.GrantControls = grant("OR", "block")
	case k < 84: // unknown platforms
		shape = "Global-AllApps-BLOCK-UnknownPlatforms"
		allUsers()
		c.Platforms = &platformsJSON{IncludePlatforms: []string{"all"}, ExcludePlatforms: []string{"android", "iOS", "windows", "macOS", "linux", "windowsPhone"}}
		p.GrantControls = grant("OR", "block")
	case k < 90: // named users (pilot rings)
		shape = "Pilot-AllApps-MFAAndCompliant"
		u.IncludeUsers = g.randomUsers(1 + g.r.IntN(20))
		if g.chance(0.5) {
			u.IncludeGroups = g.randomGroups(1)
		}
		p.GrantControls = grant("AND", "mfa", "compliantDevice")
	case k < 94: // Azure management
		shape = "Global-AzureManagement-MFA"
		allUsers()
		c.Applications.IncludeApplications = []string{firstPartyApps[4]}
		p.GrantControls = grant("OR", "mfa")
	case k < 97: // session only: sign-in frequency for unmanaged devices
		shape = "Internals-AllApps-SigninFrequency"
		u.IncludeGroups = g.randomGroups(2)
		c.Platforms = &platformsJSON{IncludePlatforms: []string{"windows", "macOS", "linux"}, ExcludePlatforms: []string{}}
		p.SessionControls = &sessionJSON{SignInFrequency: &signInFrequencyJSON{Value: ptr(12), Type: ptr("hours"), AuthenticationType: "primaryAndSecondaryAuthentication", FrequencyInterval: "timeBased", IsEnabled: true}}
	default: // service accounts from untrusted networks, with role exclusions
		shape = "ServiceAccounts-AllApps-BLOCK-Untrusted"
		u.IncludeGroups = g.groupIDs(g.serviceAccts)
		u.ExcludeRoles = sample(g.r, g.adminRoles, 2)
		untrusted()
		if g.chance(0.5) {
			c.Locations.ExcludeLocations = append(c.Locations.ExcludeLocations, g.ds.Locations[4].ID)
		}
		p.GrantControls = grant("OR", "block")
	}
	// Random per-policy exclusions, as tenants accumulate them.
	if g.chance(0.25) {
		u.ExcludeUsers = append(u.ExcludeUsers, g.randomUsers(1+g.r.IntN(5))...)
	}
	if g.chance(0.15) {
		u.ExcludeGroups = append(u.ExcludeGroups, g.randomGroups(1+g.r.IntN(2))...)
	}
	p.DisplayName = fmt.Sprintf("CA%03d-%s", i, shape)
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

// --- named locations as Graph JSON ---

type ipRangeJSON struct {
	Type        string `json:"@odata.type"`
	CIDRAddress string `json:"cidrAddress"`
}

type namedLocationJSON struct {
	Type        string        `json:"@odata.type"`
	ID          string        `json:"id"`
	DisplayName string        `json:"displayName"`
	IsTrusted   bool          `json:"isTrusted"`
	IPRanges    []ipRangeJSON `json:"ipRanges"`
}

// LocationJSON returns the named location as a Graph ipNamedLocation.
func (l NamedLocation) JSON() json.RawMessage {
	n := namedLocationJSON{Type: "#microsoft.graph.ipNamedLocation", ID: l.ID, DisplayName: l.Name, IsTrusted: l.Trusted}
	for _, r := range l.Ranges {
		t := "#microsoft.graph.iPv4CidrRange"
		if r.Addr().Is6() {
			t = "#microsoft.graph.iPv6CidrRange"
		}
		n.IPRanges = append(n.IPRanges, ipRangeJSON{Type: t, CIDRAddress: r.String()})
	}
	b, _ := json.Marshal(n)
	return b
}

// --- requests ---

func (g *gen) request() Request {
	var ui int
	switch k := g.r.IntN(100); {
	case k < 8 && len(g.roleHolders) > 0:
		ui = g.roleHolders[g.r.IntN(len(g.roleHolders))]
	case k < 14 && len(g.guests) > 0:
		ui = g.guests[g.r.IntN(len(g.guests))]
	case k < 18 && len(g.named) > 0:
		ui = g.named[g.r.IntN(len(g.named))]
	default:
		ui = g.r.IntN(len(g.ds.Users))
	}
	req := Request{UserID: g.ds.Users[ui].ID}
	if g.chance(0.5) {
		req.AppID = firstPartyApps[pick(g.r, []int{0, 1, 2, 3, 4}, []int{30, 25, 20, 20, 5})]
	} else if g.chance(0.95) {
		req.AppID = g.ds.Apps[g.r.IntN(len(g.ds.Apps))]
	} else {
		req.AppID = g.uuid() // an app no policy names
	}
	req.ClientAppType = pick(g.r, clientAppTypes, []int{55, 35, 5, 5})
	req.Platform = pick(g.r, append(slices.Clone(platforms), ""), []int{15, 15, 40, 2, 15, 5, 8})
	switch k := g.r.IntN(100); {
	case k < 35: // inside a named location
		l := g.ds.Locations[g.r.IntN(len(g.ds.Locations))]
		req.IP = randomIn(g.r, l.Ranges[g.r.IntN(len(l.Ranges))])
	case k < 37:
		req.IP = randomIn(g.r, netip.MustParsePrefix("2001:db8:3000::/40"))
	default:
		req.IP = netip.AddrFrom4([4]byte{byte(1 + g.r.IntN(223)), byte(g.r.IntN(256)), byte(g.r.IntN(256)), byte(1 + g.r.IntN(254))})
	}
	req.SignInRisk = pick(g.r, riskLevels, []int{85, 7, 5, 3})
	req.UserRisk = pick(g.r, riskLevels, []int{90, 5, 3, 2})
	probs := []float64{0.5, 0.4, 0.2, 0.03}
	for i, c := range grantControls {
		if g.chance(probs[i]) {
			req.Satisfied = append(req.Satisfied, c)
		}
	}
	return req
}

func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := bits; i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 1 << (7 - i%8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// sortedStrings returns a sorted copy.
func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func ptr[T any](v T) *T { return &v }
