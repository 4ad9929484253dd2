package directory

import (
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// OData types of named locations and their IP ranges, as Graph writes them.
const (
	ODataIPNamedLocation               = "#microsoft.graph.ipNamedLocation"
	ODataCountryNamedLocation          = "#microsoft.graph.countryNamedLocation"
	ODataCompliantNetworkNamedLocation = "#microsoft.graph.compliantNetworkNamedLocation" // Graph beta
	ODataIPv4CidrRange                 = "#microsoft.graph.iPv4CidrRange"
	ODataIPv6CidrRange                 = "#microsoft.graph.iPv6CidrRange"
)

// Values of countryLookupMethod and compliantNetworkType.
const (
	CountryLookupClientIPAddress     = "clientIpAddress"
	CountryLookupAuthenticatorAppGPS = "authenticatorAppGps"
	CompliantNetworkAllTenant        = "allTenantCompliantNetworks"
)

const (
	maxIPRanges = 2000 // Entra's limit per named location
	// minPrefixBits rejects ranges wider than /8, as Entra does: a trusted
	// 0.0.0.0/0 would make every address trusted.
	minPrefixBits = 8
)

// IPRange is one CIDR range of an IP named location (Graph's
// iPv4CidrRange or iPv6CidrRange).
type IPRange struct {
	ODataType   string `json:"@odata.type,omitempty"` // filled by Normalize from the address family
	CIDRAddress string `json:"cidrAddress"`
}

// NamedLocation is Graph's polymorphic namedLocation: an IP range list
// (ipNamedLocation), a country list (countryNamedLocation) or the
// tenant's compliant networks (compliantNetworkNamedLocation, Graph beta),
// told apart by ODataType, the "@odata.type" property. It holds the union
// of the variants' properties; MarshalJSON writes and UnmarshalJSON
// accepts only those of its variant. Its store key is the lower-cased
// displayName.
type NamedLocation struct {
	ODataType        string     // "@odata.type", one of the ODataXxxNamedLocation constants
	ID               string     // "id"
	DisplayName      string     // "displayName"
	CreatedDateTime  *time.Time // "createdDateTime", read-only
	ModifiedDateTime *time.Time // "modifiedDateTime", read-only
	DeletedDateTime  *time.Time // "deletedDateTime" (Graph beta exports carry it)

	// IPRanges lists the ranges of an ipNamedLocation ("ipRanges").
	IPRanges []IPRange
	// IsTrusted marks an ipNamedLocation or compliantNetworkNamedLocation
	// as trusted ("isTrusted").
	IsTrusted bool

	// CountriesAndRegions lists ISO 3166-1 alpha-2 codes of a
	// countryNamedLocation ("countriesAndRegions").
	CountriesAndRegions []string
	// IncludeUnknownCountriesAndRegions also matches addresses that map to
	// no country ("includeUnknownCountriesAndRegions").
	IncludeUnknownCountriesAndRegions bool
	// CountryLookupMethod is "clientIpAddress" (default) or
	// "authenticatorAppGps" ("countryLookupMethod").
	CountryLookupMethod string

	// CompliantNetworkType of a compliantNetworkNamedLocation
	// ("compliantNetworkType"), "allTenantCompliantNetworks" by default.
	CompliantNetworkType string
}

// locationCommon holds the properties every variant has.
type locationCommon struct {
	ODataType        string     `json:"@odata.type"`
	ID               string     `json:"id,omitempty"`
	DisplayName      string     `json:"displayName"`
	CreatedDateTime  *time.Time `json:"createdDateTime,omitempty"`
	ModifiedDateTime *time.Time `json:"modifiedDateTime,omitempty"`
	DeletedDateTime  *time.Time `json:"deletedDateTime,omitempty"`
}

type ipLocationJSON struct {
	locationCommon
	IPRanges  []IPRange `json:"ipRanges"`
	IsTrusted bool      `json:"isTrusted"`
}

type countryLocationJSON struct {
	locationCommon
	CountriesAndRegions               []string `json:"countriesAndRegions"`
	IncludeUnknownCountriesAndRegions bool     `json:"includeUnknownCountriesAndRegions"`
	CountryLookupMethod               string   `json:"countryLookupMethod,omitempty"`
}

type compliantLocationJSON struct {
	locationCommon
	CompliantNetworkType string `json:"compliantNetworkType,omitempty"`
	IsTrusted            bool   `json:"isTrusted"`
}

var locationTypes = []string{ODataIPNamedLocation, ODataCountryNamedLocation, ODataCompliantNetworkNamedLocation}

// UnmarshalJSON reads the "@odata.type" discriminator and decodes the
// variant strictly: a property of another variant, or an unknown one, is
// an error naming its path.
func (n *NamedLocation) UnmarshalJSON(data []byte) error {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(data, &head); err != nil || head == nil {
		return strictjson.Unmarshal(data, &locationCommon{}) // explains what is wrong
	}
	raw, ok := head["@odata.type"]
	if !ok || string(raw) == "null" {
		return strictjson.Errorf("@odata.type", "required: one of %s", strings.Join(quoted(locationTypes), ", "))
	}
	var typ string
	if err := json.Unmarshal(raw, &typ); err != nil {
		return strictjson.Errorf("@odata.type", "must be a string")
	}
	switch typ {
	case ODataIPNamedLocation:
		var v ipLocationJSON
		if err := strictjson.Unmarshal(data, &v); err != nil {
			return err
		}
		*n = NamedLocation{IPRanges: v.IPRanges, IsTrusted: v.IsTrusted}
		n.setCommon(v.locationCommon)
	case ODataCountryNamedLocation:
		var v countryLocationJSON
		if err := strictjson.Unmarshal(data, &v); err != nil {
			return err
		}
		*n = NamedLocation{CountriesAndRegions: v.CountriesAndRegions,
			IncludeUnknownCountriesAndRegions: v.IncludeUnknownCountriesAndRegions,
			CountryLookupMethod:               v.CountryLookupMethod}
		n.setCommon(v.locationCommon)
	case ODataCompliantNetworkNamedLocation:
		var v compliantLocationJSON
		if err := strictjson.Unmarshal(data, &v); err != nil {
			return err
		}
		*n = NamedLocation{CompliantNetworkType: v.CompliantNetworkType, IsTrusted: v.IsTrusted}
		n.setCommon(v.locationCommon)
	default:
		return strictjson.Errorf("@odata.type", "unknown named location type %q; want one of %s", typ, strings.Join(quoted(locationTypes), ", "))
	}
	return nil
}

func (n *NamedLocation) setCommon(c locationCommon) {
	n.ODataType = c.ODataType
	n.ID = c.ID
	n.DisplayName = c.DisplayName
	n.CreatedDateTime = c.CreatedDateTime
	n.ModifiedDateTime = c.ModifiedDateTime
	n.DeletedDateTime = c.DeletedDateTime
}

func (n *NamedLocation) common() locationCommon {
	return locationCommon{ODataType: n.ODataType, ID: n.ID, DisplayName: n.DisplayName,
		CreatedDateTime: n.CreatedDateTime, ModifiedDateTime: n.ModifiedDateTime, DeletedDateTime: n.DeletedDateTime}
}

// MarshalJSON writes the Graph shape of the location's variant, with
// "@odata.type" first.
func (n NamedLocation) MarshalJSON() ([]byte, error) {
	switch n.ODataType {
	case ODataIPNamedLocation:
		ranges := n.IPRanges
		if ranges == nil {
			ranges = []IPRange{}
		}
		return json.Marshal(ipLocationJSON{n.common(), ranges, n.IsTrusted})
	case ODataCountryNamedLocation:
		countries := n.CountriesAndRegions
		if countries == nil {
			countries = []string{}
		}
		return json.Marshal(countryLocationJSON{n.common(), countries, n.IncludeUnknownCountriesAndRegions, n.CountryLookupMethod})
	case ODataCompliantNetworkNamedLocation:
		return json.Marshal(compliantLocationJSON{n.common(), n.CompliantNetworkType, n.IsTrusted})
	}
	return nil, strictjson.Errorf("@odata.type", "unknown named location type %q", n.ODataType)
}

// ObjectID implements Resource.
func (n *NamedLocation) ObjectID() string { return n.ID }

// SetObjectID implements Resource.
func (n *NamedLocation) SetObjectID(id string) { n.ID = id }

// SetCreatedDateTime implements Resource; it sets modifiedDateTime too, as
// Graph does on create.
func (n *NamedLocation) SetCreatedDateTime(t time.Time) {
	t = t.UTC()
	n.CreatedDateTime, n.ModifiedDateTime = &t, &t
}

// SetModifiedDateTime sets the read-only modifiedDateTime; the API calls it
// on update.
func (n *NamedLocation) SetModifiedDateTime(t time.Time) { t = t.UTC(); n.ModifiedDateTime = &t }

// Key is the store key: the lower-cased displayName.
func (n *NamedLocation) Key() string { return strings.ToLower(n.DisplayName) }

// Normalize implements Resource: IP ranges get their @odata.type from the
// address family, countryLookupMethod defaults to clientIpAddress and
// compliantNetworkType to allTenantCompliantNetworks.
func (n *NamedLocation) Normalize() {
	n.ID = lowerGUID(n.ID)
	switch n.ODataType {
	case ODataIPNamedLocation:
		for i := range n.IPRanges {
			r := &n.IPRanges[i]
			if r.ODataType != "" {
				continue
			}
			if p, err := netip.ParsePrefix(r.CIDRAddress); err == nil {
				r.ODataType = ODataIPv4CidrRange
				if p.Addr().Is6() {
					r.ODataType = ODataIPv6CidrRange
				}
			}
		}
	case ODataCountryNamedLocation:
		if n.CountryLookupMethod == "" {
			n.CountryLookupMethod = CountryLookupClientIPAddress
		}
	case ODataCompliantNetworkNamedLocation:
		if n.CompliantNetworkType == "" {
			n.CompliantNetworkType = CompliantNetworkAllTenant
		}
	}
}

// Validate implements Resource.
func (n *NamedLocation) Validate() error {
	if err := checkEnum("@odata.type", n.ODataType, locationTypes...); err != nil {
		return err
	}
	if err := firstError(checkID("id", n.ID), checkDisplayName("displayName", n.DisplayName)); err != nil {
		return err
	}
	switch n.ODataType {
	case ODataIPNamedLocation:
		return n.validateIP()
	case ODataCountryNamedLocation:
		return n.validateCountry()
	default:
		return n.validateCompliantNetwork()
	}
}

func (n *NamedLocation) validateIP() error {
	if err := n.foreign(
		prop{"countriesAndRegions", len(n.CountriesAndRegions) > 0},
		prop{"includeUnknownCountriesAndRegions", n.IncludeUnknownCountriesAndRegions},
		prop{"countryLookupMethod", n.CountryLookupMethod != ""},
		prop{"compliantNetworkType", n.CompliantNetworkType != ""}); err != nil {
		return err
	}
	if len(n.IPRanges) == 0 {
		return strictjson.Errorf("ipRanges", "must list at least one range")
	}
	if len(n.IPRanges) > maxIPRanges {
		return strictjson.Errorf("ipRanges", "must list at most %d ranges", maxIPRanges)
	}
	seen := make(map[netip.Prefix]int, len(n.IPRanges))
	for i, r := range n.IPRanges {
		path := strictjson.Index("ipRanges", i)
		p, err := netip.ParsePrefix(r.CIDRAddress)
		if err != nil {
			return strictjson.Errorf(strictjson.Join(path, "cidrAddress"), "must be a CIDR range such as 192.0.2.0/24 or 2001:db8::/32, not %q", r.CIDRAddress)
		}
		if p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return strictjson.Errorf(strictjson.Join(path, "cidrAddress"), "must be a plain IPv4 or IPv6 range, not %q", r.CIDRAddress)
		}
		if p.Bits() < minPrefixBits {
			return strictjson.Errorf(strictjson.Join(path, "cidrAddress"), "must be /%d or narrower, not /%d", minPrefixBits, p.Bits())
		}
		want := ODataIPv4CidrRange
		if p.Addr().Is6() {
			want = ODataIPv6CidrRange
		}
		if r.ODataType != want {
			return strictjson.Errorf(strictjson.Join(path, "@odata.type"), "must be %q for %s, not %q", want, r.CIDRAddress, r.ODataType)
		}
		if j, dup := seen[p.Masked()]; dup {
			return strictjson.Errorf(strictjson.Join(path, "cidrAddress"), "repeats ipRanges[%d]", j)
		}
		seen[p.Masked()] = i
	}
	return nil
}

