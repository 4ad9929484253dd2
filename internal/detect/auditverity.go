package detect

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// verityDetails are the parts of a Verity audit event's details the
// mapping reads. The API writes changes ({kind, id, op}) for a change made
// in a transaction, and id, appId, keyId for the calls that record
// themselves; principalId, roleDefinitionId and credentialsBefore are
// read when an event carries them.
type verityDetails struct {
	ID      string `json:"id"`
	AppID   string `json:"appId"`
	KeyID   string `json:"keyId"`
	UPN     string `json:"userPrincipalName"`
	IP      string `json:"ipAddress"`
	Changes []struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
		Op   string `json:"op"`
	} `json:"changes"`
	PrincipalID        string `json:"principalId"`
	PrincipalType      string `json:"principalType"`
	RoleDefinitionID   string `json:"roleDefinitionId"`
	RoleDefinitionName string `json:"roleDefinitionName"`
	// CredentialsBefore is how many credentials the application held
	// before one was added: 0 makes the new one its first.
	CredentialsBefore *int `json:"credentialsBefore"`
}

// changed is the id of the first change of kind with op, else id.
func (d *verityDetails) changed(kind, op, id string) string {
	for _, c := range d.Changes {
		if c.Kind == kind && c.Op == op {
			return c.ID
		}
	}
	return id
}

// AuditRecordFromVerity maps one of Verity's own audit events to the audit
// record the audit detectors read, in Entra's terms; ok is false for
// events they have no use for. It reads:
//   - users.create and identityProviders.provisionUser: "Add user";
//     users.delete: "Delete user";
//   - directoryRoleAssignments.create: "Add member to role" (a direct
//     assignment: Verity has no PIM); roleAssignments.create (Verity's
//     Azure-style RBAC): "Create role assignment";
//   - applications.addPassword: "Update application – Certificates and
//     secrets management" with the new key;
//   - users.setPassword: "Reset user password";
//   - a sign-in record (SignInAction) in which the user registered an
//     authenticator app or changed the password: "User registered security
//     info", "Change password (self-service)".
func AuditRecordFromVerity(ev *store.AuditEvent) (AuditRecord, bool) {
	switch ev.Action {
	case SignInAction:
		return verityRegistration(ev)
	case "users.create", "identityProviders.provisionUser", "users.delete", "users.setPassword",
		"directoryRoleAssignments.create", "roleAssignments.create", "applications.addPassword":
	default:
		return AuditRecord{}, false // most events (access decisions, reads): nothing to decode
	}
	var d verityDetails
	if len(ev.Details) > 0 && json.Unmarshal(ev.Details, &d) != nil {
		return AuditRecord{}, false
	}
	a := AuditRecord{Time: ev.Time.UTC(), ID: verityEventID(ev), CorrelationID: ev.RequestID, Service: verityService,
		Success: ev.Result == "success", InitiatorID: ev.Actor}
	if addr, err := parseAddr(d.IP); err == nil {
		a.InitiatorIP = addr
	}
	switch ev.Action {
	case "users.create", "identityProviders.provisionUser":
		a.Operation, a.Category = "Add user", "UserManagement"
		a.Targets = []AuditTarget{{ID: d.changed("user", "put", d.ID), Type: "User", UPN: strings.ToLower(d.UPN)}}
	case "users.delete":
		a.Operation, a.Category = "Delete user", "UserManagement"
		a.Targets = []AuditTarget{{ID: d.changed("user", "delete", d.ID), Type: "User"}}
	case "users.setPassword":
		a.Operation, a.Category = "Reset user password", "UserManagement"
		a.Targets = []AuditTarget{{ID: d.ID, Type: "User"}}
	case "directoryRoleAssignments.create":
		a.Operation, a.Category = "Add member to role", "RoleManagement"
		a.Targets = verityAssignment(&d, "directoryRoleAssignment")
	case "roleAssignments.create":
		a.Operation, a.Category = "Create role assignment", "RoleManagement"
		a.Targets = verityAssignment(&d, "roleAssignment")
	case "applications.addPassword":
		a.Operation, a.Category = "Update application – Certificates and secrets management", "ApplicationManagement"
		a.AppID = d.AppID
		old := ""
		if d.CredentialsBefore != nil && *d.CredentialsBefore == 0 {
			old = "[]"
		}
		added, _ := json.Marshal([]string{"[KeyIdentifier=" + d.KeyID + ",KeyType=Password,KeyUsage=Verify,DisplayName=]"})
		a.Targets = []AuditTarget{{ID: d.ID, Type: "Application", Modified: []ModifiedProperty{{Name: "KeyDescription", Old: old, New: string(added)}}}}
	default:
		return AuditRecord{}, false
	}
	return a, true
}

