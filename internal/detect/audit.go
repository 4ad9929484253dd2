package detect

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// AuditRecord is one audit (directory change) record, whatever log it came
// from: Microsoft Entra audit logs, Azure Key Vault audit events, or
// Verity's own audit log (AuditRecordFromVerity).
type AuditRecord struct {
	// Time is when the change was made; zero when the export has none
	// (hunting-query output).
	Time          time.Time
	ID            string // the record's id: the evidence alerts list
	CorrelationID string // the operation's: one change logged twice shares it
	// Operation is what was done, as Entra names it (OperationName,
	// activityDisplayName): "Add member to role", "Update application –
	// Certificates and secrets management", Key Vault's "SecretGet".
	Operation string
	Category  string // RoleManagement, UserManagement, ApplicationManagement, AuditEvent (Key Vault)...
	Service   string // LoggedByService: "Core Directory", "PIM", "Azure Key Vault", "Verity"
	Success   bool
	// The initiator: a user (UPN lower-cased, object id) or an application
	// (display name, service principal or app id), and its address.
	InitiatorUPN, InitiatorID, InitiatorApp string
	InitiatorIP                             netip.Addr
	Targets                                 []AuditTarget
	// AppID is the appId (client id) of the application the record is
	// about, when the record says.
	AppID string
	// Client is the client software the record names (Office activity's
	// ClientInfoString: "Client=REST;;").
	Client string
}

// AuditTarget is one object a record changed: a user, an application, a
// service principal, a role, a secret.
type AuditTarget struct {
	ID, Type, Name, UPN string
	Modified            []ModifiedProperty
}

// ModifiedProperty is one changed property of a target, with the values
// as the log writes them (Entra: JSON text, e.g. "\"AllPrincipals\"").
type ModifiedProperty struct {
	Name, Old, New string
}

// Service names of the records the readers make.
const (
	keyVaultService = "Azure Key Vault"
	verityService   = "Verity"
	exchangeService = "Exchange"
)

// mailItemsAccessed is the Office activity of mail read (Exchange's
// mailbox auditing), the one Office operation the reader keeps.
const mailItemsAccessed = "MailItemsAccessed"

// ReadAuditRecords reads audit records from r: Log Analytics rows
// (AuditLogs, AzureDiagnostics or AZKVAuditLogs for Key Vault; CSV or JSON
// lines, TitleCase columns, JSON-valued columns as JSON strings, a UTF-8
// byte order mark, no time column in hunting-query output), Azure
// Monitor diagnostic records (time/category/operationName/properties{...},
// keys in any case), and the mail read in Office activity
// (MailItemsAccessed, as an OfficeActivity row or an Office 365
// Management API record). Records that are not audit records (sign-ins,
// other Office activity) are skipped. Errors name the line (the record,
// in a JSON array).
func ReadAuditRecords(r io.Reader) ([]AuditRecord, error) {
	return readRows(r, "audit", auditFromRow)
}

// auditFromRow reads one record; ok is false when it is not an audit
// record.
func auditFromRow(row map[string]any) (AuditRecord, bool, error) {
	f := fields{row: row}
	if p, ok := lookup(row, "properties"); ok {
		f.props, _ = p.(map[string]any)
	}
	table := strings.ToLower(topString(row, "Type"))
	logCategory := strings.ToLower(topString(row, "category"))
	switch {
	case strings.Contains(table, "signinlogs") || (f.props != nil && strings.Contains(logCategory, "signinlogs")):
		return AuditRecord{}, false, nil
	case isKeyVault(f, table, logCategory):
		a, err := keyVaultAudit(f)
		return a, err == nil, err
	case isOfficeActivity(f, table):
		if !strings.EqualFold(strings.TrimSpace(f.str("Operation")), mailItemsAccessed) {
			return AuditRecord{}, false, nil
		}
		a, err := mailAccess(f)
		return a, err == nil, err
	case f.get("initiatedBy", "InitiatedBy", "targetResources", "TargetResources", "loggedByService", "LoggedByService") != nil:
		a, err := directoryAudit(f)
		return a, err == nil, err
	}
	return AuditRecord{}, false, nil
}

// topString is a string value of the row itself (not its properties).
func topString(row map[string]any, name string) string {
	v, _ := lookup(row, name)
	s, _ := v.(string)
	return s
}

// isKeyVault reports whether a record is a Key Vault audit event.
func isKeyVault(f fields, table, logCategory string) bool {
	switch {
	case table == "azkvauditlogs":
		return true
	case strings.EqualFold(f.str("ResourceType"), "VAULTS"), strings.EqualFold(f.str("ResourceProvider"), "MICROSOFT.KEYVAULT"):
		return true
	case logCategory == "auditevent":
		return strings.Contains(strings.ToUpper(f.str("resourceId", "ResourceId", "_ResourceId")), "/VAULTS/")
	}
	return false
}

