package opabench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

var (
	//go:embed policy.rego
	policyRego string
	//go:embed index.rego
	indexRego string
	//go:embed policy_scan.rego
	policyScanRego string
)

// Variant selects the Rego formulation.
type Variant int

const (
	// Indexed is policy.rego: set algebra over an inverted index of the
	// policies (index.rego), built once at load time.
	Indexed Variant = iota
	// Scan is policy_scan.rego: every policy's conditions checked in turn,
	// straight from the Graph JSON.
	Scan
)

func (v Variant) String() string {
	if v == Scan {
		return "scan"
	}
	return "indexed"
}

// OPA evaluates the conditional access decision in Rego with OPA's Go
// API over a dataset loaded into OPA's in-memory store.
type OPA struct {
	query  rego.PreparedEvalQuery
	inputs []ast.Value // one per request, converted once
}

// OPAData returns the document loaded as data: {"tenant": {"policies",
// "locations", "users"}}. Policies and named locations are the Graph JSON
// unchanged; each user carries its transitive groups and its roles as
// sets (objects whose values are true).
func OPAData(ds *Dataset) (map[string]any, error) {
	policies := make(map[string]any, len(ds.Policies))
	for _, raw := range ds.Policies {
		var p map[string]any
		if err := util.NewJSONDecoder(bytes.NewReader(raw)).Decode(&p); err != nil {
			return nil, err
		}
		policies[p["id"].(string)] = p
	}
	locations := make(map[string]any, len(ds.Locations))
	for _, l := range ds.Locations {
		var v map[string]any
		if err := util.NewJSONDecoder(bytes.NewReader(l.JSON())).Decode(&v); err != nil {
			return nil, err
		}
		locations[l.ID] = v
	}
	users := make(map[string]any, len(ds.Users))
	for i, u := range ds.Users {
		groups := make(map[string]any, len(ds.transitive[i]))
		for _, g := range ds.transitive[i] {
			groups[ds.Groups[g].ID] = true
		}
		roles := make(map[string]any, len(u.Roles))
		for _, r := range u.Roles {
			roles[r] = true
		}
		users[u.ID] = map[string]any{"guest": u.Guest, "groups": groups, "roles": roles}
	}
	return map[string]any{"tenant": map[string]any{"policies": policies, "locations": locations, "users": users}}, nil
}

// OPAInput is the input document of one request.
func OPAInput(r Request) map[string]any {
	sat := make([]any, len(r.Satisfied))
	for i, c := range r.Satisfied {
		sat[i] = c
	}
	return map[string]any{
		"user":          r.UserID,
		"app":           r.AppID,
		"clientAppType": r.ClientAppType,
		"platform":      r.Platform,
		"ip":            r.IP.String(),
		"signInRisk":    r.SignInRisk,
		"userRisk":      r.UserRisk,
		"satisfied":     sat,
	}
}

// NewOPA loads ds into OPA's in-memory store in AST form
// (inmem.NewFromASTObject: reads return AST values, no per-read
// conversion), adds what index.rego builds for the Indexed variant,
// compiles the variant's module and prepares the query data.ca.decision
// once. Inputs are converted to AST values here, once, so that evaluation
// timings do not include the Go-to-AST conversion of the input (Verity's
// requests are likewise built beforehand).
func NewOPA(ctx context.Context, ds *Dataset, v Variant) (*OPA, error) {
	data, err := OPAData(ds)
	if err != nil {
		return nil, err
	}
	module := policyScanRego
	var extra map[string]ast.Value
	if v == Indexed {
		module = policyRego
		tenant := data["tenant"].(map[string]any)
		extra, err = BuildIndex(ctx, tenant["policies"].(map[string]any), tenant["locations"].(map[string]any))
		if err != nil {
			return nil, err
		}
	}
	root, err := ast.InterfaceToValue(data)
	if err != nil {
		return nil, err
	}
	tenant := root.(ast.Object).Get(ast.InternedTerm("tenant")).Value.(ast.Object)
	for k, v := range extra {
		tenant.Insert(ast.StringTerm(k), ast.NewTerm(v))
	}
	store := inmem.NewFromASTObject(root.(ast.Object))
	pq, err := rego.New(
		rego.Query("data.ca.decision"),
		rego.Module("policy.rego", module),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	o := &OPA{query: pq, inputs: make([]ast.Value, len(ds.Requests))}
	for i, r := range ds.Requests {
		v, err := ast.InterfaceToValue(OPAInput(r))
		if err != nil {
			return nil, err
		}
		o.inputs[i] = v
	}
	return o, nil
}

// BuildIndex evaluates index.rego over the policies and named locations
// (keyed by id) and returns what it adds to data.tenant: "index", with
// each list of policy ids ({id: true}) made a Rego set so that
// policy.rego can use set operators on it directly, and "ranges" and
// "trusted" as they are.
func BuildIndex(ctx context.Context, policies, locations map[string]any) (map[string]ast.Value, error) {
	rs, err := rego.New(
		rego.Query(`x := {"index": data.build.index, "ranges": data.build.ranges, "trusted": data.build.trusted}`),
		rego.Module("index.rego", indexRego),
		rego.Store(inmem.NewFromObject(map[string]any{"tenant": map[string]any{"policies": policies, "locations": locations}})),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("index: undefined")
	}
	built := rs[0].Bindings["x"].(map[string]any)
	out := map[string]ast.Value{}
	// index.anyOf is a list of ids; every other entry is a table of them.
	idSet := func(ids map[string]any) *ast.Term {
		set := ast.NewSet()
		for id := range ids {
			set.Add(ast.StringTerm(id))
		}
		return ast.NewTerm(set)
	}
	index := ast.NewObject()
	for name, entry := range built["index"].(map[string]any) {
		if name == "anyOf" {
			index.Insert(ast.StringTerm(name), idSet(entry.(map[string]any)))
			continue
		}
		t := ast.NewObject()
		for key, ids := range entry.(map[string]any) {
			t.Insert(ast.StringTerm(key), idSet(ids.(map[string]any)))
		}
		index.Insert(ast.StringTerm(name), ast.NewTerm(t))
	}
	out["index"] = index
	for _, k := range []string{"ranges", "trusted"} {
		v, err := ast.InterfaceToValue(built[k])
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// Eval evaluates request i of the dataset and returns the raw result.
func (o *OPA) Eval(ctx context.Context, i int) (rego.ResultSet, error) {
	return o.query.Eval(ctx, rego.EvalParsedInput(o.inputs[i]))
}

// Decide evaluates request i and reduces the result to a Decision.
func (o *OPA) Decide(ctx context.Context, i int) (Decision, error) {
	rs, err := o.Eval(ctx, i)
	if err != nil {
		return Decision{}, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("request %d: undefined decision", i)
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("request %d: decision is %T", i, rs[0].Expressions[0].Value)
	}
	d := Decision{Outcome: m["outcome"].(string)}
	d.Enforced = strs(m["enforced"])
	d.ReportOnly = strs(m["reportOnly"])
	for _, c := range m["unmet"].([]any) {
		cs := strs(c)
		slices.Sort(cs)
		d.Unmet = append(d.Unmet, strings.Join(cs, "|"))
	}
	d.normalize()
	return d, nil
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}
