package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// privilegedRoleIDs are the roles that are privileged whatever their name:
// Entra's built-in directory roles Microsoft labels privileged, Azure's
// privileged administrator roles, and Verity's roles that manage access or
// the directory. Keys are lower-case ids.
var privilegedRoleIDs = map[string]string{
	"db506228-d27e-4b7d-95e5-295956d6615f": "Agent ID Administrator",
	"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
	"cf1c38e5-3621-4004-a7cb-879624dced7c": "Application Developer",
	"ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe": "Attribute Provisioning Administrator",
	"422218e4-db15-4ef9-bbe0-8afb41546d79": "Attribute Provisioning Reader",
	"c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
	"25a516ed-2fa0-40ea-a2d0-12923a21473a": "Authentication Extensibility Administrator",
	"aaf43236-0c0d-4d5f-883a-6955382ac081": "B2C IEF Keyset Administrator",
	"158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
	"7698a772-787b-4ac8-901f-60d6b08affd2": "Cloud Device Administrator",
	"b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
	"9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
	"8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
	"be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
	"62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
	"f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
	"729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
	"8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
	"3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
	"59d46f88-662b-457b-bceb-5c3809e5908f": "Lifecycle Workflows Administrator",
	"4ba39ca4-527c-499a-b93d-d9b492c50246": "Partner Tier1 Support",
	"e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": "Partner Tier2 Support",
	"966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
	"7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
	"e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
	"194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
	"5f2222b1-57c3-48ba-8ad5-d4759f1fde6f": "Security Operator",
	"5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
	"fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
	// Azure RBAC.
	"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
	"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
	"18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
	"f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
	// Verity's own.
	"02037162-9175-4229-8eeb-d5aaa6de0992": "Verity Privileged Role Administrator",
	"cbbe2f17-f93d-4777-b660-edd639efa997": "Verity Directory Writer",
	"e7984d5d-3412-467b-a3b2-c67ad85915a2": "Verity Conditional Access Administrator",
}

// privilegedWellKnown are the Role.WellKnownObjectName values of Sentinel's
// "User added to Microsoft Entra ID Privileged Groups".
var privilegedWellKnown = map[string]bool{
	"TenantAdmins": true, "PrivilegedRoleAdmins": true, "UserAccountAdmins": true, "PrivilegedAuthenticationAdmins": true,
}

// auditRole is the role a role-management record is about.
type auditRole struct{ id, name, wellKnown string }

func (ro auditRole) known() bool { return ro.id != "" || ro.name != "" || ro.wellKnown != "" }

// key names the role for per-role state: its name, else its id.
func (ro auditRole) key() string {
	if ro.name != "" {
		return strings.ToLower(ro.name)
	}
	return ro.id
}

func (ro auditRole) String() string {
	if ro.name != "" {
		return ro.name
	}
	if ro.id != "" {
		return "role " + ro.id
	}
	return "a role"
}

// roleOf reads the role from a record: a target of type Role (PIM,
// Verity), or the Role.* properties of the member target (Core
// Directory).
func roleOf(r *AuditRecord) auditRole {
	var ro auditRole
	for _, t := range r.Targets {
		if strings.EqualFold(t.Type, "Role") {
			ro.id, ro.name = strings.ToLower(t.ID), t.Name
		}
		for _, m := range t.Modified {
			switch m.Name {
			case "Role.DisplayName":
				ro.name = unquoteValue(m.New)
			case "Role.TemplateId":
				ro.id = strings.ToLower(unquoteValue(m.New))
			case "Role.ObjectID":
				if ro.id == "" {
					ro.id = strings.ToLower(unquoteValue(m.New))
				}
			case "Role.WellKnownObjectName":
				ro.wellKnown = unquoteValue(m.New)
			}
		}
	}
	if ro.name == "" {
		ro.name = privilegedRoleIDs[ro.id]
	}
	return ro
}

// privileged reports whether a role is privileged: a well-known privileged
// role (by id, name or well-known name), one of extra (ids or names), or
// one whose name contains one of contains (any case; Sentinel's "Admin").
func (ro auditRole) privileged(contains, extra []string) bool {
	if _, ok := privilegedRoleIDs[ro.id]; ok || privilegedWellKnown[ro.wellKnown] {
		return true
	}
	for _, name := range privilegedRoleIDs {
		if ro.name != "" && strings.EqualFold(ro.name, name) {
			return true
		}
	}
	if ro.id != "" && foldIn(ro.id, extra) || ro.name != "" && foldIn(ro.name, extra) {
		return true
	}
	return ro.name != "" && slices.ContainsFunc(contains, func(c string) bool { return c != "" && foldContains(ro.name, c) })
}

