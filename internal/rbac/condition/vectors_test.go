package condition

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// abacVectors is the abacConditions section of testdata/rbac-vectors.json.
type abacVectors struct {
	Source              string `json:"source"`
	ConditionEvaluation []struct {
		Condition string            `json:"condition"`
		Request   map[string]string `json:"request"`
		Result    bool              `json:"result"`
	} `json:"conditionEvaluation"`
	ActionMatches []struct {
		Pattern, Action string
		Result          bool
	} `json:"actionMatches"`
	StringLike []struct {
		Pattern, Value, Op string
		Result             bool
	} `json:"stringLike"`
	CrossProduct []struct {
		LHS    []json.RawMessage `json:"lhs"`
		Op     string            `json:"op"`
		RHS    []json.RawMessage `json:"rhs"`
		Result bool              `json:"result"`
	} `json:"crossProduct"`
}

func loadVectors(t *testing.T) abacVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/rbac-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		ABAC abacVectors `json:"abacConditions"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	return file.ABAC
}

// vectorAttributes maps the request keys of the conditionEvaluation vectors
// to the attributes their condition reads.
var vectorAttributes = map[string]struct {
	src  Source
	name string
}{
	"container": {SourceResource, "Microsoft.Storage/storageAccounts/blobServices/containers:name"},
}

func TestVectorsConditionEvaluation(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	if len(v.ConditionEvaluation) == 0 {
		t.Fatal("no conditionEvaluation vectors")
	}
	prev := ""
	for i, vec := range v.ConditionEvaluation {
		expr := vec.Condition
		if expr == "same" {
			expr = prev
		}
		prev = expr
		t.Run(fmt.Sprintf("conditionEvaluation/%d", i), func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, expr)
			req := &Request{}
			for k, val := range vec.Request {
				if k == "action" {
					req.Action = val
					continue
				}
				a, ok := vectorAttributes[k]
				if !ok {
					t.Fatalf("vector request key %q has no attribute mapping", k)
				}
				attrs := Attributes{a.name: Strings(val)}
				switch a.src {
				case SourceResource:
					req.Resource = attrs
				default:
					t.Fatalf("unmapped source %v", a.src)
				}
			}
			got, err := c.Evaluate(req)
			if err != nil || got != vec.Result {
				t.Fatalf("Evaluate(%+v) = %v, %v; want %v", vec.Request, got, err, vec.Result)
			}
		})
	}
}

func TestVectorsActionMatches(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	if len(v.ActionMatches) == 0 {
		t.Fatal("no actionMatches vectors")
	}
	for i, vec := range v.ActionMatches {
		t.Run(fmt.Sprintf("actionMatches/%d", i), func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, "ActionMatches{"+quote(vec.Pattern)+"}")
			got, err := c.Evaluate(&Request{Action: vec.Action})
			if err != nil || got != vec.Result {
				t.Fatalf("ActionMatches{%q} on %q = %v, %v; want %v", vec.Pattern, vec.Action, got, err, vec.Result)
			}
		})
	}
}

func TestVectorsStringLike(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	if len(v.StringLike) == 0 {
		t.Fatal("no stringLike vectors")
	}
	for i, vec := range v.StringLike {
		t.Run(fmt.Sprintf("stringLike/%d", i), func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, "@Request[x] "+vec.Op+" "+quote(vec.Pattern))
			got, err := c.Evaluate(&Request{Request: Attributes{"x": Strings(vec.Value)}})
			if err != nil || got != vec.Result {
				t.Fatalf("%q %s %q = %v, %v; want %v", vec.Value, vec.Op, vec.Pattern, got, err, vec.Result)
			}
		})
	}
}

// TestVectorsCrossProduct runs each cross-product vector three ways: the
// left values as strings converted at evaluation, as typed values, and the
// right values read from a second attribute instead of a set literal.
func TestVectorsCrossProduct(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	if len(v.CrossProduct) == 0 {
		t.Fatal("no crossProduct vectors")
	}
	for i, vec := range v.CrossProduct {
		t.Run(fmt.Sprintf("crossProduct/%d", i), func(t *testing.T) {
			t.Parallel()
			lhs, lhsTyped := jsonValues(t, vec.LHS)
			rhs, _ := jsonValues(t, vec.RHS)
			lits := make([]string, len(rhs))
			for j, s := range rhs {
				if strings.Contains(vec.Op, ":String") {
					s = quote(s)
				}
				lits[j] = s
			}
			set := mustParse(t, "@Resource[Microsoft.Test/things:colour] "+vec.Op+" {"+strings.Join(lits, ", ")+"}")
			attr := mustParse(t, "@Resource[Microsoft.Test/things:colour] "+vec.Op+" @Request[Microsoft.Test/things:colour]")
			for _, tc := range []struct {
				name string
				c    *Condition
				req  *Request
			}{
				{"strings", set, &Request{Resource: Attributes{"Microsoft.Test/things:colour": Strings(lhs...)}}},
				{"typed", set, &Request{Resource: Attributes{"Microsoft.Test/things:colour": lhsTyped}}},
				{"attribute", attr, &Request{
					Resource: Attributes{"Microsoft.Test/things:colour": Strings(lhs...)},
					Request:  Attributes{"Microsoft.Test/things:colour": Strings(rhs...)},
				}},
			} {
				got, err := tc.c.Evaluate(tc.req)
				if err != nil || got != vec.Result {
					t.Errorf("%s: %v %s %v = %v, %v; want %v", tc.name, lhs, vec.Op, rhs, got, err, vec.Result)
				}
			}
		})
	}
}

// jsonValues turns JSON strings and integers into their text and into typed
// values.
func jsonValues(t *testing.T, raws []json.RawMessage) ([]string, []Value) {
	t.Helper()
	var text []string
	var typed []Value
	for _, r := range raws {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			text, typed = append(text, s), append(typed, String(s))
			continue
		}
		n, err := strconv.ParseInt(string(r), 10, 64)
		if err != nil {
			t.Fatalf("vector value %s is neither a string nor an integer", r)
		}
		text, typed = append(text, string(r)), append(typed, Number(n))
	}
	return text, typed
}

func mustParse(tb testing.TB, expr string) *Condition {
	tb.Helper()
	c, err := Parse(expr)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", expr, err)
	}
	return c
}
