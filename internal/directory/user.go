package directory

import (
	"strings"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// User types, as Graph spells them.
const (
	UserTypeMember = "Member"
	UserTypeGuest  = "Guest"
)

// User is a person who signs in: Graph's user resource, with the
// properties Verity models. Its store key is the lower-cased
// userPrincipalName. Credentials are not part of it (see store.Credential).
type User struct {
	ID                string     `json:"id,omitempty"`
	UserPrincipalName string     `json:"userPrincipalName"`
	DisplayName       string     `json:"displayName"`
	UserType          string     `json:"userType,omitempty"`       // "Member" (default) or "Guest"
	AccountEnabled    *bool      `json:"accountEnabled,omitempty"` // default true
	GivenName         string     `json:"givenName,omitempty"`
	Surname           string     `json:"surname,omitempty"`
	Mail              string     `json:"mail,omitempty"`
	JobTitle          string     `json:"jobTitle,omitempty"`
	Department        string     `json:"department,omitempty"`
	CompanyName       string     `json:"companyName,omitempty"`
	OfficeLocation    string     `json:"officeLocation,omitempty"`
	UsageLocation     string     `json:"usageLocation,omitempty"` // ISO 3166-1 alpha-2
	EmployeeID        string     `json:"employeeId,omitempty"`
	MobilePhone       string     `json:"mobilePhone,omitempty"`
	BusinessPhones    []string   `json:"businessPhones,omitempty"` // in Graph's default output, so exports carry it
	PreferredLanguage string     `json:"preferredLanguage,omitempty"`
	OtherMails        []string   `json:"otherMails,omitempty"`
	CreatedDateTime   *time.Time `json:"createdDateTime,omitempty"` // read-only, set by the server
	// Identities are the user's sign-in identities, Graph's objectIdentity:
	// an entry of signInType "federated" links the user to an account at an
	// external identity provider (its issuer and the account's subject), so
	// that federated sign-in finds the user without provisioning one.
	Identities []ObjectIdentity `json:"identities,omitempty"`
}

// ObjectIdentity is Graph's objectIdentity.
type ObjectIdentity struct {
	SignInType       string `json:"signInType"`
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuerAssignedId"`
}

// SignInTypeFederated is the signInType of an external identity
// provider's account.
const SignInTypeFederated = "federated"

// maxIdentities bounds a user's identities.
const maxIdentities = 20

// userGraphOnly are Graph user properties Verity does not model; a Graph
// export that carries them imports without them. passwordProfile is not
// here on purpose: passwords are set through the credential API, and a
// silently dropped password would surprise.
var userGraphOnly = []string{
	"ageGroup", "assignedLicenses", "assignedPlans", "city", "consentProvidedForMinor",
	"country", "creationType", "deletedDateTime", "employeeHireDate", "employeeLeaveDateTime",
	"employeeOrgData", "employeeType", "externalUserState", "externalUserStateChangeDateTime",
	"faxNumber", "imAddresses", "isResourceAccount", "lastPasswordChangeDateTime",
	"legalAgeGroupClassification", "mailNickname", "onPremisesDistinguishedName",
	"onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
	"onPremisesLastSyncDateTime", "onPremisesProvisioningErrors", "onPremisesSamAccountName",
	"onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "onPremisesUserPrincipalName",
	"passwordPolicies", "postalCode", "preferredDataLocation", "provisionedPlans",
	"proxyAddresses", "securityIdentifier", "showInAddressList",
	"signInSessionsValidFromDateTime", "state", "streetAddress",
}

// ObjectID implements Resource.
func (u *User) ObjectID() string { return u.ID }

// SetObjectID implements Resource.
func (u *User) SetObjectID(id string) { u.ID = id }

// SetCreatedDateTime implements Resource.
func (u *User) SetCreatedDateTime(t time.Time) { t = t.UTC(); u.CreatedDateTime = &t }

// Key is the store key: the lower-cased userPrincipalName.
func (u *User) Key() string { return strings.ToLower(u.UserPrincipalName) }

// Enabled reports whether the account may sign in (accountEnabled, which
// defaults to true).
func (u *User) Enabled() bool { return u.AccountEnabled == nil || *u.AccountEnabled }

// IsGuest reports whether the user is a guest.
func (u *User) IsGuest() bool { return strings.EqualFold(u.UserType, UserTypeGuest) }

// Normalize implements Resource: userType in canonical case (default
// Member), accountEnabled defaults to true, the id in lower case.
func (u *User) Normalize() {
	u.ID = lowerGUID(u.ID)
	if u.UserType == "" {
		u.UserType = UserTypeMember
	}
	u.UserType = canonical(u.UserType, UserTypeMember, UserTypeGuest)
	if u.AccountEnabled == nil {
		enabled := true
		u.AccountEnabled = &enabled
	}
}

// Validate implements Resource.
func (u *User) Validate() error {
	return firstError(
		checkID("id", u.ID),
		checkUPN("userPrincipalName", u.UserPrincipalName),
		checkDisplayName("displayName", u.DisplayName),
		checkEnum("userType", u.UserType, UserTypeMember, UserTypeGuest),
		checkText("givenName", u.GivenName, maxShortText),
		checkText("surname", u.Surname, maxShortText),
		optional("mail", u.Mail, checkMail),
		checkText("jobTitle", u.JobTitle, maxJobTitle),
		checkText("department", u.Department, maxShortText),
		checkText("companyName", u.CompanyName, maxShortText),
		checkText("officeLocation", u.OfficeLocation, maxJobTitle),
		optional("usageLocation", u.UsageLocation, checkCountry),
		checkText("employeeId", u.EmployeeID, maxEmployeeID),
		checkText("mobilePhone", u.MobilePhone, maxShortText),
		checkStrings("businessPhones", u.BusinessPhones, textUpTo(maxShortText)),
		optional("preferredLanguage", u.PreferredLanguage, checkLanguage),
		checkStrings("otherMails", u.OtherMails, checkMail),
		checkIdentities("identities", u.Identities),
	)
}

// optional applies check only when s is set.
func optional(path, s string, check func(path, s string) error) error {
	if s == "" {
		return nil
	}
	return check(path, s)
}

// checkIdentities accepts Graph's identities as exports carry them
// (signInType userPrincipalName, emailAddress, federated, ...), bounded;
// a federated one needs its issuer and the account's id.
func checkIdentities(path string, ids []ObjectIdentity) error {
	if len(ids) > maxIdentities {
		return strictjson.Errorf(path, "at most %d identities", maxIdentities)
	}
	for i, id := range ids {
		p := strictjson.Index(path, i)
		if err := firstError(
			checkText(p+".signInType", id.SignInType, maxShortText),
			checkText(p+".issuer", id.Issuer, 1024),
			checkText(p+".issuerAssignedId", id.IssuerAssignedID, 1024),
		); err != nil {
			return err
		}
		if id.SignInType == "" {
			return strictjson.Errorf(p+".signInType", "is required")
		}
		if id.SignInType == SignInTypeFederated && (id.Issuer == "" || id.IssuerAssignedID == "") {
			return strictjson.Errorf(p, "a federated identity needs issuer and issuerAssignedId")
		}
	}
	return nil
}