// roleAdded reports whether a record adds a member to a role: Core
// Directory's "Add (eligible) member to role", PIM's completed requests
// ("Add member to role in PIM completed (permanent)"; a request, or any
// other record PIM logs, is not yet an assignment), Verity's "Create role
// assignment".
func roleAdded(r *AuditRecord) bool {
	if !r.Success {
		return false
	}
	op := r.Operation
	if !foldHasPrefix(op, "Add member to role") && !foldHasPrefix(op, "Add eligible member to role") && !strings.EqualFold(op, "Create role assignment") {
		return false
	}
	if foldContains(op, "requested") {
		return false
	}
	return !strings.EqualFold(r.Service, "PIM") || foldContains(op, "completed")
}

// RoleAssignedOutsidePIM: a role assigned directly rather than through
// Privileged Identity Management — "Add member to role outside of PIM",
// or "Add member to role" logged by the directory itself with an
// initiator that is not PIM (after Sentinel's "Privileged Role Assigned
// Outside PIM"; ATT&CK T1078.004). Verity has no PIM: each of its direct
// assignments is one. The role must be privileged (as for
// privilegedRoleAssigned); a directory role the record does not name
// counts, an RBAC role it does not name does not (most are application
// access).
type RoleAssignedOutsidePIM struct {
	DirectoryServices []string `json:"directoryServices"` // services whose "Add member to role" is a direct assignment
	PIMInitiators     []string `json:"pimInitiators"`     // the initiators PIM assigns as
	RoleNameContains  []string `json:"roleNameContains"`
	PrivilegedRoles   []string `json:"privilegedRoles"` // further privileged roles, by id or name
}

// Name implements AuditDetector.
func (d *RoleAssignedOutsidePIM) Name() string { return "roleAssignedOutsidePIM" }

// ObserveAudit implements AuditDetector.
func (d *RoleAssignedOutsidePIM) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if !r.Success {
		return
	}
	direct := strings.EqualFold(r.Operation, "Add member to role") || strings.EqualFold(r.Operation, "Create role assignment")
	if !foldContains(r.Operation, "Add member to role outside of PIM") &&
		!(direct && foldIn(r.Service, d.DirectoryServices) && !foldIn(r.InitiatorApp, d.PIMInitiators) && !foldIn(r.InitiatorUPN, d.PIMInitiators)) {
		return
	}
	ro := roleOf(r)
	if ro.known() && !ro.privileged(d.RoleNameContains, d.PrivilegedRoles) || !ro.known() && strings.EqualFold(r.Operation, "Create role assignment") {
		return
	}
	a := Alert{Detector: d.Name(), Key: d.Name() + "/" + recordRef(r), MITRE: []string{"T1078.004"}, Severity: "low", IP: r.InitiatorIP,
		First: r.Time, Last: r.Time, Evidence: recordEvidence(r)}
	to := "a principal the record does not name"
	if p := memberTarget(r); p != nil {
		a.User, a.UserID, to = p.UPN, p.ID, accountLabel(p)
	}
	a.Summary = fmt.Sprintf("%s assigned %s to %s outside PIM", initiatorName(r), ro, to)
	raise(a)
}

// PrivilegedRoleAssigned: a user, group or service principal added (or
// made eligible) to a privileged role it did not get within the lookback
// (after Sentinel's "New User Assigned to Privileged Role"; ATT&CK
// T1078.004). Privileged: a name containing one of RoleNameContains
// ("Admin"), a well-known privileged role (Global Administrator, Owner,
// User Access Administrator, Verity Privileged Role Administrator...), or
// one of PrivilegedRoles. Default lookback: 14 days.
type PrivilegedRoleAssigned struct {
	Lookback         time.Duration `json:"lookback"`
	RoleNameContains []string      `json:"roleNameContains"`
	PrivilegedRoles  []string      `json:"privilegedRoles"` // further privileged roles, by id or name
	seen             map[string]time.Time
	sweep            sweeper
}

// Name implements AuditDetector.
func (d *PrivilegedRoleAssigned) Name() string { return "privilegedRoleAssigned" }

