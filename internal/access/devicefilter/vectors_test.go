package devicefilter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// vectorFile is testdata/device-filter-vectors.json. It is decoded with
// unknown fields disallowed, so a section added to the file fails the test
// until it is mapped here.
type vectorFile struct {
	About         string `json:"_about"`
	Applicability struct {
		Source string `json:"source"`
		Rows   []struct {
			Mode          string `json:"mode"`
			Operators     string `json:"operators"`
			Attributes    string `json:"attributes"`
			Device        string `json:"device"`
			FilterApplied string `json:"filterApplied"`
		} `json:"rows"`
		Rule string `json:"rule"`
	} `json:"applicability"`
	Operators struct {
		Source string `json:"source"`
		Rows   []struct {
			Rule       string          `json:"rule"`
			Device     json.RawMessage `json:"device"`
			Match      bool            `json:"match"`
			Note       string          `json:"note"`
			SourceNote string          `json:"sourceNote"`
		} `json:"rows"`
		Limits struct {
			MaxRuleLength int `json:"maxRuleLength"`
		} `json:"limits"`
		AttributeOperators map[string]json.RawMessage `json:"attributeOperators"`
		EnumValues         map[string][]string        `json:"enumValues"`
		Constructed        bool                       `json:"constructed"`
		Note               string                     `json:"note"`
	} `json:"operators"`
	Grammar struct {
		Source string `json:"source"`
		Rows   []struct {
			Expr  string `json:"expr"`
			Value string `json:"value"`
			Match bool   `json:"match"`
		} `json:"rows"`
		Precedence []string `json:"precedence_high_to_low"`
		Notes      []string `json:"notes"`
	} `json:"grammar"`
}

func loadVectors(t *testing.T) *vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/device-filter-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	return &v
}

func mustParse(t testing.TB, rule string) *Rule {
	t.Helper()
	r, err := Parse(rule)
	if err != nil {
		t.Fatalf("Parse(%q): %v", rule, err)
	}
	return r
}

func boolPtr(b bool) *bool { return &b }

// --- applicability table ---------------------------------------------------

// The operators the table names: "positive (Equals, StartsWith, EndsWith,
// Contains, In)" and "negative (NotEquals, NotStartsWith, NotEndsWith,
// NotContains, NotIn)".
var (
	positiveOps = []op{opEq, opStartsWith, opEndsWith, opContains, opIn}
	negativeOps = []op{opNe, opNotStartsWith, opNotEndsWith, opNotContains, opNotIn}
)

// criterionRule builds a rule testing attribute a with operator o whose
// positive form holds on a device set up by setAttribute(d, a, true) and
// fails on one set up by setAttribute(d, a, false).
func criterionRule(a attrID, o op) string {
	name := "device." + attributes[a].name
	var lit string
	switch attributes[a].kind {
	case kindBool:
		lit = "True"
	case kindEnum:
		lit = `"ServerAD"`
		if a != attrTrustType {
			lit = quote(attributes[a].enum[1])
		}
	case kindCollection:
		lit = `"[ZTDId]:abc"`
	default:
		switch o.positive() {
		case opEq:
			lit = `"CONTOSO-01"`
		case opStartsWith:
			lit = `"contoso"`
		case opEndsWith:
			lit = `"-01"`
		case opContains:
			lit = `"TOSO"`
		case opIn:
			lit = `["Fabrikam-01", "contoso-01"]`
		case opMatch:
			lit = `"^con.*01$"`
		}
	}
	return name + " " + o.String() + " " + lit
}

