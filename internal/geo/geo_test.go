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
