package condition

import (
	"errors"
	"testing"
)

func TestMissingAttributesFailClosed(t *testing.T) {
	t.Parallel()
	empty := &Request{Resource: Attributes{"present": Strings("v"), "none": {}}}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"@Resource[absent] StringEquals 'v'", false},
		{"@Resource[absent] StringNotEquals 'v'", false},
		{"@Resource[absent] GuidNotEquals 8e3af657-a8ff-443c-a75c-2fe8c4bcb635", false},
		{"@Resource[absent] ForAllOfAnyValues:StringEquals {'v'}", false},
		{"@Resource[absent] ForAllOfAllValues:StringNotEquals {'v'}", false},
		{"@Resource[none] ForAllOfAnyValues:StringEquals {'v'}", false},
		{"@Resource[present] StringEquals @Request[absent]", false},
		{"!(@Resource[absent] StringEquals 'v')", true},
		{"Exists @Resource[absent]", false},
		{"Exists @Resource[none]", false},
		{"Exists @Resource[PRESENT]", true},
		{"NotExists @Resource[absent]", true},
		{"NotExists @Resource[absent] OR @Resource[absent] StringNotEquals 'v'", true},
		{"SubOperationMatches{'Blob.List'}", false},
	} {
		got, err := mustParse(t, tc.expr).Evaluate(empty)
		if err != nil || got != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	if got, err := mustParse(t, "NotExists @Request[x]").Evaluate(nil); !got || err != nil {
		t.Errorf("nil request: NotExists = %v, %v; want true", got, err)
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	req := &Request{
		Resource: Attributes{
			"tags":   Strings("a", "b"),
			"count":  Strings("many"),
			"num":    []Value{Number(3)},
			"single": Strings("x"),
		},
	}
	for _, tc := range []struct {
		expr string
		want error
	}{
		{"@Resource[tags] StringEquals 'a'", ErrMultiValued},
		{"@Resource[single] StringEquals @Resource[tags]", ErrMultiValued},
		{"@Resource[count] NumericLessThan 5", ErrType},
		{"@Resource[num] StringEquals '3'", ErrType},
		{"@Resource[single] ForAnyOfAnyValues:GuidEquals {acdd72a7-3385-48ef-bd42-f606fba81ae7}", ErrType},
		{"@Resource[single] BoolEquals true", ErrType},
		{"@Resource[single] DateTimeLessThan '2026-01-01T00:00:00Z'", ErrType},
		{"@Resource[num] NumericEquals @Resource[single]", ErrType},
	} {
		got, err := mustParse(t, tc.expr).Evaluate(req)
		if got || !errors.Is(err, tc.want) {
			t.Errorf("%s = %v, %v; want false, %v", tc.expr, got, err, tc.want)
		}
	}
	// Short circuit: an operand that is not reached is not evaluated.
	if got, err := mustParse(t, "Exists @Resource[single] OR @Resource[count] NumericLessThan 5").Evaluate(req); !got || err != nil {
		t.Errorf("short circuit: %v, %v", got, err)
	}
}

func TestOperators(t *testing.T) {
	t.Parallel()
	req := &Request{
		Resource: Attributes{
			"s":    Strings("Finance/Reports"),
			"n":    Strings("42"),
			"b":    Strings("false"),
			"g":    Strings("ACDD72A7338548EFBD42F606FBA81AE7"),
			"u":    Strings("Straße"),
			"tags": Strings("red", "blue"),
		},
		Principal: Attributes{"Microsoft.Directory/CustomSecurityAttributes/Id:Project": Strings("Cascade")},
	}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"@Resource[s] StringEquals 'Finance/Reports'", true},
		{"@Resource[s] StringEquals 'finance/reports'", false},
		{"@Resource[s] StringEqualsIgnoreCase 'finance/reports'", true},
		{"@Resource[s] StringNotEqualsIgnoreCase 'finance/reports'", false},
		{"@Resource[s] StringStartsWith 'Finance/'", true},
		{"@Resource[s] StringStartsWith 'finance/'", false},
		{"@Resource[s] StringStartsWithIgnoreCase 'FINANCE/'", true},
		{"@Resource[s] StringNotStartsWith 'HR/'", true},
		{"@Resource[s] StringLike 'Fin*/Rep?rts'", true},
		{"@Resource[s] StringNotLike 'Fin*'", false},
		{"@Resource[s] StringLikeIgnoreCase 'fin*reports'", true},
		{"@Resource[s] StringNotLikeIgnoreCase 'hr*'", true},
		{"@Resource[u] StringLike 'Stra?e'", true},
		{"@Resource[u] StringEqualsIgnoreCase 'STRASSE'", false}, // simple folding only, as strings.EqualFold
		{"@Resource[n] NumericEquals 42", true},
		{"@Resource[n] NumericNotEquals 42", false},
		{"@Resource[n] NumericLessThan 43", true},
		{"@Resource[n] NumericLessThanEquals 42", true},
		{"@Resource[n] NumericGreaterThan 42", false},
		{"@Resource[n] NumericGreaterThanEquals -1", true},
		{"@Resource[b] BoolEquals false", true},
		{"@Resource[b] BoolNotEquals false", false},
		{"@Resource[g] GuidEquals 'acdd72a7-3385-48ef-bd42-f606fba81ae7'", true},
		{"@Resource[g] GuidNotEquals acdd72a7-3385-48ef-bd42-f606fba81ae7", false},
		{"@Resource[tags] ForAnyOfAnyValues:StringEquals 'blue'", true},
		{"@Resource[tags] ForAllOfAnyValues:StringEquals 'blue'", false},
		{"@Resource[tags] ForAllOfAllValues:StringNotEquals {'green', 'orange'}", true},
		{"@Resource[tags] ForAnyOfAllValues:StringNotEquals {'red', 'green'}", true},
		{"@Resource[tags] ForAllOfAllValues:StringNotEquals {'red', 'green'}", false},
		// Comparing with another attribute (principal custom security attribute).
		{"@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Project] StringEquals 'Cascade'", true},
		{"@Resource[s] StringEquals @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Project]", false},
		{"ActionMatches{'*'}", true},
	} {
		got, err := mustParse(t, tc.expr).Evaluate(req)
		if err != nil || got != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
}