// setAttribute gives attribute a a value the positive criterion of
// criterionRule holds on (hit) or fails on (miss). It never touches the
// fields that decide whether extension attributes are available, except for
// trustType and isCompliant themselves.
func setAttribute(d *Device, a attrID, hit bool) {
	pick := func(h, m string) string {
		if hit {
			return h
		}
		return m
	}
	switch a {
	case attrIsCompliant:
		d.IsCompliant = boolPtr(hit)
	case attrTrustType:
		d.TrustType = pick("serverad", "AzureAD")
	case attrDeviceOwnership:
		d.DeviceOwnership = pick("company", "Personal")
	case attrProfileType:
		d.ProfileType = pick("securevm", "Printer")
	case attrPhysicalIDs:
		d.PhysicalIDs = []string{"[OrderId]:1", pick("[ztdid]:ABC", "[ZTDId]:abcd")}
	case attrSystemLabels:
		d.SystemLabels = []string{"MultiUser", pick("[ztdid]:ABC", "[ZTDId]:abcd")}
	default:
		v := pick("Contoso-01", "Fabrikam-02")
		switch {
		case a == attrDeviceID:
			d.DeviceID = v
		case a == attrDisplayName:
			d.DisplayName = v
		case a == attrEnrollmentProfileName:
			d.EnrollmentProfileName = v
		case a == attrManufacturer:
			d.Manufacturer = v
		case a == attrMDMAppID:
			d.MDMAppID = v
		case a == attrModel:
			d.Model = v
		case a == attrOperatingSystem:
			d.OperatingSystem = v
		case a == attrOperatingSystemVersion:
			d.OperatingSystemVersion = v
		case a.isExtensionAttribute():
			setExtensionAttribute(d, int(a-attrExtensionAttribute1)+1, v)
		default:
			panic(fmt.Sprintf("setAttribute: attribute %d not covered", a))
		}
	}
}

func setExtensionAttribute(d *Device, n int, v string) {
	p := []*string{nil, &d.ExtensionAttribute1, &d.ExtensionAttribute2, &d.ExtensionAttribute3,
		&d.ExtensionAttribute4, &d.ExtensionAttribute5, &d.ExtensionAttribute6, &d.ExtensionAttribute7,
		&d.ExtensionAttribute8, &d.ExtensionAttribute9, &d.ExtensionAttribute10, &d.ExtensionAttribute11,
		&d.ExtensionAttribute12, &d.ExtensionAttribute13, &d.ExtensionAttribute14, &d.ExtensionAttribute15}
	*p[n] = v
}

// deviceState is one concrete device standing for the table's "Device
// registration state" column.
type deviceState struct {
	name string
	base Device // attribute under test is set on a copy
	// available is false when the state makes extension attributes read as
	// null (registered, not Intune managed, neither compliant nor hybrid
	// joined).
	available bool
}

// statesFor maps the table's device column to concrete devices.
func statesFor(t *testing.T, col string) []deviceState {
	switch col {
	case "unregistered":
		return []deviceState{{name: "unregistered", base: Device{Registered: false}}}
	case "registered":
		return []deviceState{{name: "registered", base: Device{Registered: true}, available: true}}
	case "registered, Intune managed":
		return []deviceState{{name: "registered+managed", base: Device{Registered: true, IsManaged: true}, available: true}}
	case "registered, not Intune managed":
		return []deviceState{
			{name: "registered+compliant", base: Device{Registered: true, IsCompliant: boolPtr(true)}, available: true},
			{name: "registered+hybridjoined", base: Device{Registered: true, TrustType: "ServerAD"}, available: true},
			{name: "registered+unmanaged", base: Device{Registered: true, IsCompliant: boolPtr(false), TrustType: "Workplace"}, available: false},
		}
	}
	t.Fatalf("applicability: device column %q has no mapping", col)
	return nil
}

