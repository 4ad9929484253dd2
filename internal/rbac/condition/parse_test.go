package condition

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("(", MaxDepth+1) + "ActionMatches{'a'}" + strings.Repeat(")", MaxDepth+1)
	for _, tc := range []struct {
		name, expr string
		pos        int
		msg        string
	}{
		{"empty", "  ", 0, "condition is empty"},
		{"too long", strings.Repeat(" ", MaxLength+1), 0, "maximum is 8192"},
		{"too deep", deep, MaxDepth + 1, "deeper than 32"},
		{"mixed AND OR", "ActionMatches{'a'} AND ActionMatches{'b'} OR ActionMatches{'c'}", 43, "mixing AND and OR needs parentheses"},
		{"mixed || &&", "ActionMatches{'a'} || ActionMatches{'b'} && ActionMatches{'c'}", 42, "AND after OR"},
		{"unknown operator", "@Resource[x] StringEqual 'a'", 14, `unknown operator "StringEqual"`},
		{"unknown quantifier", "@Resource[x] ForAnyValues:StringEquals {'a'}", 14, "unknown cross-product quantifier"},
		{"operator after quantifier", "@Resource[x] ForAnyOfAnyValues:StringEqual {'a'}", 32, `unknown operator "StringEqual"`},
		{"set without quantifier", "@Resource[x] StringEquals {'a'}", 27, "needs a cross-product operator"},
		{"unquoted string", "@Resource[x] StringEquals a", 27, "expected a quoted value"},
		{"bad number", "@Request[n] NumericLessThan 1.5", 29, "integers only"},
		{"bad bool", "@Request[b] BoolEquals yes", 24, "true or false"},
		{"bad GUID", "@Request[g] ForAnyOfAnyValues:GuidEquals {8e3af657-a8ff-443c-a75c}", 43, "not a GUID"},
		{"bad date", "@Environment[UtcNow] DateTimeLessThan '2026-13-01T00:00:00Z'", 39, "RFC 3339"},
		{"unterminated string", "@Resource[x] StringEquals 'abc", 27, "unterminated string"},
		{"unclosed paren", "(ActionMatches{'a'}", 1, "'(' is never closed"},
		{"stray paren", "ActionMatches{'a'})", 19, "')' without a matching '('"},
		{"empty parens", "()", 2, "expected an expression inside '()'"},
		{"trailing", "ActionMatches{'a'} ActionMatches{'b'}", 20, "expected AND, OR or the end"},
		{"ActionMatches without brace", "ActionMatches 'a'", 15, "expected '{' after ActionMatches"},
		{"ActionMatches unclosed", "ActionMatches{'a'", 18, "expected '}'"},
		{"unknown source", "@Resourse[x] Exists", 1, "expected @Resource, @Request"},
		{"Exists without attribute", "Exists 'a'", 8, "expected an attribute"},
		{"attribute unclosed", "@Resource[abc StringEquals 'a'", 14, "unexpected ' ' in attribute name"},
		{"attribute empty", "@Resource[] Exists", 11, "expected an attribute name"},
		{"bad suffix", "@Resource[tags:a<$case$>] Exists", 17, "expected <$key_case_sensitive$>"},
		{"single ampersand", "ActionMatches{'a'} & ActionMatches{'b'}", 20, `write "&&" or AND`},
		{"double quotes", `@Resource[x] StringEquals "a"`, 27, "single quotes"},
		{"typographic quote", "@Resource[x] StringEquals \u2018a\u2019", 27, "typographic quote"},
		{"symbolic comparison", "@Resource[x] == 'a'", 14, "named operators"},
		{"missing operand", "@Resource[x] StringEquals", 26, "expected a string value"},
		{"dangling AND", "ActionMatches{'a'} AND", 23, "found end of condition"},
		{"missing set comma", "@Resource[x] ForAnyOfAnyValues:StringEquals {'a' 'b'}", 50, "expected ',' or '}'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.expr)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tc.expr, err)
			}
			if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("Parse(%q) = position %d %q; want position %d containing %q", tc.expr, se.Pos, se.Msg, tc.pos, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "condition: ") {
				t.Fatalf("error %q lacks the condition: prefix", err)
			}
		})
	}
}

func TestCanonicalForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"((!(actionmatches{'A/b'})) or (@resource[x:Y] stringequals 'v'))", "!(ActionMatches{'A/b'}) OR @Resource[x:Y] StringEquals 'v'"},
		{"(ActionMatches{'a'} && ActionMatches{'b'}) && ActionMatches{'c'}", "ActionMatches{'a'} AND ActionMatches{'b'} AND ActionMatches{'c'}"},
		{"(ActionMatches{'a'} OR ActionMatches{'b'}) AND NOT ActionMatches{'c'}", "(ActionMatches{'a'} OR ActionMatches{'b'}) AND !(ActionMatches{'c'})"},
		{"@Request[g] forAnyOfAnyValues:guidequals{49FC33C1886F4B21A00E1D9993234734,'acdd72a7-3385-48ef-bd42-f606fba81ae7'}",
			"@Request[g] ForAnyOfAnyValues:GuidEquals {49fc33c1-886f-4b21-a00e-1d9993234734, acdd72a7-3385-48ef-bd42-f606fba81ae7}"},
		{"@Resource[HasObotoken] boolequals TRUE", "@Resource[HasObotoken] BoolEquals true"},
		{"@Request[n] NumericGreaterThanEquals +007", "@Request[n] NumericGreaterThanEquals 7"},
		{"@Environment[UtcNow] DateTimeLessThan '2026-05-01T15:00:00.5+02:00'", "@Environment[UtcNow] DateTimeLessThan '2026-05-01T13:00:00.5Z'"},
		{`@Resource[x] StringLike 'it\'s \* \\'`, `@Resource[x] StringLike 'it\'s \* \\'`},
		{"exists @principal[Microsoft.Directory/CustomSecurityAttributes/Id:Project<$KEY_CASE_SENSITIVE$>]",
			"Exists @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Project<$key_case_sensitive$>]"},
		{"@Resource[a:b] StringEquals @Principal[c:d]", "@Resource[a:b] StringEquals @Principal[c:d]"},
		{"!!ActionMatches{'a'}", "!(!(ActionMatches{'a'}))"},
	} {
		c := mustParse(t, tc.in)
		got := c.String()
		if got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
			continue
		}
		if again := mustParse(t, got).String(); again != got {
			t.Errorf("canonical form %q not stable: %q", got, again)
		}
	}
}

func TestStringLiteralEscapes(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `@Resource[x] StringLike 'a\*b'`)
	for v, want := range map[string]bool{"a*b": true, "axb": false} {
		if got, err := c.Evaluate(&Request{Resource: Attributes{"x": Strings(v)}}); err != nil || got != want {
			t.Errorf("%q StringLike 'a\\*b' = %v, %v; want %v", v, got, err, want)
		}
	}
	c = mustParse(t, `@Resource[x] StringEquals 'O\'Brien\\'`)
	if got, _ := c.Evaluate(&Request{Resource: Attributes{"x": Strings(`O'Brien\`)}}); !got {
		t.Errorf("escaped quote and backslash did not match")
	}
}
