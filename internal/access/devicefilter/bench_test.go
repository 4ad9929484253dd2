package devicefilter

import (
	"testing"
)

// benchRules are realistic rules for the hot path: the three-clause rule of
// a privileged-access policy, and a -match rule on the device name.
var benchRules = []struct{ name, rule string }{
	{"three-clause", `device.trustType -eq "ServerAD" -and device.isCompliant -eq True -and device.operatingSystemVersion -startsWith "10.0.2"`},
	{"in-list", `device.mdmAppId -in ["0000000a-0000-0000-c000-000000000000","54b943f8-d761-4f8d-951e-9cea1846db5a"] -or device.extensionAttribute1 -eq "SAW"`},
	{"match", `device.displayName -match "^(SAW|PAW)-[0-9]{4}$"`},
	{"unregistered", `device.trustType -ne "ServerAD" -or device.isCompliant -ne True`},
}

func benchDevice() *Device {
	return &Device{
		Registered:             true,
		DeviceID:               "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb",
		DisplayName:            "PAW-0042",
		DeviceOwnership:        "Company",
		IsCompliant:            boolPtr(true),
		IsManaged:              true,
		MDMAppID:               "0000000A-0000-0000-C000-000000000000",
		Manufacturer:           "Microsoft Corporation",
		Model:                  "Surface Pro 9",
		OperatingSystem:        "Windows",
		OperatingSystemVersion: "10.0.22631.4460",
		PhysicalIDs:            []string{"[ZTDId]:1234", "[OrderId]:PO-1"},
		ProfileType:            "RegisteredDevice",
		TrustType:              "ServerAD",
	}
}

func BenchmarkMatch(b *testing.B) {
	d := benchDevice()
	for _, br := range benchRules {
		r := mustParse(b, br.rule)
		dev := d
		if br.name == "unregistered" {
			dev = nil
		}
		want := r.Match(dev)
		b.Run(br.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r.Match(dev) != want {
					b.Fatal("result changed")
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, br := range benchRules {
		b.Run(br.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(br.rule); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMatchAllocatesNothing holds the hot path to zero allocations (the race
// detector adds its own, so it is skipped under -race).
func TestMatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	d := benchDevice()
	for _, br := range benchRules {
		r := mustParse(t, br.rule)
		for _, dev := range []*Device{d, nil} {
			if n := testing.AllocsPerRun(100, func() { r.Match(dev) }); n != 0 {
				t.Errorf("%s: Match allocates %.1f times per call", br.name, n)
			}
		}
		f := Filter{Mode: ModeExclude, Rule: r}
		if n := testing.AllocsPerRun(100, func() { f.Applies(d) }); n != 0 {
			t.Errorf("%s: Filter.Applies allocates %.1f times per call", br.name, n)
		}
	}
	// A Device built on the stack by the caller stays there.
	for _, br := range benchRules {
		r := mustParse(t, br.rule)
		if n := testing.AllocsPerRun(100, func() {
			dev := Device{Registered: true, TrustType: "ServerAD", DisplayName: "SAW-1234", OperatingSystemVersion: "10.0.22631"}
			r.Match(&dev)
		}); n != 0 {
			t.Errorf("%s: Match makes a stack Device escape: %.1f allocations per call", br.name, n)
		}
	}
}