// verityAssignment is the targets of a role assignment: the principal and
// the role when the event names them, and the assignment.
func verityAssignment(d *verityDetails, kind string) []AuditTarget {
	var out []AuditTarget
	if d.PrincipalID != "" {
		typ := d.PrincipalType
		if typ == "" {
			typ = "Principal" // a user, group or service principal: the event does not say
		}
		out = append(out, AuditTarget{ID: strings.ToLower(d.PrincipalID), Type: typ})
	}
	if id := roleGUID(d.RoleDefinitionID); id != "" || d.RoleDefinitionName != "" {
		name := d.RoleDefinitionName
		if name == "" {
			name = privilegedRoleIDs[id]
		}
		out = append(out, AuditTarget{ID: id, Type: "Role", Name: name})
	}
	return append(out, AuditTarget{ID: d.changed(kind, "put", d.ID), Type: "RoleAssignment"})
}

// roleGUID is the role definition id of an ARM path
// (".../roleDefinitions/{guid}") or a bare id, lower-cased.
func roleGUID(ref string) string {
	return strings.ToLower(ref[strings.LastIndexByte(ref, '/')+1:])
}

// verityEventID is the id the audit log API lists the event by (its
// sequence number), else its request id.
func verityEventID(ev *store.AuditEvent) string {
	if ev.Seq > 0 {
		return strconv.FormatInt(ev.Seq, 10)
	}
	return ev.RequestID
}

// verityRegistration reads a sign-in record in which the user registered
// or changed a method (the sign-in pages record those as authentication
// steps, not as audit events of their own).
func verityRegistration(ev *store.AuditEvent) (AuditRecord, bool) {
	var s struct {
		ID            string    `json:"id"`
		Created       time.Time `json:"createdDateTime"`
		UserID        string    `json:"userId"`
		UPN           string    `json:"userPrincipalName"`
		IP            string    `json:"ipAddress"`
		CorrelationID string    `json:"correlationId"`
		Steps         []struct {
			Succeeded bool      `json:"succeeded"`
			At        time.Time `json:"authenticationStepDateTime"`
			Result    string    `json:"authenticationStepResultDetail"`
		} `json:"authenticationDetails"`
	}
	// Most sign-ins register nothing: look before decoding.
	if !bytes.Contains(ev.Details, []byte(`registered"`)) && !bytes.Contains(ev.Details, []byte(`changed"`)) {
		return AuditRecord{}, false
	}
	if json.Unmarshal(ev.Details, &s) != nil {
		return AuditRecord{}, false
	}
	for _, st := range s.Steps {
		op := ""
		switch {
		case !st.Succeeded:
		case st.Result == "Authenticator app registered":
			op = "User registered security info"
		case st.Result == "Password changed":
			op = "Change password (self-service)"
		}
		if op == "" {
			continue
		}
		a := AuditRecord{Time: st.At.UTC(), ID: s.ID, CorrelationID: s.CorrelationID, Operation: op, Category: "UserManagement",
			Service: verityService, Success: true, InitiatorUPN: strings.ToLower(s.UPN), InitiatorID: s.UserID,
			Targets: []AuditTarget{{ID: s.UserID, Type: "User", UPN: strings.ToLower(s.UPN)}}}
		if a.Time.IsZero() {
			a.Time = s.Created.UTC()
		}
		if addr, err := parseAddr(s.IP); err == nil {
			a.InitiatorIP = addr
		}
		return a, true
	}
	return AuditRecord{}, false
}
