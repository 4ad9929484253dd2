package devicefilter

import (
	"strconv"
	"strings"
)

// attrID names one device attribute a rule can test.
type attrID uint8

const (
	attrDeviceID attrID = iota
	attrDisplayName
	attrDeviceOwnership
	attrEnrollmentProfileName
	attrIsCompliant
	attrManufacturer
	attrMDMAppID
	attrModel
	attrOperatingSystem
	attrOperatingSystemVersion
	attrPhysicalIDs
	attrProfileType
	attrSystemLabels
	attrTrustType
	attrExtensionAttribute1 // extensionAttribute1..15 follow in order
)

const (
	extensionAttributeCount = 15
	attrCount               = int(attrExtensionAttribute1) + extensionAttributeCount
)

// kind is the type of an attribute's value.
type kind uint8

const (
	kindString     kind = iota // free text
	kindEnum                   // a string from a documented set
	kindBool                   // True / False
	kindCollection             // a list of strings
)

// attribute is one row of the documented attribute → operator table.
type attribute struct {
	name string // Graph property name, as written after "device."
	kind kind
	ops  opSet
	enum []string // documented values of a kindEnum, in their canonical spelling
}

// The operator sets of the table in "Supported operators and device properties
// for filters". stringOps adds -match and -notMatch, which the table does not
// list: they come from the dynamic-membership grammar that the page refers to
// for syntax, and Verity accepts them on the free-text attributes only.
const (
	idOps               = opSet(1<<opEq | 1<<opNe | 1<<opIn | 1<<opNotIn)
	equalityOps         = opSet(1<<opEq | 1<<opNe)
	collectionOps       = opSet(1<<opContains | 1<<opNotContains)
	documentedStringOps = opSet(1<<opEq | 1<<opNe | 1<<opStartsWith | 1<<opNotStartsWith |
		1<<opEndsWith | 1<<opNotEndsWith | 1<<opContains | 1<<opNotContains | 1<<opIn | 1<<opNotIn)
	stringOps = documentedStringOps | 1<<opMatch | 1<<opNotMatch
)

// attributes is indexed by attrID. It is never written after initialisation.
// Enum values are those the filter page documents, plus deviceOwnership
// "Unknown", which Graph and the dynamic-membership page list. A value
// outside the list is rejected rather than left to never match, so a typo in
// an include filter cannot silently switch a policy off.
var attributes = func() [attrCount]attribute {
	a := [attrCount]attribute{
		attrDeviceID:               {name: "deviceId", kind: kindString, ops: idOps},
		attrDisplayName:            {name: "displayName", kind: kindString, ops: stringOps},
		attrDeviceOwnership:        {name: "deviceOwnership", kind: kindEnum, ops: equalityOps, enum: []string{"Personal", "Company", "Unknown"}},
		attrEnrollmentProfileName:  {name: "enrollmentProfileName", kind: kindString, ops: stringOps},
		attrIsCompliant:            {name: "isCompliant", kind: kindBool, ops: equalityOps},
		attrManufacturer:           {name: "manufacturer", kind: kindString, ops: stringOps},
		attrMDMAppID:               {name: "mdmAppId", kind: kindString, ops: idOps},
		attrModel:                  {name: "model", kind: kindString, ops: stringOps},
		attrOperatingSystem:        {name: "operatingSystem", kind: kindString, ops: stringOps},
		attrOperatingSystemVersion: {name: "operatingSystemVersion", kind: kindString, ops: stringOps},
		attrPhysicalIDs:            {name: "physicalIds", kind: kindCollection, ops: collectionOps},
		attrProfileType:            {name: "profileType", kind: kindEnum, ops: equalityOps, enum: []string{"RegisteredDevice", "SecureVM", "Printer", "Shared", "IoT"}},
		attrSystemLabels:           {name: "systemLabels", kind: kindCollection, ops: collectionOps},
		attrTrustType:              {name: "trustType", kind: kindEnum, ops: equalityOps, enum: []string{"AzureAD", "ServerAD", "Workplace"}},
	}
	for i := range extensionAttributeCount {
		a[int(attrExtensionAttribute1)+i] = attribute{
			name: "extensionAttribute" + strconv.Itoa(i+1),
			kind: kindString,
			ops:  stringOps,
		}
	}
	return a
}()

func (a attrID) isExtensionAttribute() bool { return a >= attrExtensionAttribute1 }

// lookupAttribute finds the attribute a property name ("displayName", the
// part after "device.") names. Names are case sensitive, as the
// dynamic-membership rules say.
func lookupAttribute(name string) (attrID, bool) {
	for i := range attributes {
		if attributes[i].name == name {
			return attrID(i), true
		}
	}
	return 0, false
}

// dynamicGroupNames maps the names dynamic membership rules use for device
// properties to the names of filters for devices, so an error can point at
// the right one. Older versions of the filter page used some of them in
// examples (device.devicePhysicalIDs).
var dynamicGroupNames = map[string]string{
	"devicephysicalids":     "physicalIds",
	"devicetrusttype":       "trustType",
	"deviceostype":          "operatingSystem",
	"deviceosversion":       "operatingSystemVersion",
	"devicemanufacturer":    "manufacturer",
	"devicemodel":           "model",
	"devicemanagementappid": "mdmAppId",
}

// suggestAttribute returns the attribute a mistyped name most likely meant,
// or "".
func suggestAttribute(name string) string {
	for i := range attributes {
		if strings.EqualFold(attributes[i].name, name) {
			return attributes[i].name
		}
	}
	return dynamicGroupNames[strings.ToLower(name)]
}

// canonicalEnum returns the documented spelling of an enum value, matched
// case-insensitively as string comparisons are.
func (a *attribute) canonicalEnum(v string) (string, bool) {
	for _, e := range a.enum {
		if strings.EqualFold(e, v) {
			return e, true
		}
	}
	return "", false
}
