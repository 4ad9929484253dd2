package opabench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/directory"
)

// Directory serves Verity's access.Principals from a generated dataset:
// each user's transitive groups and roles, sorted, computed once (as
// Verity's directory snapshot does).
type Directory struct {
	users map[string]*principal
}

type principal struct {
	groups, roles []string
	guest         bool
}

// NewDirectory indexes ds's users.
func NewDirectory(ds *Dataset) *Directory {
	d := &Directory{users: make(map[string]*principal, len(ds.Users))}
	for i, u := range ds.Users {
		p := &principal{guest: u.Guest, roles: sortedStrings(u.Roles)}
		for _, g := range ds.transitive[i] {
			p.groups = append(p.groups, ds.Groups[g].ID)
		}
		slices.Sort(p.groups)
		d.users[u.ID] = p
	}
	return d
}

// TransitiveMemberOf implements access.Principals.
func (d *Directory) TransitiveMemberOf(id string) []string {
	if p := d.users[id]; p != nil {
		return p.groups
	}
	return nil
}

// DirectoryRoles implements access.Principals.
func (d *Directory) DirectoryRoles(id string) []string {
	if p := d.users[id]; p != nil {
		return p.roles
	}
	return nil
}

// IsGuest implements access.Principals.
func (d *Directory) IsGuest(id string) bool {
	p := d.users[id]
	return p != nil && p.guest
}

// Principal implements access.PrincipalLookup: one map lookup.
func (d *Directory) Principal(id string) (groups, roles []string, guest bool) {
	if p := d.users[id]; p != nil {
		return p.groups, p.roles, p.guest
	}
	return nil, nil, false
}

// Verity evaluates the dataset's requests with Verity's engine.
type Verity struct {
	Engine *access.Engine
	Dir    *Directory
	reqs   []access.Request // as an enforcement point builds them; Resolve not yet called
	state  []string         // per Engine.Policies() entry
	ids    []string
}

var (
	clientApps = map[string]access.ClientApp{"browser": access.ClientAppBrowser,
		"mobileAppsAndDesktopClients": access.ClientAppMobileAndDesktop,
		"exchangeActiveSync":          access.ClientAppExchangeActiveSync, "other": access.ClientAppOther}
	platformValues = map[string]access.Platform{"android": access.PlatformAndroid, "iOS": access.PlatformIOS,
		"windows": access.PlatformWindows, "windowsPhone": access.PlatformWindowsPhone, "macOS": access.PlatformMacOS,
		"linux": access.PlatformLinux, "": access.PlatformUnknown}
	riskValues = map[string]access.RiskLevel{"none": access.RiskNone, "low": access.RiskLow,
		"medium": access.RiskMedium, "high": access.RiskHigh}
)

// NewVerity parses the dataset's policies (as one Graph collection) and
// named locations with Verity's parsers, compiles them and converts the
// requests.
func NewVerity(ds *Dataset) (*Verity, error) {
	var doc strings.Builder
	doc.WriteString(`{"value":[`)
	for i, p := range ds.Policies {
		if i > 0 {
			doc.WriteByte(',')
		}
		doc.Write(p)
	}
	doc.WriteString(`]}`)
	policies, _, err := access.ParsePolicies([]byte(doc.String()))
	if err != nil {
		return nil, fmt.Errorf("parse policies: %w", err)
	}
	var locs []directory.NamedLocation
	for _, l := range ds.Locations {
		r, err := directory.Parse(directory.KindNamedLocation, l.JSON())
		if err != nil {
			return nil, fmt.Errorf("parse named location %s: %w", l.Name, err)
		}
		locs = append(locs, *r.(*directory.NamedLocation))
	}
	engine, err := access.Compile(policies, access.CompileOptions{NamedLocations: locs})
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	v := &Verity{Engine: engine, Dir: NewDirectory(ds)}
	for _, p := range engine.Policies() {
		v.state = append(v.state, p.State)
		v.ids = append(v.ids, p.ID)
	}
	for _, r := range ds.Requests {
		req := access.Request{
			Identity:     access.IdentityUser,
			UserID:       r.UserID,
			Applications: []string{r.AppID},
			ClientApp:    clientApps[r.ClientAppType],
			Platform:     platformValues[r.Platform],
			IP:           r.IP,
			SignInRisk:   riskValues[r.SignInRisk],
			UserRisk:     riskValues[r.UserRisk],
			Device:       &devicefilter.Device{}, // not registered
		}
		for _, c := range r.Satisfied {
			ctl, ok := access.ParseControl(c)
			if !ok {
				return nil, fmt.Errorf("control %q", c)
			}
			req.Satisfied |= ctl
		}
		v.reqs = append(v.reqs, req)
	}
	return v, nil
}

// Eval evaluates request i into res, reusing req: it copies the request
// as the enforcement point built it, resolves the user's groups, roles
// and guest type from the directory, and evaluates.
func (v *Verity) Eval(i int, req *access.Request, res *access.Result) {
	*req = v.reqs[i]
	req.Resolve(v.Dir)
	v.Engine.Evaluate(req, res)
}

// Decide evaluates request i and reduces the result to a Decision: the
// applying enabled and report-only policies, and, for each applying
// enabled policy that does not block and is not satisfied, its unmet
// controls (one requirement per control, or one listing them all when any
// one suffices).
func (v *Verity) Decide(i int) Decision {
	var req access.Request
	var res access.Result
	v.Eval(i, &req, &res)
	d := Decision{Outcome: res.Outcome.String(), Enforced: []string{}, ReportOnly: []string{}}
	for j, pr := range res.Policies {
		if !pr.Applies {
			continue
		}
		if v.state[j] != "enabled" {
			d.ReportOnly = append(d.ReportOnly, v.ids[j])
			continue
		}
		d.Enforced = append(d.Enforced, v.ids[j])
		if pr.Block || pr.Unmet == 0 {
			continue
		}
		names := pr.Unmet.Names()
		if pr.AnyOf {
			slices.Sort(names)
			d.Unmet = append(d.Unmet, strings.Join(names, "|"))
		} else {
			d.Unmet = append(d.Unmet, names...)
		}
	}
	d.normalize()
	return d
}
