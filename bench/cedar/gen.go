package cedarbench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Config sizes a generated tenant. A zero field takes DefaultConfig's value.
type Config struct {
	Seed          uint64
	Users         int
	Groups        int
	Subscriptions int
	Assignments   int
	Requests      int
}

// DefaultConfig is the size the RBAC issue asks for: 100k principals
// (90k users, 10k groups), 1M assignments, 10k requests.
func DefaultConfig() Config {
	return Config{Seed: 1, Users: 90_000, Groups: 10_000, Subscriptions: 100, Assignments: 1_000_000, Requests: 10_000}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Users == 0 {
		c.Users = d.Users
	}
	if c.Groups == 0 {
		c.Groups = d.Groups
	}
	if c.Subscriptions == 0 {
		c.Subscriptions = d.Subscriptions
	}
	if c.Assignments == 0 {
		c.Assignments = d.Assignments
	}
	if c.Requests == 0 {
		c.Requests = d.Requests
	}
	return c
}

// Provider operations (`az provider operation show`) for the namespaces
// the generated resources live in, from Verity's RBAC test data.
const operationsDir = "../../internal/rbac/testdata/provider-operations"

// Resource kinds: where they live in the tree and the operation prefix
// their requests draw from.
var kinds = []struct {
	name, provider, typ, prefix string
	children                    []string // child segments: "type/name-prefix"; one level per entry
}{
	{"storage", "Microsoft.Storage", "storageAccounts", "microsoft.storage/", []string{"blobServices/default", "containers/c"}},
	{"queue", "Microsoft.Storage", "storageAccounts", "microsoft.storage/", []string{"queueServices/default", "queues/q"}},
	{"vault", "Microsoft.KeyVault", "vaults", "microsoft.keyvault/", []string{"secrets/s"}},
	{"vm", "Microsoft.Compute", "virtualMachines", "microsoft.compute/", []string{"extensions/ext"}},
	{"vnet", "Microsoft.Network", "virtualNetworks", "microsoft.network/", []string{"subnets/sn"}},
}

// Roles most assignments use, by name (the rest are drawn uniformly from
// all built-in and custom roles).
var popularRoles = []string{
	"Reader", "Contributor", "Owner", "User Access Administrator",
	"Storage Blob Data Reader", "Storage Blob Data Contributor", "Storage Account Contributor",
	"Storage Queue Data Contributor", "Key Vault Secrets User", "Key Vault Administrator",
	"Key Vault Reader", "Virtual Machine Contributor", "Network Contributor",
	"Virtual Machine User Login", "Monitoring Reader", "Role Based Access Control Administrator",
}

