package devicefilter

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, rule, want string
	}{
		{"empty", "", "rule: rule is empty"},
		{"blank", " \n\t ", "rule: rule is empty"},
		{"operator not allowed", `device.isCompliant -contains True`,
			"rule: position 20: operator -contains is not supported for device.isCompliant (allowed: -eq, -ne)"},
		{"operator not allowed, after -and", `device.trustType -eq "ServerAD" -and device.isCompliant -Contains True`,
			"rule: position 57: operator -contains is not supported for device.isCompliant (allowed: -eq, -ne)"},
		{"startsWith on deviceId", `device.deviceId -startsWith "a"`,
			"rule: position 17: operator -startsWith is not supported for device.deviceId (allowed: -eq, -ne, -in, -notIn)"},
		{"eq on a collection", `device.physicalIds -eq "[ZTDId]:x"`,
			"rule: position 20: operator -eq is not supported for device.physicalIds (allowed: -contains, -notContains)"},
		{"match on an enum", `device.trustType -match "Server"`,
			"rule: position 18: operator -match is not supported for device.trustType (allowed: -eq, -ne)"},
		{"unknown operator", `device.model -like "x"`,
			"rule: position 14: unknown operator -like (allowed for device.model: -eq, -ne, -startsWith, -notStartsWith, -endsWith, -notEndsWith, -contains, -notContains, -in, -notIn, -match, -notMatch)"},
		{"date operator", `device.model -ge "x"`, "rule: position 14: operator -ge is not supported in device filters"},
		{"missing operator", `device.model "x"`,
			`rule: position 14: expected an operator after device.model (allowed: -eq, -ne, -startsWith, -notStartsWith, -endsWith, -notEndsWith, -contains, -notContains, -in, -notIn, -match, -notMatch), found string "x"`},
		{"unknown attribute", `device.color -eq "red"`, "rule: position 1: unknown attribute device.color"},
		{"attribute case", `device.deviceid -eq "x"`,
			"rule: position 1: unknown attribute device.deviceid (did you mean device.deviceId? attribute names are case sensitive)"},
		{"dynamic group name", `device.devicePhysicalIDs -contains "[ZTDId]:x"`,
			"rule: position 1: unknown attribute device.devicePhysicalIDs (did you mean device.physicalIds? attribute names are case sensitive)"},
		{"extensionAttribute16", `device.extensionAttribute16 -eq "x"`, "rule: position 1: unknown attribute device.extensionAttribute16"},
		{"prefix case", `Device.model -eq "x"`,
			"rule: position 1: unknown attribute Device.model (write device. in lower case; attribute names are case sensitive)"},
		{"user attribute", `user.department -eq "Sales"`,
			"rule: position 1: unknown attribute user.department: device filters test device attributes only (device.<attribute>)"},
		{"bare word", `model -eq "x"`, `rule: position 1: expected a device attribute such as device.trustType, '(' or -not, found "model"`},
		{"leading -and", `-and device.model -eq "x"`, `rule: position 1: expected a device attribute such as device.trustType, '(' or -not, found "-and"`},
		{"dangling -and", `device.model -eq "x" -and`, "rule: position 26: expected a device attribute such as device.trustType, '(' or -not, found end of rule"},
		{"missing value", `device.model -eq`, "rule: position 17: expected a double-quoted string after device.model -eq, found end of rule"},
		{"unquoted string", `device.trustType -eq ServerAD`, `rule: position 22: expected a double-quoted string after device.trustType -eq, found "ServerAD"`},
		{"bad enum", `device.trustType -eq "Hybrid"`,
			`rule: position 22: "Hybrid" is not a valid value of device.trustType (allowed: "AzureAD", "ServerAD", "Workplace")`},
		{"bad enum profileType", `device.profileType -ne "Phone"`,
			`rule: position 24: "Phone" is not a valid value of device.profileType (allowed: "RegisteredDevice", "SecureVM", "Printer", "Shared", "IoT")`},
		{"bad bool", `device.isCompliant -eq yes`, `rule: position 24: expected True or False for device.isCompliant, found "yes"`},
		{"bad quoted bool", `device.isCompliant -eq "1"`, `rule: position 24: expected True or False for device.isCompliant, found string "1"`},
		{"list for eq", `device.model -eq ["a"]`, `rule: position 18: expected a double-quoted string after device.model -eq, found "["`},
		{"empty list", `device.model -in []`, "rule: position 18: empty list after -in"},
		{"list without bracket", `device.deviceId -notIn "a"`, `rule: position 24: expected a list such as ["a", "b"] after -notIn, found string "a"`},
		{"unclosed list", `device.model -in ["a", "b"`, "rule: position 27: expected ',' or ']' to continue the list opened at position 18, found end of rule"},
		{"trailing comma", `device.model -in ["a",]`, `rule: position 23: expected a double-quoted string in the list, found "]"`},
		{"number in list", `device.model -in ["a", 1]`, `rule: position 24: expected a double-quoted string in the list, found "1"`},
		{"null in -in", `device.model -in null`, "rule: position 18: null can only be compared with -eq or -ne"},
		{"null on a collection", `device.systemLabels -contains null`, "rule: position 31: null can only be compared with -eq or -ne"},
		{"unterminated string", `device.model -eq "abc`, "rule: position 18: unterminated string"},
		{"unterminated after escape", "device.model -eq \"abc`", "rule: position 18: unterminated string"},
		{"bad escape", "device.model -eq \"a`nb\"", "rule: position 20: invalid escape `n in string (only `\" and `` are escapes)"},
		{"unclosed paren", `(device.model -eq "x"`, "rule: position 22: expected ')' to close the '(' at position 1, found end of rule"},
		{"extra paren", `device.model -eq "x")`, "rule: position 21: ')' without a matching '('"},
		{"empty parens", `()`, `rule: position 2: expected a device attribute such as device.trustType, '(' or -not, found ")"`},
		{"juxtaposed", `device.model -eq "x" device.model -eq "y"`, `rule: position 22: expected -and, -or or the end of the rule, found "device.model"`},
		{"en dash", `device.model –eq "x"`, "rule: position 14: found '–' (U+2013), not a hyphen; write operators with '-' (U+002D), as in -eq"},
		{"smart quotes", `device.model -eq “x”`, "rule: position 18: found a typographic quote '“' (U+201C); quote strings with '\"' (U+0022)"},
		{"C-style operator", `device.model == "x"`, "rule: position 14: unexpected character '='; operators are written -eq, -ne, -and, -or, -not"},
		{"lone hyphen", `device.model - eq "x"`, "rule: position 14: expected an operator after '-' (such as -eq or -and)"},
		{"invalid UTF-8", "device.model -eq \"a\xffb\"", "rule: position 20: invalid UTF-8"},
		{"invalid UTF-8 outside a string", "device.model \xff", "rule: position 14: invalid UTF-8"},
		{"unexpected character", `device.model -eq "x" ; device.model -eq "y"`, "rule: position 22: unexpected character ';'"},
		{"-any", `device.systemLabels -any (_ -eq "x")`,
			"rule: position 21: operator -any is not supported in device filters; test device.physicalIds and device.systemLabels with -contains or -notContains"},
		{"lookahead", `device.model -match "^(?=Surface)"`,
			"rule: position 21: regular expression \"^(?=Surface)\": invalid or unsupported Perl syntax: `(?=` (Verity uses RE2 regular expressions: no lookaround, backreferences, atomic groups or conditionals)"},
		{"backreference", `device.model -match "(a)\1"`,
			"rule: position 21: regular expression \"(a)\\1\": \\1 is a backreference or octal escape in .NET and is not supported; write a character as \\x{…}"},
		{"named backreference", `device.model -match "(?<x>a)\k<x>"`,
			"rule: position 21: regular expression \"(?<x>a)\\k<x>\": invalid escape sequence: `\\k` (Verity uses RE2 regular expressions: no lookaround, backreferences, atomic groups or conditionals)"},
		{"class subtraction", `device.model -match "[a-z-[aeiou]]"`,
			"rule: position 21: regular expression \"[a-z-[aeiou]]\": character class subtraction (-[…]) is not supported"},
		{"POSIX class", `device.model -notMatch "[[:digit:]]"`,
			"rule: position 24: regular expression \"[[:digit:]]\": POSIX class [:digit:] is not supported (.NET reads it as literal characters); use \\p{…} or a range"},
		{"lookbehind", `device.model -match "(?<=a)b"`,
			"rule: position 21: regular expression \"(?<=a)b\": invalid named capture: `(?<=a)b` (Verity uses RE2 regular expressions: no lookaround, backreferences, atomic groups or conditionals)"},
		{"bad regex", `device.model -match "a("`,
			"rule: position 21: regular expression \"a(\": missing closing ): `a(`"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(c.rule)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want error %q", c.rule, r, c.want)
			}
			if err.Error() != c.want {
				t.Errorf("Parse(%q):\n got %s\nwant %s", c.rule, err, c.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error is %T, want *SyntaxError", err)
			}
		})
	}
}

