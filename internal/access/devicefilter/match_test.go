package devicefilter

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/verityhq/verity/internal/textfold"
)

func TestFold(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s, sub                   string
		prefix, suffix, contains bool
	}{
		{"Surface Pro 9", "surface", true, false, true},
		{"Surface Pro 9", "PRO 9", false, true, true},
		{"Surface Pro 9", "", true, true, true},
		{"", "", true, true, true},
		{"", "a", false, false, false},
		{"ab", "abc", false, false, false},
		{"Ünïcode", "üNÏ", true, false, true},
		{"KELVIN", "\u212Aelvin", true, true, true}, // KELVIN SIGN folds to k: 3 bytes against 1
		{"\u212Aelvin", "kel", true, false, true},
		{"Straße", "STRASSE", false, false, false}, // simple folding: ß is not "ss"
		{"Straße", "ASSE", false, false, false},
		{"Straße", "ßE", false, true, true},
		{"ſtop", "STOP", true, true, true}, // LONG S folds to s
		{"aaab", "aab", false, true, true},
		{"日本語のPC", "のpc", false, true, true},
		{"日本語", "本", false, false, true},
		{"x\xffy", "\xfe", false, false, true}, // invalid bytes compare as U+FFFD, as strings.EqualFold does
	}
	for _, c := range cases {
		if got := textfold.HasPrefix(c.s, c.sub); got != c.prefix {
			t.Errorf("textfold.HasPrefix(%q, %q) = %v", c.s, c.sub, got)
		}
		if got := textfold.HasSuffix(c.s, c.sub); got != c.suffix {
			t.Errorf("textfold.HasSuffix(%q, %q) = %v", c.s, c.sub, got)
		}
		if got := textfold.Contains(c.s, c.sub); got != c.contains {
			t.Errorf("textfold.Contains(%q, %q) = %v", c.s, c.sub, got)
		}
	}
}

// FuzzFold checks the fold helpers against a slow reference built on
// strings.EqualFold over every rune boundary.
func FuzzFold(f *testing.F) {
	f.Add("Surface Pro", "pro")
	f.Add("\u212Aelvin", "KEL")
	f.Add("ſs", "SS")
	f.Fuzz(func(t *testing.T, s, sub string) {
		if !utf8.ValidString(s) || !utf8.ValidString(sub) || len(s) > 64 || len(sub) > 16 {
			return // the reference is cubic
		}
		var bounds []int
		for i := range s {
			bounds = append(bounds, i)
		}
		bounds = append(bounds, len(s))
		var prefix, suffix, contains bool
		for _, i := range bounds {
			prefix = prefix || strings.EqualFold(s[:i], sub)
			suffix = suffix || strings.EqualFold(s[i:], sub)
			for _, j := range bounds {
				if j >= i && strings.EqualFold(s[i:j], sub) {
					contains = true
				}
			}
		}
		if got := textfold.HasPrefix(s, sub); got != prefix {
			t.Errorf("textfold.HasPrefix(%q, %q) = %v, reference %v", s, sub, got, prefix)
		}
		if got := textfold.HasSuffix(s, sub); got != suffix {
			t.Errorf("textfold.HasSuffix(%q, %q) = %v, reference %v", s, sub, got, suffix)
		}
		if got := textfold.Contains(s, sub); got != contains {
			t.Errorf("textfold.Contains(%q, %q) = %v, reference %v", s, sub, got, contains)
		}
	})
}

