package devicefilter

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that it reports errors as
// *SyntaxError inside the rule, and that every accepted rule survives the
// round trip through its canonical form with the same results.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`device.trustType -eq "ServerAD" -and device.isCompliant -eq True`,
		`device.isCompliant -eq True -or device.trustType -eq "ServerAD"`,
		`device.trustType -ne "ServerAD" -or device.isCompliant -ne True`,
		`(device.model -eq "a" -or device.model -eq "b") -and -not device.model -eq "c"`,
		`device.operatingSystemVersion -in ["10.0.18363", "10.0.19041"]`,
		`device.physicalIds -contains "[ZTDId]:value"`,
		`device.displayName -match "^Da.*" -or device.displayName notMatch ".*vid"`,
		"device.displayName -eq \"`\"Sales`\"\"",
		`device.extensionAttribute2 -eq 'O''Brien'`,
		`device.extensionAttribute15 -ne null`,
		`-not -not (device.mdmAppId -notIn ["x"])`,
		`device.systemLabels -notContains "M365Managed"`,
		`device.deviceOwnership -eq "company" and device.profileType ne "printer"`,
		`device.isCompliant -contains True`,
		`device.model –eq "x"`,
		`((((device.model -eq "x"`,
		`device.model -match "[a-z-[aeiou]]"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %T, want *SyntaxError", s, err)
			}
			if se.Pos < 0 || se.Pos > len(s)+1 || !strings.HasPrefix(err.Error(), "rule: ") {
				t.Fatalf("Parse(%q): bad error %q", s, err)
			}
			return
		}
		c := r.String()
		r2, err := Parse(c)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q: %v", s, c, err)
		}
		if c2 := r2.String(); c2 != c {
			t.Fatalf("canonical form not stable: %q -> %q", c, c2)
		}
		for _, d := range probeDevices(r) {
			if r.Match(d) != r2.Match(d) {
				t.Fatalf("%q and its canonical form %q differ on %+v", s, c, d)
			}
		}
	})
}

// probeDevices builds devices that make the rule's comparisons go both ways:
// for every literal in the rule, a registered device whose attributes all
// hold it, plus an unregistered and an empty registered device.
func probeDevices(r *Rule) []*Device {
	var lits []string
	var walk func(n *node)
	walk = func(n *node) {
		for i := range n.kids {
			walk(&n.kids[i])
		}
		if n.kind == nodeCmp {
			lits = append(lits, n.cmp.vals...)
		}
	}
	walk(&r.root)
	devs := []*Device{nil, {Registered: true}, {Registered: true, IsManaged: true, IsCompliant: boolPtr(false)}}
	for i, v := range lits {
		if i == 8 {
			break
		}
		d := &Device{Registered: true, IsManaged: true, IsCompliant: boolPtr(i%2 == 0), PhysicalIDs: []string{v}, SystemLabels: []string{v}}
		for a := range attrID(attrCount) {
			if a.isExtensionAttribute() {
				setExtensionAttribute(d, int(a-attrExtensionAttribute1)+1, v)
			}
		}
		d.DeviceID, d.DisplayName, d.DeviceOwnership, d.EnrollmentProfileName = v, v, v, v
		d.Manufacturer, d.MDMAppID, d.Model, d.OperatingSystem = v, v, v, v
		d.OperatingSystemVersion, d.ProfileType, d.TrustType = v, v, v
		devs = append(devs, d)
	}
	return devs
}
