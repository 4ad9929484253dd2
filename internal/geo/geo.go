// Package geo answers "which country is this IP address in?" from a
// MaxMind-format database (GeoLite2-Country, GeoIP2-Country, DB-IP's
// country lite MMDB, or any MMDB with country.iso_code) that the operator
// configures. Country named locations in conditional access need it; the
// lookup happens where signals are gathered, never on the decision hot
// path. geo imports no other Verity package.
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

// Open memory-maps the MMDB file at path and checks that it holds country
// data.
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

// DatabaseType is the type the database declares, e.g. "GeoLite2-Country".
func (db *DB) DatabaseType() string { return db.r.Metadata.DatabaseType }

// Close unmaps the file.
func (db *DB) Close() error { return db.r.Close() }