// isOfficeActivity reports whether a record is Office activity: an
// OfficeActivity row, or an Office 365 Management API record (Operation
// and Workload or RecordType; Entra and Azure name it OperationName).
func isOfficeActivity(f fields, table string) bool {
	return table == "officeactivity" || f.get("Operation") != nil && f.get("Workload", "OfficeWorkload", "RecordType") != nil
}

// auditTime is when the change was made: activityDateTime, else
// TimeGenerated or the record's time; zero when the record has none.
func auditTime(f fields) (time.Time, error) {
	return firstTime(f, []string{"activityDateTime", "ActivityDateTime", "ActivityDateTime [UTC]"}, []string{"TimeGenerated", "TimeGenerated [UTC]", "time"})
}

// firstTime is the time in the first group of names the record has; zero
// when it has none.
func firstTime(f fields, groups ...[]string) (time.Time, error) {
	for _, names := range groups {
		if v, name := f.named(names...); v != "" {
			if t, ok := parseTime(v); ok {
				return t, nil
			}
			return time.Time{}, fmt.Errorf("%s: not a time: %q", name, v)
		}
	}
	return time.Time{}, nil
}

// directoryAudit reads an Entra audit record (AuditLogs).
func directoryAudit(f fields) (AuditRecord, error) {
	var a AuditRecord
	var err error
	if a.Time, err = auditTime(f); err != nil {
		return a, err
	}
	a.ID = f.str("id", "Id")
	a.CorrelationID = f.str("correlationId", "CorrelationId")
	a.Operation = strings.TrimSpace(f.str("operationName", "OperationName"))
	if a.Operation == "" {
		a.Operation = strings.TrimSpace(f.str("activityDisplayName", "ActivityDisplayName"))
	}
	// A diagnostic record's own category is the log's ("AuditLogs"); the
	// audit category is in its properties.
	if f.props != nil {
		a.Category = fields{row: f.props}.str("category")
	}
	if c := f.str("category", "Category"); a.Category == "" && !strings.EqualFold(c, "AuditLogs") {
		a.Category = c
	}
	a.Service = f.str("loggedByService", "LoggedByService")
	a.Success = strings.EqualFold(f.str("result", "Result"), "success")
	ip := ""
	if by := f.obj("initiatedBy", "InitiatedBy"); by != nil {
		if u, ok := by["user"].(map[string]any); ok {
			uf := fields{row: u}
			a.InitiatorUPN, a.InitiatorID, ip = strings.ToLower(uf.str("userPrincipalName")), uf.str("id"), uf.str("ipAddress")
		}
		if app, ok := by["app"].(map[string]any); ok {
			af := fields{row: app}
			a.InitiatorApp = af.str("displayName")
			if a.InitiatorID == "" {
				a.InitiatorID = af.str("servicePrincipalId", "appId")
			}
			if ip == "" {
				ip = af.str("ipAddress")
			}
		}
	}
	if who := f.str("InitiatingUserOrApp"); who != "" && a.InitiatorUPN == "" && a.InitiatorApp == "" {
		if strings.Contains(who, "@") {
			a.InitiatorUPN = strings.ToLower(who)
		} else {
			a.InitiatorApp = who
		}
	}
	if ip == "" {
		ip = f.str("InitiatingIpAddress", "callerIpAddress")
	}
	if ip == "" {
		ip = additionalDetail(f, "ipaddr")
	}
	if addr, err := parseAddr(ip); err == nil {
		a.InitiatorIP = addr
	}
	for _, t := range f.list("targetResources", "TargetResources") {
		m, ok := t.(map[string]any)
		if !ok {
			continue
		}
		tf := fields{row: m}
		target := AuditTarget{ID: tf.str("id"), Type: tf.str("type"), Name: tf.str("displayName"), UPN: strings.ToLower(tf.str("userPrincipalName"))}
		for _, p := range tf.list("modifiedProperties") {
			if pm, ok := p.(map[string]any); ok {
				target.Modified = append(target.Modified, ModifiedProperty{Name: propText(pm["displayName"]), Old: propText(pm["oldValue"]), New: propText(pm["newValue"])})
			}
		}
		a.Targets = append(a.Targets, target)
	}
	return a, nil
}

// parseAddr reads an address as logs write it (IPv4 in IPv6 unmapped).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	return a.Unmap(), err
}

// parseClientAddr reads an address that may carry the client's port, as
// Office activity writes it ("203.0.113.9:50312", "[2001:db8::1]:443").
func parseClientAddr(s string) (netip.Addr, error) {
	a, err := parseAddr(s)
	if err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
	return ap.Addr().Unmap(), err
}

