package directory

import (
	"encoding/json"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// Group types and visibilities, as Graph spells them.
const (
	GroupTypeUnified           = "Unified"
	GroupTypeDynamicMembership = "DynamicMembership"

	VisibilityPublic           = "Public"
	VisibilityPrivate          = "Private"
	VisibilityHiddenMembership = "HiddenMembership"
)

// GraphGroup is a group exactly as Graph shows it: the Group without
// Verity's stored membership.
type GraphGroup struct {
	ID                 string     `json:"id,omitempty"`
	DisplayName        string     `json:"displayName"`
	Description        string     `json:"description,omitempty"`
	MailNickname       string     `json:"mailNickname,omitempty"`
	MailEnabled        *bool      `json:"mailEnabled,omitempty"`        // default false
	SecurityEnabled    *bool      `json:"securityEnabled,omitempty"`    // default true
	GroupTypes         []string   `json:"groupTypes,omitempty"`         // "Unified"; dynamic membership is not supported
	IsAssignableToRole *bool      `json:"isAssignableToRole,omitempty"` // default false
	Visibility         string     `json:"visibility,omitempty"`
	CreatedDateTime    *time.Time `json:"createdDateTime,omitempty"` // read-only, set by the server
}

// Group is a set of directory objects (users, groups, service principals)
// that policies and role assignments target. Verity keeps a group's
// members in the group ("members", ids, sorted) rather than in a separate
// relation; the API strips the field from Graph-shaped output (GraphView)
// and serves it as the members collection. A Graph create request's
// "members@odata.bind" URLs decode into members.
//
// Unlike Entra, Verity requires group display names to be unique (compared
// case-insensitively): the store key is the lower-cased displayName, so
// policy as code can refer to a group by name.
type Group struct {
	GraphGroup
	Members []string `json:"members,omitempty"`
}

var groupGraphOnly = []string{
	"allowExternalSenders", "assignedLabels", "assignedLicenses", "autoSubscribeNewMembers",
	"classification", "creationOptions", "deletedDateTime", "expirationDateTime",
	"hasMembersWithLicenseErrors", "hideFromAddressLists", "hideFromOutlookClients",
	"isArchived", "isManagementRestricted", "isSubscribedByMail", "licenseProcessingState",
	"mail", "membershipRule", "membershipRuleProcessingState", "onPremisesDomainName",
	"onPremisesLastSyncDateTime", "onPremisesNetBiosName", "onPremisesProvisioningErrors",
	"onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
	"preferredDataLocation", "preferredLanguage", "proxyAddresses", "renewedDateTime",
	"resourceBehaviorOptions", "resourceProvisioningOptions", "securityIdentifier",
	"serviceProvisioningErrors", "theme", "uniqueName", "unseenCount",
}

// GraphView is the group as Graph shows it, without members.
func (g *Group) GraphView() GraphGroup { return g.GraphGroup }

// ObjectID implements Resource.
func (g *Group) ObjectID() string { return g.ID }

// SetObjectID implements Resource.
func (g *Group) SetObjectID(id string) { g.ID = id }

// SetCreatedDateTime implements Resource.
func (g *Group) SetCreatedDateTime(t time.Time) { t = t.UTC(); g.CreatedDateTime = &t }

// Key is the store key: the lower-cased displayName.
func (g *Group) Key() string { return strings.ToLower(g.DisplayName) }

// RoleAssignable reports whether directory roles may be assigned to the
// group (isAssignableToRole).
func (g *Group) RoleAssignable() bool { return g.IsAssignableToRole != nil && *g.IsAssignableToRole }

// Normalize implements Resource: securityEnabled defaults to true,
// mailEnabled and isAssignableToRole to false; enum values take their
// canonical case; members are lower-cased, sorted and de-duplicated.
func (g *Group) Normalize() {
	g.ID = lowerGUID(g.ID)
	g.MailEnabled = boolDefault(g.MailEnabled, false)
	g.SecurityEnabled = boolDefault(g.SecurityEnabled, true)
	g.IsAssignableToRole = boolDefault(g.IsAssignableToRole, false)
	for i, t := range g.GroupTypes {
		g.GroupTypes[i] = canonical(t, GroupTypeUnified, GroupTypeDynamicMembership)
	}
	if g.Visibility != "" {
		g.Visibility = canonical(g.Visibility, VisibilityPublic, VisibilityPrivate, VisibilityHiddenMembership)
	}
	lowerGUIDs(g.Members)
	if !slices.IsSorted(g.Members) {
		slices.Sort(g.Members)
	}
	g.Members = slices.Compact(g.Members)
}

func boolDefault(b *bool, def bool) *bool {
	if b != nil {
		return b
	}
	return &def
}

// Validate implements Resource.
func (g *Group) Validate() error {
	err := firstError(
		checkID("id", g.ID),
		checkDisplayName("displayName", g.DisplayName),
		checkText("description", g.Description, maxDescription),
		optional("mailNickname", g.MailNickname, checkMailNickname),
		checkStrings("groupTypes", g.GroupTypes, checkGroupType),
		optional("visibility", g.Visibility, func(path, s string) error {
			return checkEnum(path, s, VisibilityPublic, VisibilityPrivate, VisibilityHiddenMembership)
		}),
	)
	if err != nil {
		return err
	}
	if g.RoleAssignable() && g.SecurityEnabled != nil && !*g.SecurityEnabled {
		return strictjson.Errorf("securityEnabled", "must be true when isAssignableToRole is true")
	}
	seen := make(map[string]int, len(g.Members))
	for i, m := range g.Members {
		p := strictjson.Index("members", i)
		if err := checkGUID(p, m); err != nil {
			return err
		}
		if g.ID != "" && strings.EqualFold(m, g.ID) {
			return strictjson.Errorf(p, "a group cannot be a member of itself")
		}
		if j, dup := seen[m]; dup {
			return strictjson.Errorf(p, "repeats member %d (%s)", j, m)
		}
		seen[m] = i
	}
	return nil
}

// bindMembers turns Graph's "members@odata.bind" (URLs of directory
// objects, as in a Graph create-group request) into member ids, so such a
// body adds the members instead of silently dropping an annotation.
func bindMembers(top map[string]json.RawMessage) (bool, error) {
	const bind = "members@odata.bind"
	raw, ok := top[bind]
	if !ok {
		return false, nil
	}
	delete(top, bind)
	var urls []string
	if err := json.Unmarshal(raw, &urls); err != nil {
		return false, strictjson.Errorf(bind, "must be an array of directory object URLs")
	}
	var members []string
	if m, ok := top["members"]; ok && string(m) != "null" {
		if err := json.Unmarshal(m, &members); err != nil {
			return false, strictjson.Errorf("members", "must be an array of ids")
		}
	}
	for i, u := range urls {
		id := boundID(u)
		if !IsGUID(id) {
			return false, strictjson.Errorf(strictjson.Index(bind, i), "must be a directory object URL such as https://graph.microsoft.com/v1.0/directoryObjects/{id}, not %q", u)
		}
		members = append(members, id)
	}
	b, err := json.Marshal(members)
	if err != nil {
		return false, err
	}
	top["members"] = b
	return true, nil
}

// boundID is the object id at the end of an @odata.bind URL, written
// ".../directoryObjects/{id}" or ".../directoryObjects('{id}')".
func boundID(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	last := path.Base(u.Path)
	if _, quoted, ok := strings.Cut(last, "('"); ok {
		id, ok := strings.CutSuffix(quoted, "')")
		if !ok {
			return ""
		}
		return id
	}
	return last
}

func checkGroupType(path, t string) error {
	if t == GroupTypeDynamicMembership {
		return strictjson.Errorf(path, "dynamic membership is not supported; list the members instead")
	}
	return checkEnum(path, t, GroupTypeUnified)
}

// checkMailNickname applies Graph's rule: at most 64 ASCII characters,
// none of @ ( ) \ [ ] " ; : < > , or space.
func checkMailNickname(path, s string) error {
	if len(s) > maxNickname {
		return strictjson.Errorf(path, "must be at most %d characters", maxNickname)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`@()\[]";:<>,`, c) >= 0 {
			return strictjson.Errorf(path, "must not contain %q (ASCII only, no spaces or @()\\[]\";:<>,)", c)
		}
	}
	return nil
}