func TestMatch(t *testing.T) {
	t.Parallel()
	surface := &Device{
		Registered:             true,
		DeviceID:               "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb",
		DisplayName:            "PC-0042",
		Model:                  "Surface Pro 9",
		Manufacturer:           "Microsoft Corporation",
		OperatingSystem:        "Windows",
		OperatingSystemVersion: "10.0.22631.4460",
		TrustType:              "AzureAD",
		IsCompliant:            boolPtr(false),
		PhysicalIDs:            []string{"[ZTDId]:1234", "[OrderId]:PO-1"},
		ExtensionAttribute1:    "SAW",
	}
	managed := *surface
	managed.IsManaged = true
	hybrid := *surface
	hybrid.TrustType = "ServerAD"
	nocompliance := *surface
	nocompliance.IsCompliant = nil
	cases := []struct {
		name string
		rule string
		d    *Device
		want bool
	}{
		{"eq ignores case", `device.model -eq "SURFACE PRO 9"`, surface, true},
		{"eq whole value", `device.model -eq "Surface"`, surface, false},
		{"ne", `device.model -ne "Surface"`, surface, true},
		{"startsWith", `device.operatingSystemVersion -startsWith "10.0.2"`, surface, true},
		{"notStartsWith", `device.operatingSystemVersion -notStartsWith "10.0.2"`, surface, false},
		{"endsWith", `device.manufacturer -endsWith "corporation"`, surface, true},
		{"notEndsWith", `device.manufacturer -notEndsWith "Inc."`, surface, true},
		{"contains substring", `device.model -contains "pro"`, surface, true},
		{"notContains", `device.model -notContains "pro"`, surface, false},
		{"in", `device.deviceId -in ["x", "AAAAAAAA-0000-1111-2222-BBBBBBBBBBBB"]`, surface, true},
		{"notIn", `device.deviceId -notIn ["x", "y"]`, surface, true},
		{"match unanchored", `device.displayName -match "\d{4}"`, surface, true},
		{"match anchored", `device.displayName -match "^\d{4}"`, surface, false},
		{"notMatch", `device.displayName -notMatch "^pc-"`, surface, false},
		{"collection contains whole element", `device.physicalIds -contains "[ztdid]:1234"`, surface, true},
		{"collection contains no substring", `device.physicalIds -contains "[ZTDId]"`, surface, false},
		{"collection notContains", `device.physicalIds -notContains "[ZTDId]"`, surface, true},
		{"empty collection notContains", `device.systemLabels -notContains "M365Managed"`, surface, true},
		{"bool eq", `device.isCompliant -eq False`, surface, true},
		{"bool ne", `device.isCompliant -ne True`, surface, true},
		{"bool unset eq False", `device.isCompliant -eq False`, &nocompliance, false},
		{"bool unset ne True", `device.isCompliant -ne True`, &nocompliance, true},
		{"bool unset eq null", `device.isCompliant -eq null`, &nocompliance, true},
		{"bool set ne null", `device.isCompliant -ne null`, surface, true},
		{"unset string positive", `device.enrollmentProfileName -startsWith ""`, surface, false},
		{"unset string negative", `device.enrollmentProfileName -notIn ["a"]`, surface, true},
		{"eq null", `device.enrollmentProfileName -eq null`, surface, true},
		{"ne null on a set value", `device.model -ne null`, surface, true},
		{"enum case", `device.trustType -eq "azuread"`, surface, true},
		{"extension attribute hidden on an unmanaged, non-compliant device", `device.extensionAttribute1 -eq "SAW"`, surface, false},
		{"hidden extension attribute is null", `device.extensionAttribute1 -eq null`, surface, true},
		{"extension attribute on a managed device", `device.extensionAttribute1 -eq "SAW"`, &managed, true},
		{"extension attribute on a hybrid joined device", `device.extensionAttribute1 -eq "saw"`, &hybrid, true},
		{"and", `device.model -contains "Surface" -and device.trustType -eq "AzureAD"`, surface, true},
		{"or", `device.model -contains "Mac" -or device.trustType -eq "AzureAD"`, surface, true},
		{"not", `-not (device.model -contains "Surface")`, surface, false},
		{"unregistered: positive", `device.model -contains "Surface"`, &Device{Model: "Surface"}, false},
		{"unregistered: negative", `device.model -notContains "Surface"`, &Device{Model: "Surface"}, true},
		{"unregistered: eq null", `device.deviceId -eq null`, &Device{DeviceID: "x"}, true},
		{"unregistered: -not of positive", `-not (device.isCompliant -eq True)`, &Device{IsCompliant: boolPtr(true)}, true},
		{"nil device is unregistered", `device.trustType -ne "ServerAD"`, nil, true},
	}
	for _, c := range cases {
		r := mustParse(t, c.rule)
		if got := r.Match(c.d); got != c.want {
			t.Errorf("%s: Match(%s) = %v, want %v", c.name, c.rule, got, c.want)
		}
	}
}