// mailAccess reads a MailItemsAccessed record of Office activity: the
// application that read (ClientAppId), as whom (UserId), from where and
// with what, and whose mailbox it read.
func mailAccess(f fields) (AuditRecord, error) {
	a := AuditRecord{Operation: mailItemsAccessed, Category: "ExchangeItem", Service: exchangeService}
	var err error
	if a.Time, err = firstTime(f, []string{"CreationTime"}, []string{"TimeGenerated", "TimeGenerated [UTC]"}); err != nil {
		return a, err
	}
	if w := f.str("Workload", "OfficeWorkload"); w != "" {
		a.Service = w
	}
	a.ID = f.str("OfficeId", "Id", "SourceRecordId")
	a.CorrelationID = f.str("SessionId")
	// Exchange logs the mail read, not refusals: a record without a
	// status is a read.
	status := f.str("ResultStatus")
	a.Success = status == "" || foldIn(status, []string{"Succeeded", "Success", "True", "PartiallySucceeded"})
	a.InitiatorUPN = strings.ToLower(f.str("UserId"))
	a.InitiatorApp = f.str("ClientAppId")
	a.AppID = f.str("AppId")
	a.Client = f.str("ClientInfoString")
	if addr, err := parseClientAddr(f.str("Client_IPAddress", "ClientIPAddress", "ClientIP")); err == nil {
		a.InitiatorIP = addr
	}
	owner := f.str("MailboxOwnerUPN")
	if owner == "" {
		owner = f.str("UserId")
	}
	a.Targets = []AuditTarget{{ID: f.str("MailboxGuid"), Type: "Mailbox", Name: owner, UPN: strings.ToLower(owner)}}
	return a, nil
}

// additionalDetail is the value of key in the record's additionalDetails
// ([{key, value}]).
func additionalDetail(f fields, key string) string {
	for _, d := range f.list("additionalDetails", "AdditionalDetails") {
		if m, ok := d.(map[string]any); ok && strings.EqualFold(propText(m["key"]), key) {
			return propText(m["value"])
		}
	}
	return ""
}

// propText is a JSON value as the log's text: a string as is, null as "",
// anything else as JSON.
func propText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// keyVaultAudit reads a Key Vault audit event: AzureDiagnostics columns
// (identity_claim_*), AZKVAuditLogs (Identity), or the diagnostic
// record (identity.claim, properties).
func keyVaultAudit(f fields) (AuditRecord, error) {
	a := AuditRecord{Service: keyVaultService, Category: "AuditEvent"}
	var err error
	if a.Time, err = auditTime(f); err != nil {
		return a, err
	}
	a.CorrelationID = f.str("correlationId", "CorrelationId")
	a.ID = f.str("_ItemId")
	if a.ID == "" {
		a.ID = a.CorrelationID
	}
	a.Operation = f.str("operationName", "OperationName")
	result := f.str("resultType", "ResultType", "resultSignature", "ResultSignature")
	a.Success = strings.EqualFold(result, "Success") || strings.EqualFold(result, "OK")
	a.InitiatorID = f.str("identity_claim_oid_g", "identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g")
	a.InitiatorUPN = strings.ToLower(f.str("identity_claim_upn_s", "identity_claim_http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn_s"))
	a.InitiatorApp = f.str("identity_claim_appid_g")
	if id := f.obj("identity", "Identity"); id != nil {
		if claim, ok := id["claim"].(map[string]any); ok {
			cf := fields{row: claim}
			if a.InitiatorID == "" {
				a.InitiatorID = cf.str("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
			}
			if a.InitiatorUPN == "" {
				a.InitiatorUPN = strings.ToLower(cf.str("upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"))
			}
			if a.InitiatorApp == "" {
				a.InitiatorApp = cf.str("appid")
			}
		}
	}
	if addr, err := parseAddr(f.str("callerIpAddress", "CallerIPAddress")); err == nil {
		a.InitiatorIP = addr
	}
	vault := f.str("Resource")
	if vault == "" {
		rid := f.str("resourceId", "ResourceId", "_ResourceId")
		vault = rid[strings.LastIndexByte(rid, '/')+1:]
	}
	kind := "Vault"
	switch op := strings.ToLower(a.Operation); {
	case strings.HasPrefix(op, "secret"):
		kind = "Secret"
	case strings.HasPrefix(op, "key"):
		kind = "Key"
	case strings.HasPrefix(op, "certificate"):
		kind = "Certificate"
	}
	a.Targets = []AuditTarget{{ID: f.str("id_s", "id", "Id", "requestUri_s", "RequestUri"), Type: kind, Name: vault}}
	return a, nil
}