func TestParseDepth(t *testing.T) {
	t.Parallel()
	cmp := `device.model -eq "x"`
	nest := func(n int, open, close string) string {
		return strings.Repeat(open, n) + cmp + strings.Repeat(close, n)
	}
	for _, c := range []struct {
		name, rule string
		ok         bool
	}{
		{"parens at the limit", nest(MaxDepth, "(", ")"), true},
		{"parens over the limit", nest(MaxDepth+1, "(", ")"), false},
		{"-not at the limit", nest(MaxDepth, "-not ", ""), true},
		{"-not over the limit", nest(MaxDepth+1, "-not ", ""), false},
		{"-not ( counts once", nest(MaxDepth, "-not (", ")"), true},
		{"-not ( over the limit", nest(MaxDepth+1, "-not (", ")"), false},
	} {
		r, err := Parse(c.rule)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v", c.name, err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "rule nests parentheses and -not deeper than 32 levels") {
				t.Errorf("%s: err = %v", c.name, err)
			}
			continue
		}
		// The canonical form never nests deeper than the source.
		if _, err := Parse(r.String()); err != nil {
			t.Errorf("%s: canonical form %s: %v", c.name, r, err)
		}
	}
}

func TestParseCanonical(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		// Rules in the policies of the shared data set (j0eyv
		// ConditionalAccessBaseline CA005/CA006/CA202/CA206, AlexFilipin 500/501/505,
		// Microsoft template "No persistent browser session").
		{`device.isCompliant -eq True -or device.trustType -eq "ServerAD"`, `device.isCompliant -eq True -or device.trustType -eq "ServerAD"`},
		{`device.isCompliant -eq True -and device.deviceOwnership -eq "Company"`, `device.isCompliant -eq True -and device.deviceOwnership -eq "Company"`},
		{`device.deviceOwnership -eq "Company" -or device.isCompliant -eq True`, `device.deviceOwnership -eq "Company" -or device.isCompliant -eq True`},
		{`device.trustType -ne "ServerAD" -or device.isCompliant -ne True`, `device.trustType -ne "ServerAD" -or device.isCompliant -ne True`},
		// Examples of the filter page, as written there.
		{`(device.displayName -contains "ABC")`, `device.displayName -contains "ABC"`},
		{`(device.isCompliant -eq "True")`, `device.isCompliant -eq True`},
		{`(device.mdmAppId -in ["00001111-aaaa-2222-bbbb-3333cccc4444"])`, `device.mdmAppId -in ["00001111-aaaa-2222-bbbb-3333cccc4444"]`},
		{`(device.operatingSystemVersion -in ["10.0.18363", "10.0.19041", "10.0.19042", "10.0.22000"])`, `device.operatingSystemVersion -in ["10.0.18363","10.0.19041","10.0.19042","10.0.22000"]`},
		{`(device.physicalIds -contains "[ZTDId]:value")`, `device.physicalIds -contains "[ZTDId]:value"`},
		{`(device.systemLabels -contains "M365Managed")`, `device.systemLabels -contains "M365Managed"`},
		{`(device.profileType -eq "Printer")`, `device.profileType -eq "Printer"`},
		{`device.extensionAttribute1 -ne "SAW"`, `device.extensionAttribute1 -ne "SAW"`},
		// Graph's devicesFilter example quotes with single quotes.
		{`device.extensionAttribute2 -eq 'PrivilegedAccessWorkstation'`, `device.extensionAttribute2 -eq "PrivilegedAccessWorkstation"`},
		{`device.model -eq 'O''Brien "x"'`, "device.model -eq \"O'Brien `\"x`\"\""},
		// Dynamic-membership syntax: DYN example with -and -not.
		{`(device.model -eq "Sales") -and -not (device.displayName -startsWith "SDE")`, `device.model -eq "Sales" -and -not (device.displayName -startsWith "SDE")`},
		// Case and hyphens of operators, enum spelling, booleans.
		{`device.trustType EQ "serverad" AND device.isCompliant -EQ true`, `device.trustType -eq "ServerAD" -and device.isCompliant -eq True`},
		{`device.model -STARTSWITH "x" -OR device.model notendswith "y"`, `device.model -startsWith "x" -or device.model -notEndsWith "y"`},
		{`device.isCompliant -ne false`, `device.isCompliant -ne False`},
		{`device.model -eq NULL`, `device.model -eq null`},
		// Chains flatten; parentheses stay only where precedence needs them.
		{`(device.model -eq "a" -or (device.model -eq "b" -or device.model -eq "c"))`, `device.model -eq "a" -or device.model -eq "b" -or device.model -eq "c"`},
		{`((device.model -eq "a") -and (device.model -eq "b")) -and device.model -eq "c"`, `device.model -eq "a" -and device.model -eq "b" -and device.model -eq "c"`},
		{`(device.model -eq "a" -or device.model -eq "b") -and device.model -eq "c"`, `(device.model -eq "a" -or device.model -eq "b") -and device.model -eq "c"`},
		{`device.model -eq "a" -or (device.model -eq "b" -and device.model -eq "c")`, `device.model -eq "a" -or device.model -eq "b" -and device.model -eq "c"`},
		{`-not -not device.model -eq "a"`, `-not -not (device.model -eq "a")`},
		{`-not (device.model -eq "a" -or device.model -eq "b")`, `-not (device.model -eq "a" -or device.model -eq "b")`},
		// Whitespace: newlines, tabs, none around brackets and parentheses.
		{"device.model -eq \"a\"\r\n\t-and(device.model -in[\"b\",\"c\"])", `device.model -eq "a" -and device.model -in ["b","c"]`},
		// Backtick escapes and characters that need none.
		{"device.displayName -eq \"`\"Sales`\" ``x``\"", "device.displayName -eq \"`\"Sales`\" ``x``\""},
		{`device.displayName -contains "Zoë's (PC) [1]"`, `device.displayName -contains "Zoë's (PC) [1]"`},
		{`device.displayName -match "^Da.*"`, `device.displayName -match "^Da.*"`},
	}
	for _, c := range cases {
		r, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := r.String(); got != c.want {
			t.Errorf("Parse(%q).String():\n got %s\nwant %s", c.in, got, c.want)
		}
		r2, err := Parse(r.String())
		if err != nil {
			t.Errorf("Parse(canonical %q): %v", r, err)
			continue
		}
		if r2.String() != r.String() {
			t.Errorf("canonical form not stable: %s -> %s", r, r2)
		}
	}
}

func TestParseMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Mode{"include": ModeInclude, "exclude": ModeExclude, "Exclude": ModeExclude} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, m, err)
		}
	}
	_, err := ParseMode("block")
	if want := `mode: "block" is not a filter mode (expected include or exclude)`; err == nil || err.Error() != want {
		t.Errorf("ParseMode(block) err = %v, want %q", err, want)
	}
	if ModeInclude.String() != "include" || ModeExclude.String() != "exclude" || Mode(0).String() != "Mode(0)" {
		t.Error("Mode.String")
	}
	if _, err := ParseFilter("include", "device.model"); err == nil {
		t.Error("ParseFilter accepted a bad rule")
	}
	if _, err := ParseFilter("both", `device.model -eq "x"`); err == nil {
		t.Error("ParseFilter accepted a bad mode")
	}
}

func TestParseCanonicalLength(t *testing.T) {
	t.Parallel()
	head := `device.displayName eq "` // canonical form adds the hyphen
	rule := head + strings.Repeat("x", MaxRuleLength-len(head)-1) + `"`
	_, err := Parse(rule)
	want := "rule: rule is 3073 characters long in canonical form (hyphenated operators, single spaces, double-quoted strings); the maximum is 3072"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	// A list of device IDs written with spaces after the commas is shorter
	// in canonical form, so a rule at the limit stays valid.
	var ids []string
	for i := 0; ; i++ {
		next := append(ids, `"aaaaaaaa-0000-1111-2222-`+strings.Repeat("0", 8)+string(rune('a'+i%26))+strings.Repeat("b", 3)+`"`)
		if len(`device.deviceId -in [`+strings.Join(next, ", ")+`]`) > MaxRuleLength {
			break
		}
		ids = next
	}
	if _, err := Parse(`device.deviceId -in [` + strings.Join(ids, ", ") + `]`); err != nil {
		t.Errorf("%d device IDs: %v", len(ids), err)
	}
}

func TestParseLengthCountsUTF16(t *testing.T) {
	t.Parallel()
	// "😀" is one rune, two UTF-16 code units, four bytes.
	head := `device.displayName -eq "`
	n := (MaxRuleLength - len(head) - 1) / 2
	ok := head + strings.Repeat("😀", n) + `"`
	if _, err := Parse(ok); err != nil {
		t.Errorf("%d characters: %v", ruleLength(ok), err)
	}
	if _, err := Parse(head + strings.Repeat("😀", n+1) + `"`); err == nil {
		t.Error("a rule over the limit in UTF-16 code units parsed")
	}
}