// TestMatchUnregisteredIsNull checks the documented rule on every operator
// and attribute: on an unregistered device a positive comparison is false and
// a negative one true, whatever the Device fields hold.
func TestMatchUnregisteredIsNull(t *testing.T) {
	t.Parallel()
	for a := range attrID(attrCount) {
		for o := range opCount {
			if !attributes[a].ops.has(o) {
				continue
			}
			r := mustParse(t, criterionRule(a, o))
			d := Device{IsManaged: true}
			setAttribute(&d, a, true)
			if got := r.Match(&d); got != o.negative() {
				t.Errorf("unregistered: %s = %v, want %v", r, got, o.negative())
			}
			d.Registered = true
			if got := r.Match(&d); got == o.negative() {
				t.Errorf("registered: %s = %v, want %v", r, got, !o.negative())
			}
		}
	}
}

func TestFilterApplies(t *testing.T) {
	t.Parallel()
	// j0eyv CA202: exclude compliant or hybrid joined devices from sign-in
	// frequency for unmanaged devices.
	f, err := ParseFilter("exclude", `device.isCompliant -eq True -or device.trustType -eq "ServerAD"`)
	if err != nil {
		t.Fatal(err)
	}
	compliant := &Device{Registered: true, IsCompliant: boolPtr(true), TrustType: "AzureAD"}
	hybrid := &Device{Registered: true, TrustType: "ServerAD"}
	personal := &Device{Registered: true, TrustType: "Workplace", IsCompliant: boolPtr(false)}
	for _, c := range []struct {
		name string
		d    *Device
		want bool
	}{
		{"compliant device excluded", compliant, false},
		{"hybrid joined device excluded", hybrid, false},
		{"registered personal device in scope", personal, true},
		{"unregistered device in scope", &Device{}, true},
		{"no device in scope", nil, true},
	} {
		if got := f.Applies(c.d); got != c.want {
			t.Errorf("%s: Applies = %v, want %v", c.name, got, c.want)
		}
	}
	// Microsoft template "No persistent browser session": include devices
	// that are not hybrid joined or not compliant — unregistered ones too.
	inc, err := ParseFilter("include", `device.trustType -ne "ServerAD" -or device.isCompliant -ne True`)
	if err != nil {
		t.Fatal(err)
	}
	if !inc.Applies(nil) || inc.Applies(&Device{Registered: true, TrustType: "ServerAD", IsCompliant: boolPtr(true)}) {
		t.Error("include filter of the template")
	}
	if !(Filter{}).Applies(personal) {
		t.Error("an unconfigured filter must not restrict")
	}
	if !inc.Rule.Applies(Mode(0), &Device{Registered: true, TrustType: "ServerAD", IsCompliant: boolPtr(true)}) {
		t.Error("an invalid mode must fail safe (the policy applies)")
	}
}

// TestMatchRegexSemantics pins the behaviour compileMatch documents,
// including where it differs from .NET.
func TestMatchRegexSemantics(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern, value string
		want           bool
	}{
		{"^Da.*", "david", true},    // case-insensitive
		{"vid", "David", true},      // unanchored, like Regex.IsMatch
		{"^vid", "David", false},    //
		{`\d`, "PC-٣", false},       // RE2: ASCII digits only (.NET: true)
		{`\p{Nd}`, "PC-٣", true},    // the Unicode way to say it
		{`^PC$`, "PC\n", false},     // RE2: $ only at the very end (.NET: true)
		{`(?-i)^pc`, "PC-1", false}, // a pattern can turn case-insensitivity off
		{`^\x{41}`, "a", true},      // \x{…} instead of .NET's \u0041
		{`^[^\]]+$`, "abc", true},   // ']' first in a class is literal
		{`^[]a]+$`, "]a", true},     //
		{`\[ZTDId\]`, "[ztdid]:1", true},
	} {
		r := mustParse(t, `device.displayName -match `+quote(c.pattern))
		if got := r.Match(&Device{Registered: true, DisplayName: c.value}); got != c.want {
			t.Errorf("%s on %q = %v, want %v", r, c.value, got, c.want)
		}
	}
}