func (n *NamedLocation) validateCountry() error {
	if err := n.foreign(
		prop{"ipRanges", len(n.IPRanges) > 0},
		prop{"isTrusted", n.IsTrusted},
		prop{"compliantNetworkType", n.CompliantNetworkType != ""}); err != nil {
		return err
	}
	if len(n.CountriesAndRegions) == 0 && !n.IncludeUnknownCountriesAndRegions {
		return strictjson.Errorf("countriesAndRegions", "must list at least one country unless includeUnknownCountriesAndRegions is true")
	}
	return firstError(
		checkStrings("countriesAndRegions", n.CountriesAndRegions, checkCountry),
		checkEnum("countryLookupMethod", n.CountryLookupMethod, CountryLookupClientIPAddress, CountryLookupAuthenticatorAppGPS),
	)
}

func (n *NamedLocation) validateCompliantNetwork() error {
	if err := n.foreign(
		prop{"ipRanges", len(n.IPRanges) > 0},
		prop{"countriesAndRegions", len(n.CountriesAndRegions) > 0},
		prop{"includeUnknownCountriesAndRegions", n.IncludeUnknownCountriesAndRegions},
		prop{"countryLookupMethod", n.CountryLookupMethod != ""}); err != nil {
		return err
	}
	return checkEnum("compliantNetworkType", n.CompliantNetworkType, CompliantNetworkAllTenant)
}

// prop says whether a variant property is set.
type prop struct {
	name string
	set  bool
}

// foreign reports the first property that is set although it belongs to
// another variant (possible only when the value was built in Go).
func (n *NamedLocation) foreign(props ...prop) error {
	for _, p := range props {
		if p.set {
			return strictjson.Errorf(p.name, "is not a property of %s", n.ODataType)
		}
	}
	return nil
}