// ObserveAudit implements AuditDetector.
func (d *PrivilegedRoleAssigned) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.seen != nil && d.sweep.due(r.Time, d.Lookback) {
		sweepRaised(d.seen, r.Time, d.Lookback)
	}
	if !roleAdded(r) {
		return
	}
	ro := roleOf(r)
	p := memberTarget(r)
	if p == nil || !ro.privileged(d.RoleNameContains, d.PrivilegedRoles) {
		return
	}
	k := accountKey(p) + "|" + ro.key()
	last, ok := d.seen[k]
	if d.seen == nil {
		d.seen = map[string]time.Time{}
	}
	d.seen[k] = r.Time
	if ok && r.Time.Sub(last) <= d.Lookback {
		return // assigned within the lookback already (PIM logs one assignment twice)
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), k, r.Time.Unix()), MITRE: []string{"T1078.004"}, Severity: "high",
		User: p.UPN, UserID: p.ID, IP: r.InitiatorIP, First: r.Time, Last: r.Time, Evidence: recordEvidence(r),
		Summary: fmt.Sprintf("%s made %s a member of %s (%s)", initiatorName(r), accountLabel(p), ro, r.Operation)})
}

// AuthMethodsChangedPrivileged: the authentication methods of an account
// that holds a privileged role registered, changed or deleted ("User
// registered security info", "Admin updated security info", a password
// reset; Verity's own: an authenticator app enrolled, a password set or
// changed) — someone making the account theirs (after Sentinel's
// "Authentication Methods Changed for Privileged Account"; ATT&CK T1098).
// The holders are those the stream assigned a privileged role within the
// lookback, and those Privileged says are (the engine may set it from the
// live directory). One account's changes within Window raise once.
// Defaults: 14 days, 2 hours.
type AuthMethodsChangedPrivileged struct {
	Operations       []string      `json:"operations"` // the operations that change a method
	Lookback         time.Duration `json:"lookback"`   // how long an assignment seen in the stream makes a holder
	Window           time.Duration `json:"window"`
	RoleNameContains []string      `json:"roleNameContains"`
	PrivilegedRoles  []string      `json:"privilegedRoles"` // further privileged roles, by id or name
	// Privileged, when set, reports whether a user (object id) holds a
	// privileged role now.
	Privileged func(userID string) bool `json:"-"`
	holders    map[string]time.Time     // user id or UPN → last privileged assignment seen
	raised     map[string]time.Time
	sweep      sweeper
}

// Name implements AuditDetector.
func (d *AuthMethodsChangedPrivileged) Name() string { return "authMethodsChangedPrivileged" }

// ObserveAudit implements AuditDetector.
func (d *AuthMethodsChangedPrivileged) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.holders != nil && d.sweep.due(r.Time, max(d.Lookback, d.Window)) {
		sweepRaised(d.holders, r.Time, d.Lookback)
		sweepRaised(d.raised, r.Time, d.Window)
	}
	if roleAdded(r) {
		if p := memberTarget(r); p != nil && roleOf(r).privileged(d.RoleNameContains, d.PrivilegedRoles) {
			d.ensureMaps()
			if p.ID != "" {
				d.holders[strings.ToLower(p.ID)] = r.Time
			}
			if p.UPN != "" {
				d.holders[p.UPN] = r.Time
			}
		}
		return
	}
	if !r.Success || !foldIn(r.Operation, d.Operations) {
		return
	}
	p := memberTarget(r, "User")
	if p == nil || !d.holds(p, r.Time) {
		return
	}
	k := accountKey(p)
	if last, ok := d.raised[k]; ok && r.Time.Sub(last) <= d.Window {
		return
	}
	d.ensureMaps()
	d.raised[k] = r.Time
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), k, r.Time.Unix()), MITRE: []string{"T1098"}, Severity: "high",
		User: p.UPN, UserID: p.ID, IP: r.InitiatorIP, First: r.Time, Last: r.Time, Evidence: recordEvidence(r),
		Summary: fmt.Sprintf("%s: %s for %s, who holds a privileged role", initiatorName(r), r.Operation, accountLabel(p))})
}

func (d *AuthMethodsChangedPrivileged) ensureMaps() {
	if d.holders == nil {
		d.holders, d.raised = map[string]time.Time{}, map[string]time.Time{}
	}
}

func (d *AuthMethodsChangedPrivileged) holds(p *AuditTarget, now time.Time) bool {
	for _, k := range []string{strings.ToLower(p.ID), p.UPN} {
		if at, ok := d.holders[k]; ok && k != "" && now.Sub(at) <= d.Lookback {
			return true
		}
	}
	return d.Privileged != nil && p.ID != "" && d.Privileged(p.ID)
}
