// Package geo answers "where is this IP address?" from a MaxMind-format
// database (MMDB) that the operator configures: its country
// (GeoLite2-Country, GeoIP2-Country, DB-IP's country lite, or any MMDB
// with country.iso_code) for country named locations in conditional
// access; its city and coordinates (GeoLite2-City, DB-IP's city lite) and
// its network (GeoLite2-ASN, DB-IP's ASN lite) for the sign-in log and the
// travel and unfamiliar-property detections. A database may hold any of
// these. Lookups happen where signals are gathered, never on the decision
// hot path. geo imports no other Verity package.
package geo

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is an open country database. It is safe for concurrent use.
type DB struct {
	r    *maxminddb.Reader
	path string
}

// Open memory-maps the MMDB file at path.
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w", path, err)
	}
	db := &DB{r: r, path: path}
	return db, nil
}

// record is the part of a country record Verity reads. GeoIP2/GeoLite2
// databases carry country (where the address is used) and
// registered_country (where it is registered); the first wins.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// ErrInvalidAddress is returned for the zero netip.Addr.
var ErrInvalidAddress = errors.New("geo: invalid IP address")

// Country returns the ISO 3166-1 alpha-2 code of ip's country, or "" when
// the database does not know it (conditional access then treats the
// sign-in as coming from an unknown country).
func (db *DB) Country(ip netip.Addr) (string, error) {
	if !ip.IsValid() {
		return "", ErrInvalidAddress
	}
	res := db.r.Lookup(ip.Unmap())
	if err := res.Err(); err != nil {
		return "", fmt.Errorf("geo: look up %s in %s: %w", ip, db.path, err)
	}
	if !res.Found() {
		return "", nil
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		return "", fmt.Errorf("geo: decode record for %s in %s: %w", ip, db.path, err)
	}
	if rec.Country.ISOCode != "" {
		return rec.Country.ISOCode, nil
	}
	return rec.RegisteredCountry.ISOCode, nil
}

// Location is what a database knows of an address; what it does not know
// is empty (a country database knows the country only, an ASN database
// the network only).
type Location struct {
	Country string // ISO 3166-1 alpha-2: where the address is used, else where it is registered
	State   string // the first (largest) subdivision's English name
	City    string // English name
	// Latitude and Longitude are valid only when HasCoordinates: a record
	// without a location (a country-level entry) has none, which is not
	// the point 0, 0.
	Latitude, Longitude float64
	HasCoordinates      bool
	ASN                 uint32 // autonomous system number, 0 when unknown
	Organization        string // the autonomous system's organisation
}

// locationRecord is the part of a City or ASN record Locate reads: the
// GeoLite2/GeoIP2 City shape (DB-IP's city lite is the same), and the
// GeoLite2-ASN one.
type locationRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	ASN          uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

// Locate returns what the database knows of ip: the zero Location when
// it knows nothing.
func (db *DB) Locate(ip netip.Addr) (Location, error) {
	if !ip.IsValid() {
		return Location{}, ErrInvalidAddress
	}
	res := db.r.Lookup(ip.Unmap())
	if err := res.Err(); err != nil {
		return Location{}, fmt.Errorf("geo: look up %s in %s: %w", ip, db.path, err)
	}
	if !res.Found() {
		return Location{}, nil
	}
	var rec locationRecord
	if err := res.Decode(&rec); err != nil {
		return Location{}, fmt.Errorf("geo: decode record for %s in %s: %w", ip, db.path, err)
	}
	l := Location{Country: rec.Country.ISOCode, City: rec.City.Names.EN, ASN: rec.ASN, Organization: rec.Organization}
	if l.Country == "" {
		l.Country = rec.RegisteredCountry.ISOCode
	}
	if len(rec.Subdivisions) > 0 {
		l.State = rec.Subdivisions[0].Names.EN
	}
	if lat, lon := rec.Location.Latitude, rec.Location.Longitude; lat != nil && lon != nil &&
		*lat >= -90 && *lat <= 90 && *lon >= -180 && *lon <= 180 {
		l.Latitude, l.Longitude, l.HasCoordinates = *lat, *lon, true
	}
	return l, nil
}

// DatabaseType is the type the database declares, e.g. "GeoLite2-Country".
func (db *DB) DatabaseType() string { return db.r.Metadata.DatabaseType }

// Close unmaps the file.
func (db *DB) Close() error { return db.r.Close() }