// customRoles are a few tenant-defined roles with wildcards and
// NotActions / NotDataActions.
func customRoles(g *gen) []Role {
	mk := func(name string, p Permission) Role {
		return Role{Name: g.uuid(), RoleName: name, Custom: true, Permissions: []Permission{p}}
	}
	return []Role{
		mk("Storage Operator (custom)", Permission{Actions: []string{"Microsoft.Storage/*", "*/read"}, NotActions: []string{"Microsoft.Storage/*/delete"},
			DataActions: []string{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"}}),
		mk("VM Operator (custom)", Permission{Actions: []string{"Microsoft.Compute/virtualMachines/*", "Microsoft.Network/*/read"},
			NotActions: []string{"Microsoft.Compute/virtualMachines/delete", "Microsoft.Compute/virtualMachines/*/delete"}}),
		mk("Network Reader (custom)", Permission{Actions: []string{"Microsoft.Network/*/read"}}),
		mk("Secrets Reader (custom)", Permission{Actions: []string{"Microsoft.KeyVault/vaults/read"},
			DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}, NotDataActions: []string{"Microsoft.KeyVault/vaults/secrets/setSecret/action", "Microsoft.KeyVault/vaults/secrets/delete"}}),
		mk("Auditor (custom)", Permission{Actions: []string{"*/read"}, NotActions: []string{"Microsoft.KeyVault/*", "Microsoft.Authorization/*"}}),
	}
}

type gen struct {
	r   *rand.Rand
	cfg Config
	ds  *Dataset

	children   [][]int32 // per scope
	byKind     map[string][]string
	dataByKind map[string][]string
	isData     map[string]bool
	roleIdx    map[string]int32 // lower-case role name → index
	popular    []int32
	assignOf   [][]int32 // per principal: its assignment indexes
	denyScopes []int32
	breakGlass int32
}

// Generate builds a deterministic tenant from cfg.
func Generate(cfg Config) (*Dataset, error) {
	cfg = cfg.withDefaults()
	g := &gen{r: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)), cfg: cfg,
		ds: &Dataset{Config: cfg, scopeIndex: map[string]int32{}}}
	g.ds.Roles = builtinRoles()
	if len(g.ds.Roles) < 900 {
		return nil, fmt.Errorf("only %d built-in roles from Verity", len(g.ds.Roles))
	}
	g.ds.Roles = append(g.ds.Roles, customRoles(g)...)
	g.roleIdx = map[string]int32{}
	for i, r := range g.ds.Roles {
		g.roleIdx[strings.ToLower(r.RoleName)] = int32(i)
	}
	for _, n := range popularRoles {
		i, ok := g.roleIdx[strings.ToLower(n)]
		if !ok {
			return nil, fmt.Errorf("no built-in role %q", n)
		}
		g.popular = append(g.popular, i)
	}
	if err := g.operations(); err != nil {
		return nil, err
	}
	g.principals()
	g.scopes()
	g.assignments()
	g.denies()
	g.requests()
	return g.ds, nil
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

var actionMatchesRE = regexp.MustCompile(`ActionMatches\{'([^']+)'\}`)

// operations reads the real operation names of the resource kinds'
// namespaces. Operations an ABAC condition of a built-in role targets
// (ActionMatches) are left out, so no request depends on request or
// resource attributes (see conditionGrants).
func (g *gen) operations() error {
	targeted := map[string]bool{}
	for _, r := range g.ds.Roles {
		for _, p := range r.Permissions {
			for _, m := range actionMatchesRE.FindAllStringSubmatch(p.Condition, -1) {
				targeted[strings.ToLower(m[1])] = true
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(operationsDir, "*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("provider operations in %s: %v", operationsDir, err)
	}
	type op struct {
		Name         string `json:"name"`
		IsDataAction bool   `json:"isDataAction"`
	}
	var doc struct {
		Operations    []op `json:"operations"`
		ResourceTypes []struct {
			Operations []op `json:"operations"`
		} `json:"resourceTypes"`
	}
	g.isData = map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		doc.Operations, doc.ResourceTypes = nil, nil
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		ops := doc.Operations
		for _, rt := range doc.ResourceTypes {
			ops = append(ops, rt.Operations...)
		}
		for _, o := range ops {
			n := strings.ToLower(o.Name)
			if targeted[n] || strings.Contains(n, "*") {
				continue
			}
			if _, dup := g.isData[n]; !dup {
				g.isData[n] = o.IsDataAction
			}
		}
	}
	for n, d := range g.isData {
		if d {
			g.ds.DataActions = append(g.ds.DataActions, n)
		} else {
			g.ds.Actions = append(g.ds.Actions, n)
		}
	}
	slices.Sort(g.ds.Actions)
	slices.Sort(g.ds.DataActions)
	g.byKind, g.dataByKind = map[string][]string{}, map[string][]string{}
	for _, k := range kinds {
		for _, a := range g.ds.Actions {
			if strings.HasPrefix(a, k.prefix) {
				g.byKind[k.name] = append(g.byKind[k.name], a)
			}
		}
		for _, a := range g.ds.DataActions {
			if strings.HasPrefix(a, k.prefix) {
				g.dataByKind[k.name] = append(g.dataByKind[k.name], a)
			}
		}
	}
	for _, a := range g.ds.Actions {
		if strings.HasPrefix(a, "microsoft.authorization/") {
			g.byKind[""] = append(g.byKind[""], a)
		}
	}
	return nil
}

// principals: groups first (a forest three levels deep: 4 % roots, 26 %
// second level, 70 % third level, some with a second parent), then users,
// each a direct member of one to three groups.
func (g *gen) principals() {
	ng, nu := g.cfg.Groups, g.cfg.Users
	roots, second := max(1, ng*4/100), max(1, ng*26/100)
	for i := range ng {
		p := Principal{ID: g.uuid(), Group: true}
		switch {
		case i < roots:
		case i < roots+second:
			p.Parents = []int32{int32(g.r.IntN(roots))}
		default:
			p.Parents = []int32{int32(roots + g.r.IntN(second))}
			if g.chance(0.1) {
				p.Parents = append(p.Parents, int32(roots+g.r.IntN(second)))
			}
		}
		g.ds.Principals = append(g.ds.Principals, p)
	}
	g.breakGlass = 0
	for range nu {
		p := Principal{ID: g.uuid()}
		for range 1 + g.r.IntN(3) {
			grp := int32(roots + g.r.IntN(ng-roots))
			if !slices.Contains(p.Parents, grp) {
				p.Parents = append(p.Parents, grp)
			}
		}
		g.ds.Principals = append(g.ds.Principals, p)
	}
}

func (g *gen) addScope(path string, parent int32, kind string) int32 {
	i := int32(len(g.ds.Scopes))
	d := 1
	if parent >= 0 {
		d = g.ds.Scopes[parent].Depth + 1
		g.children[parent] = append(g.children[parent], i)
	}
	g.ds.Scopes = append(g.ds.Scopes, Scope{Path: path, Parent: parent, Depth: d, Kind: kind})
	g.children = append(g.children, nil)
	g.ds.scopeIndex[strings.ToLower(path)] = i
	return i
}

// scopes: "/" → subscriptions → 20 resource groups each → 12 resources
// each → child resources (blob or queue service, secrets, VM extensions,
// subnets) → containers and queues: six levels.
func (g *gen) scopes() {
	root := g.addScope("/", -1, "")
	for range g.cfg.Subscriptions {
		sub := g.addScope("/subscriptions/"+g.uuid(), root, "")
		for j := range 20 {
			rgPath := fmt.Sprintf("%s/resourceGroups/rg-%02d", g.ds.Scopes[sub].Path, j)
			rg := g.addScope(rgPath, sub, "")
			for k := range 12 {
				kd := kinds[g.r.IntN(len(kinds))]
				res := g.addScope(fmt.Sprintf("%s/providers/%s/%s/%s%d", rgPath, kd.provider, kd.typ, kd.name, k), rg, kd.name)
				g.childScopes(res, kd.children, kd.name)
			}
		}
	}
}

func (g *gen) childScopes(parent int32, segs []string, kind string) {
	if len(segs) == 0 {
		return
	}
	seg := segs[0]
	n := 1
	if !strings.HasSuffix(seg, "/default") {
		n = 1 + g.r.IntN(3)
	}
	for i := range n {
		p := g.ds.Scopes[parent].Path + "/" + seg
		if n > 1 || !strings.HasSuffix(seg, "/default") {
			p += fmt.Sprint(i)
		}
		c := g.addScope(p, parent, kind)
		g.childScopes(c, segs[1:], kind)
	}
}

// randomScope picks a scope at the given depth (2..6), or the deepest
// below a random resource if none exists at that depth there.
func (g *gen) descend(s int32, depth int) int32 {
	for g.ds.Scopes[s].Depth < depth && len(g.children[s]) > 0 {
		c := g.children[s]
		s = c[g.r.IntN(len(c))]
	}
	return s
}

func (g *gen) randomScope(depth int) int32 {
	root := int32(0)
	return g.descend(root, depth)
}

// assignments: 30 % to groups, 70 % to users; 55 % one of the popular
// roles, 43 % any built-in role, 2 % a custom role; scope depth: "/" rare,
// subscriptions 8 %, resource groups 35 %, resources 37 %, child resources
// 15 %, containers and queues 5 %.
func (g *gen) assignments() {
	ng := g.cfg.Groups
	np := len(g.ds.Principals)
	nb := len(g.ds.Roles) - 5
	g.assignOf = make([][]int32, np)
	depths := []int{1, 2, 3, 4, 5, 6}
	weights := []int{1, 800, 3500, 3700, 1500, 499}
	for i := range g.cfg.Assignments {
		var p int32
		if g.chance(0.3) {
			p = int32(1 + g.r.IntN(ng-1)) // group 0 is the break-glass group: no roles
		} else {
			p = int32(ng + g.r.IntN(np-ng))
		}
		var role int32
		switch x := g.r.Float64(); {
		case x < 0.55:
			role = g.popular[g.r.IntN(len(g.popular))]
		case x < 0.98:
			role = int32(g.r.IntN(nb))
		default:
			role = int32(nb + g.r.IntN(5))
		}
		depth := pick(g.r, depths, weights)
		if depth == 1 && g.ds.Roles[role].Custom {
			depth = 2 // custom roles cannot be assigned at "/"
		}
		s := g.randomScope(depth)
		g.ds.Assignments = append(g.ds.Assignments, Assignment{PrincipalID: g.ds.Principals[p].ID, Principal: p, Role: role, Scope: s})
		g.assignOf[p] = append(g.assignOf[p], int32(i))
	}
}

// denies: a handful of deny assignments in the shapes Azure creates
// (deployment stack and managed application locks, blueprint locks):
// everyone except the break-glass group, or named groups; wildcards and
// NotActions; one that does not apply to child scopes.
func (g *gen) denies() {
	subs := g.children[0]
	rgOf := func(sub int32) int32 { c := g.children[sub]; return c[g.r.IntN(len(c))] }
	add := func(d Deny) {
		d.ID = g.uuid()
		g.ds.Denies = append(g.ds.Denies, d)
		g.denyScopes = append(g.denyScopes, d.Scope)
	}
	grp := func() int32 { return int32(1 + g.r.IntN(g.cfg.Groups-1)) }
	add(Deny{Name: "Deny delete (deployment stack)", Scope: subs[0], Everyone: true, Exclude: []int32{g.breakGlass},
		Permission: Permission{Actions: []string{"*/delete"}}})
	add(Deny{Name: "Read-only lock (managed application)", Scope: rgOf(subs[1]), Everyone: true, Exclude: []int32{g.breakGlass},
		Permission: Permission{Actions: []string{"*"}, NotActions: []string{"*/read"}}})
	add(Deny{Name: "No blob data for contractors", Scope: subs[2], Principals: []int32{grp(), grp(), grp()},
		Permission: Permission{DataActions: []string{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"},
			NotDataActions: []string{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"}}})
	add(Deny{Name: "Protect key vaults", Scope: subs[3], Everyone: true, Exclude: []int32{g.breakGlass, grp()},
		Permission: Permission{Actions: []string{"Microsoft.KeyVault/vaults/*"}, NotActions: []string{"Microsoft.KeyVault/vaults/read"},
			DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}})
	add(Deny{Name: "No network writes at this resource group", Scope: rgOf(subs[4]), DoNotApplyToChildScopes: true, Everyone: true, Exclude: []int32{g.breakGlass},
		Permission: Permission{Actions: []string{"Microsoft.Network/*/write", "Microsoft.Network/*/delete"}}})
	add(Deny{Name: "No VM power actions", Scope: subs[5], Principals: []int32{grp(), grp()},
		Permission: Permission{Actions: []string{"Microsoft.Compute/virtualMachines/*/action"}}})
}

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

// requests: a user (group 0 members aside, any user); 60 % follow one of
// the user's own or group assignments down to a scope at or below it, 10 %
// land under a deny assignment's scope, 30 % anywhere. The scope is a leaf
// (child resource, container or queue) 60 % of the time, else a resource or
// resource group. The action is a real operation of the scope's resource
// kind (a data action 35 % of the time where the kind has any), chosen
// among those the assignment's role grants 80 % of the time.
func (g *gen) requests() {
	ng := g.cfg.Groups
	np := len(g.ds.Principals)
	// Group 0 is the break-glass group: a few users join it.
	for range 20 {
		u := ng + g.r.IntN(np-ng)
		g.ds.Principals[u].Parents = append(g.ds.Principals[u].Parents, g.breakGlass)
	}
	for range g.cfg.Requests {
		u := int32(ng + g.r.IntN(np-ng))
		var s int32
		var role int32 = -1
		leaf := g.chance(0.6)
		depth := 3 + g.r.IntN(2)
		if leaf {
			depth = 6
		}
		switch x := g.r.Float64(); {
		case x < 0.6:
			mine := g.effective(u)
			if len(mine) == 0 {
				s = g.randomScope(depth)
				break
			}
			a := g.ds.Assignments[mine[g.r.IntN(len(mine))]]
			role = a.Role
			s = g.descend(a.Scope, max(depth, g.ds.Scopes[a.Scope].Depth))
		case x < 0.7:
			s = g.descend(g.denyScopes[g.r.IntN(len(g.denyScopes))], depth)
		default:
			s = g.randomScope(depth)
		}
		kind := g.ds.Scopes[s].Kind
		if kind == "" && depth >= 4 {
			// A subscription or resource group without resources: never
			// happens with this tree, but keep the request well-formed.
			kind = ""
		}
		data := len(g.dataByKind[kind]) > 0 && g.chance(0.35)
		list := g.byKind[kind]
		if data {
			list = g.dataByKind[kind]
		}
		if kind == "" || g.chance(0.08) {
			list, data = g.byKind[""], false
		}
		action := list[g.r.IntN(len(list))]
		if role >= 0 && g.chance(0.8) {
			for range 30 {
				c := list[g.r.IntN(len(list))]
				if g.roleGrants(role, c, data) {
					action = c
					break
				}
			}
		}
		g.ds.Requests = append(g.ds.Requests, Request{Principal: u, Action: action, Data: data, Scope: s})
	}
}

func (g *gen) roleGrants(role int32, action string, data bool) bool {
	for _, p := range g.ds.Roles[role].Permissions {
		if conditionGrants(p.Condition) && p.grants(action, data) {
			return true
		}
	}
	return false
}

// effective lists the assignments of u and of its groups, transitively.
func (g *gen) effective(u int32) []int32 {
	var out []int32
	for _, p := range g.ds.closure(u) {
		out = append(out, g.assignOf[p]...)
	}
	return out
}

// closure returns p and every group it is a member of, directly or not.
func (ds *Dataset) closure(p int32) []int32 {
	out := []int32{p}
	for i := 0; i < len(out); i++ {
		for _, q := range ds.Principals[out[i]].Parents {
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}
