package geo

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// WriteTestDB writes a small GeoLite2-Country-shaped MMDB mapping each
// CIDR to a country (registered-country only when the key starts with "r:").
func writeTestDB(t testing.TB, countries map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IPVersion: 6})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, cc := range countries {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc)}}
		if len(cc) > 2 && cc[:2] == "r:" {
			rec = mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(cc[2:])}}
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "country.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCountry(t *testing.T) {
	t.Parallel()
	path := writeTestDB(t, map[string]string{
		"40.77.182.0/24": "US", "145.100.0.0/16": "NL", "2001:610::/32": "NL", "81.2.69.0/24": "r:GB",
	})
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.DatabaseType() != "GeoLite2-Country" {
		t.Errorf("type %q", db.DatabaseType())
	}
	for _, tt := range []struct{ ip, want string }{
		{"40.77.182.32", "US"},
		{"145.100.7.1", "NL"},
		{"::ffff:145.100.7.1", "NL"}, // IPv4-mapped
		{"2001:610:1:2::3", "NL"},
		{"81.2.69.160", "GB"}, // registered country only
		{"192.0.2.1", ""},     // unknown: conditional access treats it as an unknown country
	} {
		got, err := db.Country(netip.MustParseAddr(tt.ip))
		if err != nil || got != tt.want {
			t.Errorf("Country(%s) = %q, %v; want %q", tt.ip, got, err, tt.want)
		}
	}
	if _, err := db.Country(netip.Addr{}); err == nil {
		t.Error("zero address accepted")
	}
}

func TestOpenRejectsNonMMDB(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "not.mmdb")
	if err := os.WriteFile(p, []byte("definitely not a MaxMind database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); err == nil {
		t.Fatal("opened a file that is not an MMDB")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Fatal("opened a missing file")
	}
}

func BenchmarkCountry(b *testing.B) {
	db, err := Open(writeTestDB(b, map[string]string{"40.77.182.0/24": "US"}))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ip := netip.MustParseAddr("40.77.182.32")
	b.ReportAllocs()
	for b.Loop() {
		if cc, _ := db.Country(ip); cc != "US" {
			b.Fatal(cc)
		}
	}
}

// writeMMDB writes an MMDB of type typ with a record per CIDR.
func writeMMDB(t testing.TB, typ string, records map[string]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: typ, RecordSize: 28, IPVersion: 6})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), typ+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String("x" + en)}}
}

// TestLocate reads the three shapes a database may have: City (GeoLite2
// and DB-IP's city lite: city.names.en, subdivisions, location), ASN
// (autonomous_system_number/organization) and Country (country only).
func TestLocate(t *testing.T) {
	t.Parallel()
	city := writeMMDB(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"81.2.69.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")}, "city": names("London"),
			"subdivisions": mmdbtype.Slice{names("England")},
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(51.5142), "longitude": mmdbtype.Float64(-0.0931), "accuracy_radius": mmdbtype.Uint16(10)}},
		"2001:218::/32": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("JP")}, "city": names("Tokyo"),
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(35.6895), "longitude": mmdbtype.Float64(139.6917)}},
		// A country-level entry: no city, no location; coordinates 0, 0
		// are a place (off Africa), not "none".
		"175.45.176.0/22": {"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("KP")}},
		"196.0.0.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("GH")},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(0), "longitude": mmdbtype.Float64(0)}},
		// Coordinates that cannot be are none.
		"5.6.7.0/24": {"location": mmdbtype.Map{"latitude": mmdbtype.Float64(125), "longitude": mmdbtype.Float64(10)}},
	})
	asn := writeMMDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"81.2.69.0/24": {"autonomous_system_number": mmdbtype.Uint32(20712), "autonomous_system_organization": mmdbtype.String("Andrews & Arnold Ltd")},
		"1.0.0.0/24":   {"autonomous_system_number": mmdbtype.Uint32(13335), "autonomous_system_organization": mmdbtype.String("CLOUDFLARENET")},
	})
	country := writeTestDB(t, map[string]string{"40.77.182.0/24": "US"})
	for _, tt := range []struct {
		db, ip string
		want   Location
	}{
		{city, "81.2.69.160", Location{Country: "GB", State: "England", City: "London", Latitude: 51.5142, Longitude: -0.0931, HasCoordinates: true}},
		{city, "::ffff:81.2.69.160", Location{Country: "GB", State: "England", City: "London", Latitude: 51.5142, Longitude: -0.0931, HasCoordinates: true}},
		{city, "2001:218:1::1", Location{Country: "JP", City: "Tokyo", Latitude: 35.6895, Longitude: 139.6917, HasCoordinates: true}},
		{city, "175.45.176.99", Location{Country: "KP"}},
		{city, "196.0.0.1", Location{Country: "GH", HasCoordinates: true}},
		{city, "5.6.7.8", Location{}},
		{city, "192.0.2.1", Location{}},
		{asn, "81.2.69.160", Location{ASN: 20712, Organization: "Andrews & Arnold Ltd"}},
		{asn, "1.0.0.1", Location{ASN: 13335, Organization: "CLOUDFLARENET"}},
		{country, "40.77.182.32", Location{Country: "US"}},
	} {
		db, err := Open(tt.db)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Locate(netip.MustParseAddr(tt.ip))
		if err != nil || got != tt.want {
			t.Errorf("%s: Locate(%s) = %+v, %v; want %+v", db.DatabaseType(), tt.ip, got, err, tt.want)
		}
		// Country reads City databases too.
		if cc, err := db.Country(netip.MustParseAddr(tt.ip)); err != nil || cc != tt.want.Country {
			t.Errorf("%s: Country(%s) = %q, %v; want %q", db.DatabaseType(), tt.ip, cc, err, tt.want.Country)
		}
		if _, err := db.Locate(netip.Addr{}); err == nil {
			t.Error("zero address accepted")
		}
		db.Close()
	}
}

func BenchmarkLocate(b *testing.B) {
	db, err := Open(writeMMDB(b, "GeoLite2-City", map[string]mmdbtype.Map{
		"81.2.69.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")}, "city": names("London"),
			"subdivisions": mmdbtype.Slice{names("England")},
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(51.5142), "longitude": mmdbtype.Float64(-0.0931)}},
	}))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ip := netip.MustParseAddr("81.2.69.160")
	b.ReportAllocs()
	for b.Loop() {
		if l, _ := db.Locate(ip); l.City != "London" {
			b.Fatal(l)
		}
	}
}