func TestVectorsApplicability(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	if len(v.Applicability.Rows) != 8 {
		t.Fatalf("applicability: %d rows, the documented table has 8", len(v.Applicability.Rows))
	}
	if !strings.Contains(v.Applicability.Rule, "considered as null values") {
		t.Errorf("applicability.rule no longer states the null-value rule: %q", v.Applicability.Rule)
	}
	for i, row := range v.Applicability.Rows {
		// Mode column: every row is "include|exclude".
		if row.Mode != "include|exclude" {
			t.Fatalf("row %d: mode %q has no mapping", i, row.Mode)
		}
		// Operator column.
		var ops []op
		switch {
		case strings.HasPrefix(row.Operators, "positive"):
			ops = positiveOps
		case strings.HasPrefix(row.Operators, "negative"):
			ops = negativeOps
		default:
			t.Fatalf("row %d: operators %q has no mapping", i, row.Operators)
		}
		// Attribute column.
		var attrs []attrID
		for a := range attrID(attrCount) {
			switch row.Attributes {
			case "any":
				attrs = append(attrs, a)
			case "excluding extensionAttributes1-15":
				if !a.isExtensionAttribute() {
					attrs = append(attrs, a)
				}
			case "including extensionAttributes1-15":
				if a.isExtensionAttribute() {
					attrs = append(attrs, a)
				}
			default:
				t.Fatalf("row %d: attributes %q has no mapping", i, row.Attributes)
			}
		}
		states := statesFor(t, row.Device)

		for _, a := range attrs {
			for _, o := range ops {
				if !attributes[a].ops.has(o) {
					continue // e.g. -startsWith on isCompliant: not a valid rule
				}
				rule := criterionRule(a, o)
				r := mustParse(t, rule)
				for _, st := range states {
					for _, hit := range []bool{true, false} {
						d := st.base
						setAttribute(&d, a, hit)
						// What the row says the rule does ("Device filter applied").
						var want bool
						switch row.FilterApplied {
						case "No":
							want = false
						case "Yes":
							want = true
						case "Yes, if criteria are met":
							want = hit != o.negative()
						case "Yes, if criteria are met; with extensionAttributes the policy applies if device is compliant or hybrid joined":
							// Interpretation (doc warning: "Devices must be
							// Intune managed, compliant, or hybrid joined for
							// a value to be available in extensionAttributes"):
							// otherwise the attribute is null, so only
							// negative operators match.
							if st.available {
								want = hit != o.negative()
							} else {
								want = o.negative()
							}
						default:
							t.Fatalf("row %d: filterApplied %q has no mapping", i, row.FilterApplied)
						}
						if got := r.Match(&d); got != want {
							t.Errorf("row %d %s, %s, attribute value hit=%v: Match(%s) = %v, want %v", i, row.Operators[:8], st.name, hit, rule, got, want)
						}
						// The mode decides what a match means: include keeps
						// matching devices in scope, exclude takes them out.
						if got := r.Applies(ModeInclude, &d); got != want {
							t.Errorf("row %d %s: Applies(include, %s) = %v, want %v", i, st.name, rule, got, want)
						}
						if got := r.Applies(ModeExclude, &d); got != !want {
							t.Errorf("row %d %s: Applies(exclude, %s) = %v, want %v", i, st.name, rule, got, !want)
						}
					}
				}
			}
		}
	}
}

// --- operator rows, limits, attribute matrix, enum values -----------------

func TestVectorsOperators(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	if len(v.Operators.Rows) == 0 {
		t.Fatal("no operator rows")
	}
	for i, row := range v.Operators.Rows {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			var d Device
			dec := json.NewDecoder(bytes.NewReader(row.Device))
			dec.DisallowUnknownFields() // device keys must be Graph names Device knows
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("device %s: %v", row.Device, err)
			}
			// The rows show operator semantics on a device in the directory
			// whose attributes are all available to the filter: a registered,
			// managed device (availability is the applicability table's job).
			d.Registered, d.IsManaged = true, true
			r := mustParse(t, row.Rule)
			if got := r.Match(&d); got != row.Match {
				t.Errorf("Match(%s) on %s = %v, want %v (%s)", row.Rule, row.Device, got, row.Match, row.Note)
			}
			// Round trip through the canonical form keeps the result.
			if got := mustParse(t, r.String()).Match(&d); got != row.Match {
				t.Errorf("canonical %s: Match = %v, want %v", r, got, row.Match)
			}
		})
	}
}