func TestKeyCaseSensitive(t *testing.T) {
	t.Parallel()
	const tag = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project"
	sens := mustParse(t, "@Resource["+tag+"<$key_case_sensitive$>] StringEquals 'Cascade'")
	insens := mustParse(t, "@Resource["+tag+"] StringEquals 'Cascade'")
	for _, tc := range []struct {
		key         string
		sens, insen bool
	}{
		{tag, true, true},
		{"microsoft.storage/storageaccounts/blobservices/containers/blobs/TAGS:Project", true, true},
		{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:project", false, true},
	} {
		req := &Request{Resource: Attributes{tc.key: Strings("Cascade")}}
		if got, _ := sens.Evaluate(req); got != tc.sens {
			t.Errorf("case-sensitive key, attribute %q: %v, want %v", tc.key, got, tc.sens)
		}
		if got, _ := insens.Evaluate(req); got != tc.insen {
			t.Errorf("case-insensitive key, attribute %q: %v, want %v", tc.key, got, tc.insen)
		}
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"*", "", false, true},
		{"a*", "a", false, true},
		{"*/read", "Microsoft.Compute/virtualMachines/read", false, true},
		{"Microsoft.Network/*/read", "Microsoft.Network/a/b/read", false, true},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{`a\?c`, "abc", false, false},
		{`a\?c`, "a?c", false, true},
		{`a\b`, `a\b`, false, true},
		{"ABC", "abc", true, true},
		{"ÄB*", "äbc", true, true},
	} {
		if got := like(tc.pat, tc.s, tc.fold); got != tc.want {
			t.Errorf("like(%q, %q, %v) = %v, want %v", tc.pat, tc.s, tc.fold, got, tc.want)
		}
	}
	if actionMatches("a?c", "abc") {
		t.Error("ActionMatches treats '?' as a wildcard")
	}
}
