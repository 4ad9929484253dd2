package devicefilter

import "strings"

// Device is what a device filter can see of the device a sign-in comes from.
// Field names and JSON names are those of Microsoft Graph (the device
// resource and the What If API's deviceInfo). A string attribute that is ""
// counts as null (not set), as does a nil IsCompliant or an empty list.
type Device struct {
	// Registered says whether the device is known to the directory at all.
	// Graph objects do not carry it: whoever builds a Device sets it. For an
	// unregistered device every attribute is null whatever the fields hold,
	// so positive operators never match and negative operators always do.
	Registered bool `json:"registered"`

	DeviceID              string `json:"deviceId,omitempty"`
	DisplayName           string `json:"displayName,omitempty"`
	DeviceOwnership       string `json:"deviceOwnership,omitempty"` // Personal, Company (Unknown in Graph)
	EnrollmentProfileName string `json:"enrollmentProfileName,omitempty"`
	// IsCompliant is nil when no compliance state was reported (a device no
	// MDM manages).
	IsCompliant *bool `json:"isCompliant,omitempty"`
	// IsManaged says whether an MDM manages the device. Entra makes
	// extensionAttribute1..15 available to filters only on devices that are
	// Intune managed, compliant or hybrid joined (trustType ServerAD); Verity
	// reads "Intune managed" as IsManaged.
	IsManaged              bool     `json:"isManaged,omitempty"`
	Manufacturer           string   `json:"manufacturer,omitempty"`
	MDMAppID               string   `json:"mdmAppId,omitempty"`
	Model                  string   `json:"model,omitempty"`
	OperatingSystem        string   `json:"operatingSystem,omitempty"`
	OperatingSystemVersion string   `json:"operatingSystemVersion,omitempty"`
	PhysicalIDs            []string `json:"physicalIds,omitempty"` // e.g. "[ZTDId]:value"
	ProfileType            string   `json:"profileType,omitempty"` // RegisteredDevice, SecureVM, Printer, Shared, IoT
	SystemLabels           []string `json:"systemLabels,omitempty"`
	TrustType              string   `json:"trustType,omitempty"` // AzureAD (joined), ServerAD (hybrid joined), Workplace (registered)

	ExtensionAttribute1  string `json:"extensionAttribute1,omitempty"`
	ExtensionAttribute2  string `json:"extensionAttribute2,omitempty"`
	ExtensionAttribute3  string `json:"extensionAttribute3,omitempty"`
	ExtensionAttribute4  string `json:"extensionAttribute4,omitempty"`
	ExtensionAttribute5  string `json:"extensionAttribute5,omitempty"`
	ExtensionAttribute6  string `json:"extensionAttribute6,omitempty"`
	ExtensionAttribute7  string `json:"extensionAttribute7,omitempty"`
	ExtensionAttribute8  string `json:"extensionAttribute8,omitempty"`
	ExtensionAttribute9  string `json:"extensionAttribute9,omitempty"`
	ExtensionAttribute10 string `json:"extensionAttribute10,omitempty"`
	ExtensionAttribute11 string `json:"extensionAttribute11,omitempty"`
	ExtensionAttribute12 string `json:"extensionAttribute12,omitempty"`
	ExtensionAttribute13 string `json:"extensionAttribute13,omitempty"`
	ExtensionAttribute14 string `json:"extensionAttribute14,omitempty"`
	ExtensionAttribute15 string `json:"extensionAttribute15,omitempty"`
}

// extensionAttributesAvailable reports whether Entra would let a filter read
// the device's extension attributes: "Devices must be Microsoft Intune
// managed, compliant, or Microsoft Entra hybrid joined for a value to be
// available in extensionAttributes1-15". Otherwise they read as null.
func (d *Device) extensionAttributesAvailable() bool {
	return d.IsManaged || (d.IsCompliant != nil && *d.IsCompliant) || strings.EqualFold(d.TrustType, "ServerAD")
}

// text returns a string attribute and whether it is set. d is registered.
func (d *Device) text(a attrID) (string, bool) {
	var s string
	switch a {
	case attrDeviceID:
		s = d.DeviceID
	case attrDisplayName:
		s = d.DisplayName
	case attrDeviceOwnership:
		s = d.DeviceOwnership
	case attrEnrollmentProfileName:
		s = d.EnrollmentProfileName
	case attrManufacturer:
		s = d.Manufacturer
	case attrMDMAppID:
		s = d.MDMAppID
	case attrModel:
		s = d.Model
	case attrOperatingSystem:
		s = d.OperatingSystem
	case attrOperatingSystemVersion:
		s = d.OperatingSystemVersion
	case attrProfileType:
		s = d.ProfileType
	case attrTrustType:
		s = d.TrustType
	default:
		if !a.isExtensionAttribute() || !d.extensionAttributesAvailable() {
			return "", false
		}
		s = d.extensionAttribute(int(a-attrExtensionAttribute1) + 1)
	}
	return s, s != ""
}

func (d *Device) extensionAttribute(n int) string {
	switch n {
	case 1:
		return d.ExtensionAttribute1
	case 2:
		return d.ExtensionAttribute2
	case 3:
		return d.ExtensionAttribute3
	case 4:
		return d.ExtensionAttribute4
	case 5:
		return d.ExtensionAttribute5
	case 6:
		return d.ExtensionAttribute6
	case 7:
		return d.ExtensionAttribute7
	case 8:
		return d.ExtensionAttribute8
	case 9:
		return d.ExtensionAttribute9
	case 10:
		return d.ExtensionAttribute10
	case 11:
		return d.ExtensionAttribute11
	case 12:
		return d.ExtensionAttribute12
	case 13:
		return d.ExtensionAttribute13
	case 14:
		return d.ExtensionAttribute14
	case 15:
		return d.ExtensionAttribute15
	}
	return ""
}

// list returns a collection attribute; nil or empty means null.
func (d *Device) list(a attrID) []string {
	switch a {
	case attrPhysicalIDs:
		return d.PhysicalIDs
	case attrSystemLabels:
		return d.SystemLabels
	}
	return nil
}