func TestVectorsLimits(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	max := v.Operators.Limits.MaxRuleLength
	if max != MaxRuleLength {
		t.Fatalf("vectors say %d, MaxRuleLength is %d", max, MaxRuleLength)
	}
	pad := func(n int) string {
		head := `device.displayName -eq "`
		return head + strings.Repeat("x", n-len(head)-1) + `"`
	}
	if _, err := Parse(pad(max)); err != nil {
		t.Errorf("rule of %d characters: %v", max, err)
	}
	_, err := Parse(pad(max + 1))
	if want := fmt.Sprintf("rule: rule is %d characters long; the maximum is %d", max+1, max); err == nil || err.Error() != want {
		t.Errorf("rule of %d characters: err = %v, want %q", max+1, err, want)
	}
}

// docOps maps the operator names of the documented table to operators.
var docOps = map[string]op{
	"Equals": opEq, "NotEquals": opNe, "StartsWith": opStartsWith, "NotStartsWith": opNotStartsWith,
	"EndsWith": opEndsWith, "NotEndsWith": opNotEndsWith, "Contains": opContains, "NotContains": opNotContains,
	"In": opIn, "NotIn": opNotIn,
}

func TestVectorsAttributeOperators(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	m := v.Operators.AttributeOperators
	var allString []string
	if err := json.Unmarshal(m["_allStringOps"], &allString); err != nil {
		t.Fatalf("_allStringOps: %v", err)
	}
	documented := map[attrID]opSet{}
	for key, raw := range m {
		if key == "_allStringOps" {
			continue
		}
		var names []string
		var s string
		if err := json.Unmarshal(raw, &names); err != nil {
			if err := json.Unmarshal(raw, &s); err != nil || s != "all string ops" {
				t.Fatalf("%s: value %s has no mapping", key, raw)
			}
			names = allString
		}
		var set opSet
		for _, n := range names {
			o, ok := docOps[n]
			if !ok {
				t.Fatalf("%s: operator %q has no mapping", key, n)
			}
			set |= 1 << o
		}
		if key == "extensionAttribute1-15" {
			for i := range extensionAttributeCount {
				documented[attrExtensionAttribute1+attrID(i)] = set
			}
			continue
		}
		a, ok := lookupAttribute(key)
		if !ok {
			t.Errorf("documented attribute %s is unknown to the parser", key)
			continue
		}
		documented[a] = set
	}
	for a := range attrID(attrCount) {
		set, ok := documented[a]
		if !ok {
			t.Errorf("device.%s is not in the documented table", attributes[a].name)
			continue
		}
		for o := range opCount {
			want := set.has(o)
			if (o == opMatch || o == opNotMatch) && set == documentedStringOps {
				want = true // Verity extension: -match where every string operator is allowed
			}
			rule := criterionRule(a, o)
			if o.positive() == opMatch && !want {
				rule = "device." + attributes[a].name + " " + o.String() + ` "x"`
			}
			_, err := Parse(rule)
			if want && err != nil {
				t.Errorf("%s: %v", rule, err)
			}
			if !want {
				msg := fmt.Sprintf("operator %s is not supported for device.%s (allowed: %s)", o, attributes[a].name, set)
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Errorf("%s: err = %v, want one containing %q", rule, err, msg)
				}
			}
		}
	}
}

func TestVectorsEnumValues(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	for key, values := range v.Operators.EnumValues {
		name, examples := strings.CutSuffix(key, "(examples)")
		a, ok := lookupAttribute(name)
		if !ok {
			t.Errorf("enum attribute %s unknown", key)
			continue
		}
		for _, val := range values {
			var rules []string
			d := Device{Registered: true}
			switch {
			case examples: // systemLabels: example labels of a collection
				rules = []string{fmt.Sprintf("device.%s -contains %s", name, quote(val))}
				d.SystemLabels = []string{"Other", val}
			case attributes[a].kind == kindBool: // isCompliant: True / False, quoted or not
				rules = []string{fmt.Sprintf("device.%s -eq %s", name, val), fmt.Sprintf("device.%s -eq %s", name, quote(val))}
				d.IsCompliant = boolPtr(val == "True")
			default:
				if _, ok := attributes[a].canonicalEnum(val); !ok {
					t.Errorf("%s: documented value %q not accepted", name, val)
				}
				rules = []string{fmt.Sprintf("device.%s -eq %s", name, quote(val)), fmt.Sprintf("device.%s -eq %s", name, quote(strings.ToLower(val)))}
				switch a {
				case attrDeviceOwnership:
					d.DeviceOwnership = val
				case attrTrustType:
					d.TrustType = val
				case attrProfileType:
					d.ProfileType = val
				default:
					t.Fatalf("enum %s has no device mapping", name)
				}
			}
			for _, rule := range rules {
				r := mustParse(t, rule)
				if !r.Match(&d) {
					t.Errorf("%s does not match a device whose %s is %q", rule, name, val)
				}
				// Every other documented value does not match.
				for _, other := range values {
					if other == val || examples {
						continue
					}
					o := Device{Registered: true, DeviceOwnership: other, TrustType: other, ProfileType: other, IsCompliant: boolPtr(other == "True")}
					if r.Match(&o) {
						t.Errorf("%s matches a device whose %s is %q", rule, name, other)
					}
				}
			}
		}
	}
}

