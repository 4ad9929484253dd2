package access

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/verityhq/verity/internal/access/devicefilter"
)

// gen draws random policies and requests from a small palette of ids, so
// that random policies and requests overlap often.
type gen struct{ r *rand.Rand }

var (
	genUsers  = []string{alice, bob, "a0000000-0000-4000-8000-000000000003"}
	genGroups = []string{groupG, groupG2, groupChild, "c0000000-0000-4000-8000-000000000013"}
	genRoles  = []string{roleGA, roleReader}
	genApps   = []string{exchange, sharePoint, azurePortal, "99999999-0000-4000-8000-000000000001"}
	genLocs   = []string{locTrusted, locOther, locUS, AllTrusted}
	genIPs    = []netip.Addr{{}, netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("198.51.100.5"), netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("2001:db8:1::9")}
)

func (g gen) coin() bool { return g.r.IntN(2) == 0 }

// some picks a random subset of list, usually small.
func (g gen) some(list []string, max int) []string {
	var out []string
	for _, s := range list {
		if len(out) < max && g.r.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}

func (g gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g gen) policy() *Policy {
	p := &Policy{DisplayName: "random", State: []string{StateEnabled, StateEnabled, StateReportOnly}[g.r.IntN(3)]}
	u := &Users{}
	switch g.r.IntN(4) {
	case 0:
		u.IncludeUsers = []string{All}
	case 1:
		u.IncludeUsers = g.some(genUsers, 2)
	case 2:
		u.IncludeGroups = g.some(genGroups, 2)
	default:
		u.IncludeRoles = g.some(genRoles, 1)
		if g.coin() {
			u.IncludeUsers = []string{GuestsOrExternalUsers}
		}
	}
	if g.r.IntN(4) == 0 {
		u.ExcludeGroups = g.some(genGroups, 1)
	}
	p.Conditions.Users = u
	a := &Applications{IncludeApplications: []string{All}}
	switch g.r.IntN(4) {
	case 0:
		a.IncludeApplications = []string{Office365}
	case 1:
		a.IncludeApplications = []string{g.pick(genApps)}
	}
	p.Conditions.Applications = a
	if g.r.IntN(3) == 0 {
		l := &Locations{IncludeLocations: []string{All}}
		if g.coin() {
			l.IncludeLocations = []string{g.pick(genLocs)}
		} else {
			l.ExcludeLocations = []string{g.pick(genLocs)}
		}
		p.Conditions.Locations = l
	}
	if g.r.IntN(3) == 0 {
		p.Conditions.ClientAppTypes = []string{g.pick(clientAppNames[1:])}
	}
	if g.r.IntN(3) == 0 {
		p.Conditions.Platforms = &Platforms{IncludePlatforms: []string{"all"}, ExcludePlatforms: []string{g.pick(platformNames[1:PlatformUnknown])}}
	}
	if g.r.IntN(3) == 0 {
		p.Conditions.SignInRiskLevels = []string{g.pick([]string{"low", "medium", "high"})}
	}
	if g.r.IntN(4) == 0 {
		p.Conditions.UserRiskLevels = []string{"high"}
	}
	if g.r.IntN(5) == 0 {
		p.Conditions.Devices = &Devices{DeviceFilter: &Filter{Mode: g.pick(filterModes), Rule: "device.isCompliant -eq True"}}
	}
	switch g.r.IntN(5) {
	case 0:
		p.GrantControls = &GrantControls{Operator: "OR", BuiltInControls: []string{"block"}}
	case 1:
		p.GrantControls = &GrantControls{Operator: "OR", BuiltInControls: []string{"mfa", "compliantDevice"}}
	case 2:
		p.GrantControls = &GrantControls{Operator: "AND", BuiltInControls: []string{"mfa", "compliantDevice"}}
	case 3:
		p.GrantControls = &GrantControls{Operator: "OR", AuthenticationStrength: &AuthenticationStrength{ID: StrengthPhishingResistant}}
	default:
		p.GrantControls = &GrantControls{Operator: "OR", BuiltInControls: []string{"mfa"}}
		p.SessionControls = &SessionControls{SignInFrequency: &SignInFrequency{IsEnabled: true, Type: "hours", Value: int32(1 + g.r.IntN(23))}}
	}
	return p
}

func (g gen) request() *Request {
	r := &Request{UserID: g.pick(genUsers), Groups: g.some(genGroups, 3), Roles: g.some(genRoles, 1),
		ClientApp: ClientApp(g.r.IntN(int(numClientApps))), Platform: Platform(g.r.IntN(int(numPlatforms))),
		IP: genIPs[g.r.IntN(len(genIPs))], Country: g.pick([]string{"", "US", "NL"}),
		SignInRisk: RiskLevel(g.r.IntN(4)), UserRisk: RiskLevel(g.r.IntN(4))}
	sortStrings(r.Groups)
	if g.r.IntN(5) == 0 {
		r.GuestType = GuestB2BCollaborationGuest
	}
	if g.r.IntN(8) == 0 {
		r.UserAction = UserActionRegisterSecurityInformation
	} else {
		r.Applications = []string{g.pick(genApps)}
	}
	switch g.r.IntN(4) {
	case 0:
		r.Device = &devicefilter.Device{}
	case 1:
		r.Device = &devicefilter.Device{Registered: true, IsCompliant: boolPtr(g.coin())}
	}
	if g.coin() {
		r.Satisfied = ControlMFA
	}
	if g.r.IntN(4) == 0 {
		r.Methods = MethodFIDO2
	}
	return r
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// exclusions are the ways to narrow a policy.
var exclusions = []func(g gen, p *Policy){
	func(g gen, p *Policy) {
		p.Conditions.Users.ExcludeUsers = append(p.Conditions.Users.ExcludeUsers, g.pick(genUsers))
	},
	func(g gen, p *Policy) {
		p.Conditions.Users.ExcludeGroups = append(p.Conditions.Users.ExcludeGroups, g.pick(genGroups))
	},
	func(g gen, p *Policy) {
		p.Conditions.Users.ExcludeRoles = append(p.Conditions.Users.ExcludeRoles, g.pick(genRoles))
	},
	func(g gen, p *Policy) {
		p.Conditions.Users.ExcludeUsers = append(p.Conditions.Users.ExcludeUsers, GuestsOrExternalUsers)
	},
	func(g gen, p *Policy) {
		p.Conditions.Applications.ExcludeApplications = append(p.Conditions.Applications.ExcludeApplications, g.pick(append(genApps, Office365)))
	},
	func(g gen, p *Policy) {
		if p.Conditions.Locations == nil {
			p.Conditions.Locations = &Locations{IncludeLocations: []string{All}}
		}
		p.Conditions.Locations.ExcludeLocations = append(p.Conditions.Locations.ExcludeLocations, g.pick(genLocs))
	},
	func(g gen, p *Policy) {
		if p.Conditions.Platforms == nil {
			p.Conditions.Platforms = &Platforms{IncludePlatforms: []string{"all"}}
		}
		p.Conditions.Platforms.ExcludePlatforms = append(p.Conditions.Platforms.ExcludePlatforms, g.pick(platformNames[1:PlatformUnknown]))
	},
}

const propertyRounds = 3000

// TestPropertyExclusionNarrows: adding an exclusion never makes a policy
// apply to more sign-ins.
func TestPropertyExclusionNarrows(t *testing.T) {
	t.Parallel()
	g := gen{rand.New(rand.NewPCG(1, 2))}
	opts := CompileOptions{NamedLocations: testLocations, AppGroups: appGroups(t)}
	var before, after Result
	for range propertyRounds {
		p := g.policy()
		q := *p
		qc := p.Conditions
		qu, qa := *p.Conditions.Users, *p.Conditions.Applications
		qu.ExcludeUsers, qu.ExcludeGroups, qu.ExcludeRoles = clone(qu.ExcludeUsers), clone(qu.ExcludeGroups), clone(qu.ExcludeRoles)
		qa.ExcludeApplications = clone(qa.ExcludeApplications)
		qc.Users, qc.Applications = &qu, &qa
		if l := p.Conditions.Locations; l != nil {
			ql := *l
			ql.ExcludeLocations = clone(l.ExcludeLocations)
			qc.Locations = &ql
		}
		if pl := p.Conditions.Platforms; pl != nil {
			qp := *pl
			qp.ExcludePlatforms = clone(pl.ExcludePlatforms)
			qc.Platforms = &qp
		}
		q.Conditions = qc
		exclusions[g.r.IntN(len(exclusions))](g, &q)
		ep, err := Compile([]*Policy{p}, opts)
		if err != nil {
			t.Fatal(err)
		}
		eq, err := Compile([]*Policy{&q}, opts)
		if err != nil {
			continue // the exclusion made the policy invalid
		}
		for range 10 {
			req := g.request()
			ep.Evaluate(req, &before)
			eq.Evaluate(req, &after)
			if after.Policies[0].Applies && !before.Policies[0].Applies {
				t.Fatalf("exclusion widened the policy\nbefore %+v\nafter  %+v\nrequest %+v", p.Conditions, q.Conditions, req)
			}
		}
	}
}

func clone(s []string) []string { return append([]string(nil), s...) }

// TestPropertyBlockWins: an applying enabled block policy always blocks.
// TestPropertyReportOnlyInert: report-only policies never change the
// outcome, the unmet controls or the session controls.
func TestPropertyBlockWinsAndReportOnlyInert(t *testing.T) {
	t.Parallel()
	g := gen{rand.New(rand.NewPCG(3, 4))}
	opts := CompileOptions{NamedLocations: testLocations, AppGroups: appGroups(t)}
	var all, enforced Result
	blocks := 0
	for range propertyRounds / 10 {
		var ps, enabled []*Policy
		for range 1 + g.r.IntN(12) {
			p := g.policy()
			ps = append(ps, p)
			if p.State == StateEnabled {
				enabled = append(enabled, p)
			}
		}
		e, err := Compile(ps, opts)
		if err != nil {
			t.Fatal(err)
		}
		ee, err := Compile(enabled, opts)
		if err != nil {
			t.Fatal(err)
		}
		for range 30 {
			req := g.request()
			e.Evaluate(req, &all)
			for i, pr := range all.Policies {
				if pr.Applies && pr.Block && e.Policies()[i].State == StateEnabled {
					blocks++
					if all.Outcome != OutcomeBlock {
						t.Fatalf("policy %d blocks but the outcome is %v", i, all.Outcome)
					}
				}
			}
			ee.Evaluate(req, &enforced)
			if all.Outcome != enforced.Outcome || all.Unmet != enforced.Unmet || all.Session != enforced.Session {
				t.Fatalf("report-only policies changed the decision: %v %+v; without them %v %+v", &all, all.Session, &enforced, enforced.Session)
			}
		}
	}
	if blocks == 0 {
		t.Fatal("the generator never produced an applying block policy")
	}
}