// --- grammar rows, precedence, notes --------------------------------------

func TestVectorsGrammar(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	for i, row := range v.Grammar.Rows {
		// The grammar rows come from dynamic membership rules for users;
		// displayName is a device attribute too, so "user.displayName"
		// becomes "device.displayName" with the same value.
		rule, ok := strings.CutPrefix(row.Expr, "user.displayName ")
		if !ok {
			t.Fatalf("row %d: expression %q has no mapping", i, row.Expr)
		}
		rule = "device.displayName " + rule
		d := Device{Registered: true, DisplayName: row.Value}
		if got := mustParse(t, rule).Match(&d); got != row.Match {
			t.Errorf("row %d: %s on %q = %v, want %v", i, rule, row.Value, got, row.Match)
		}
		// -notMatch is its exact opposite.
		neg := strings.Replace(rule, "-match", "-notMatch", 1)
		if got := mustParse(t, neg).Match(&d); got != !row.Match {
			t.Errorf("row %d: %s on %q = %v, want %v", i, neg, row.Value, got, !row.Match)
		}
	}
}

func TestVectorsPrecedence(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	p := v.Grammar.Precedence
	want := []string{
		"-eq -ne -startsWith -notStartsWith -contains -notContains -match -notMatch -in -notIn",
		"-not", "-and", "-or", "-any -all",
	}
	if !slices.Equal(p, want) {
		t.Fatalf("precedence lines changed:\n got %q\nwant %q", p, want)
	}
	T, F := `device.model -eq "T"`, `device.model -eq "F"`
	d := &Device{Registered: true, Model: "T"}
	cases := []struct {
		line int
		rule string
		want bool
		why  string
	}{
		// Line 0: comparisons bind tightest: "-not" applies to the whole comparison.
		{0, `-not device.model -eq "F"`, true, "-not (model -eq F)"},
		// Line 1: -not binds tighter than -and: (-not T) -and T, not -not (T -and T).
		{1, "-not " + T + " -and " + T, false, "(-not T) -and T"},
		{1, "-not " + F + " -and " + F, false, "(-not F) -and F; -not (F -and F) would be true"},
		// Line 2: -and binds tighter than -or: T -or (T -and F), not (T -or T) -and F.
		{2, T + " -or " + T + " -and " + F, true, "T -or (T -and F)"},
		{2, F + " -and " + T + " -or " + T, true, "(F -and T) -or T"},
		// Line 3: -or is lowest; parentheses override.
		{3, "(" + T + " -or " + T + ") -and " + F, false, "(T -or T) -and F"},
	}
	for _, c := range cases {
		if got := mustParse(t, c.rule).Match(d); got != c.want {
			t.Errorf("line %d %q: %s = %v, want %v", c.line, p[c.line], c.rule, got, c.want)
		}
	}
	// Every operator of line 0 is a comparison operator.
	for _, name := range strings.Fields(p[0]) {
		o, ok := lookupOp(name)
		if !ok {
			t.Errorf("operator %s unknown", name)
			continue
		}
		mustParse(t, criterionRule(attrDisplayName, o))
	}
	// Line 4: -any and -all work on multi-valued properties of dynamic
	// groups; filters for devices document only -contains / -notContains
	// for their collections, so Verity rejects them with a pointer to those.
	for _, name := range strings.Fields(p[4]) {
		_, err := Parse(`device.physicalIds ` + name + ` (_ -startsWith "[ZTDId]")`)
		want := "rule: position 20: operator " + name + " is not supported in device filters; test device.physicalIds and device.systemLabels with -contains or -notContains"
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
}

func TestVectorsNotes(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)
	reg := &Device{Registered: true, DisplayName: "David", IsCompliant: boolPtr(true)}
	checks := map[string]func(t *testing.T){
		"Operators can be used with or without the hyphen prefix.": func(t *testing.T) {
			for o := range opCount {
				with := criterionRule(attrDisplayName, o)
				without := strings.Replace(with, " -", " ", 1)
				a, b := mustParse(t, with), mustParse(t, without)
				if a.String() != b.String() {
					t.Errorf("%s and %s parse differently: %s vs %s", with, without, a, b)
				}
			}
			a := mustParse(t, `device.model eq "a" or not device.model eq "b" and device.model ne "c"`)
			if want := `device.model -eq "a" -or -not (device.model -eq "b") -and device.model -ne "c"`; a.String() != want {
				t.Errorf("hyphen-less logical operators: %s, want %s", a, want)
			}
		},
		"Regex and string operations aren't case sensitive.": func(t *testing.T) {
			for _, rule := range []string{
				`device.displayName -eq "DAVID"`, `device.displayName -startsWith "dA"`,
				`device.displayName -endsWith "VID"`, `device.displayName -contains "AVI"`,
				`device.displayName -in ["x", "david"]`, `device.displayName -match "^DAV"`,
			} {
				if !mustParse(t, rule).Match(reg) {
					t.Errorf("%s does not match %q", rule, reg.DisplayName)
				}
			}
		},
		"Property names are case sensitive.": func(t *testing.T) {
			_, err := Parse(`device.DisplayName -eq "David"`)
			want := "rule: position 1: unknown attribute device.DisplayName (did you mean device.displayName? attribute names are case sensitive)"
			if err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
		},
		"Double quotes optional unless the value is a string; use null (unquoted) for null checks with -eq/-ne.": func(t *testing.T) {
			if !mustParse(t, `device.isCompliant -eq True`).Match(reg) || !mustParse(t, `device.isCompliant -eq "True"`).Match(reg) {
				t.Error("True, quoted or not, does not match a compliant device")
			}
			if _, err := Parse(`device.displayName -eq David`); err == nil {
				t.Error("an unquoted string value parsed")
			}
			if !mustParse(t, `device.model -eq null`).Match(reg) || mustParse(t, `device.model -ne null`).Match(reg) {
				t.Error("null checks on an unset model are wrong")
			}
			if mustParse(t, `device.displayName -eq "null"`).Match(&Device{Registered: true}) {
				t.Error(`"null" in quotes is the string null, not a null check`)
			}
			_, err := Parse(`device.model -startsWith null`)
			if want := "rule: position 26: null can only be compared with -eq or -ne"; err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
		},
		"-in/-notIn take a bracketed list [\"a\",\"b\"].": func(t *testing.T) {
			if !mustParse(t, `device.displayName -in ["a","David"]`).Match(reg) || mustParse(t, `device.displayName -notIn ["a","David"]`).Match(reg) {
				t.Error("-in / -notIn on a list")
			}
			_, err := Parse(`device.displayName -in "David"`)
			if want := `rule: position 24: expected a list such as ["a", "b"] after -in, found string "David"`; err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
		},
	}
	for _, note := range v.Grammar.Notes {
		check, ok := checks[note]
		if !ok {
			t.Errorf("note %q has no test", note)
			continue
		}
		t.Run(note, check)
	}
	if len(v.Grammar.Notes) != len(checks) {
		t.Errorf("%d notes, %d checks", len(v.Grammar.Notes), len(checks))
	}
}
