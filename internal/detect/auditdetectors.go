package detect

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// An AuditDetector watches audit records in time order and raises alerts.
type AuditDetector interface {
	Name() string
	ObserveAudit(r *AuditRecord, raise func(Alert))
}

// DefaultAuditDetectors returns the audit detectors with their default
// thresholds (after the Sentinel rules each names).
func DefaultAuditDetectors() []AuditDetector {
	admin := []string{"Admin"}
	// The scopes that read a mailbox: through Graph, EWS, or as the
	// application itself (Exchange's full_access_as_app).
	mailScopes := []string{"Mail.*", "MailboxSettings.*", "EWS.AccessAsUser.All", "full_access_as_app"}
	return []AuditDetector{
		&CredentialAdded{Operations: []string{"Certificates and secrets management", "Add service principal"}, Window: 24 * time.Hour},
		&ConsentGrant{Scopes: append(slices.Clone(mailScopes), "Files.*", "Sites.*",
			"Directory.ReadWrite.All", "Directory.AccessAsUser.All", "RoleManagement.ReadWrite.Directory", "AppRoleAssignment.ReadWrite.All",
			"Application.ReadWrite.All", "User.ReadWrite.All", "Group.ReadWrite.All"), Window: 24 * time.Hour},
		&MailAccessAfterConsent{Scopes: mailScopes, Window: 24 * time.Hour, Lookback: 7 * 24 * time.Hour},
		&RoleAssignedOutsidePIM{DirectoryServices: []string{"Core Directory", verityService}, PIMInitiators: []string{"MS-PIM", "MS-PIM-Fairfax"},
			RoleNameContains: admin},
		&PrivilegedRoleAssigned{Lookback: 14 * 24 * time.Hour, RoleNameContains: admin},
		&AuthMethodsChangedPrivileged{Operations: []string{"User registered security info", "User changed default security info",
			"User deleted security info", "User reviewed security info", "Admin registered security info", "Admin updated security info",
			"Admin deleted security info", "Reset user password", "Change user password", "Reset password (self-service)",
			"Change password (self-service)"}, Lookback: 14 * 24 * time.Hour, Window: 2 * time.Hour, RoleNameContains: admin},
		&AccountCreatedDeleted{Window: 24 * time.Hour},
		&MassSecretRetrieval{Threshold: 25, Window: 24 * time.Hour, Operations: []string{"SecretGet", "KeyGet", "VaultGet"},
			// Azure Resource Graph and Policy Insights read every vault.
			IgnoreApps: []string{"509e4652-da8d-478d-a730-e9d4a1996ca4", "8cae6e77-e04e-42ce-b5cb-50d82bce26b1"}},
	}
}

// RunAudit feeds records, sorted by time, through detectors and returns
// the alerts they raise, each key once.
func RunAudit(records []AuditRecord, detectors []AuditDetector) []Alert {
	slices.SortStableFunc(records, func(a, b AuditRecord) int { return a.Time.Compare(b.Time) })
	seen := map[string]bool{}
	var out []Alert
	for i := range records {
		for _, d := range detectors {
			d.ObserveAudit(&records[i], func(a Alert) {
				if !seen[a.Key] {
					seen[a.Key] = true
					out = append(out, a)
				}
			})
		}
	}
	return out
}

// foldContains reports whether s contains sub, ignoring case, without
// allocating.
func foldContains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func foldHasPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func foldIn(s string, list []string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(s, x) })
}

// unquoteValue is a property value without its JSON quotes ("\"x\"" → x).
func unquoteValue(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.ContainsRune(v, '\\') {
		return v[1 : len(v)-1] // most values: no escapes to decode, nothing to allocate
	}
	var s string
	if json.Unmarshal([]byte(v), &s) == nil {
		return s
	}
	return strings.Trim(v, `"`)
}

// initiatorName names who made a change.
func initiatorName(r *AuditRecord) string {
	for _, s := range []string{r.InitiatorUPN, r.InitiatorApp, r.InitiatorID} {
		if s != "" {
			return s
		}
	}
	return "an unknown initiator"
}

// recordRef is what makes a record's alert key unique: its id, else its
// time.
func recordRef(r *AuditRecord) string {
	if r.ID != "" {
		return r.ID
	}
	return fmt.Sprint(r.Time.UnixNano())
}

// recordEvidence is the record's id, as alerts list it.
func recordEvidence(r *AuditRecord) []string {
	if r.ID == "" {
		return []string{}
	}
	return []string{r.ID}
}

// memberTarget is the account a record is about: its first user, group or
// service principal target; nil when it names none.
func memberTarget(r *AuditRecord, types ...string) *AuditTarget {
	if len(types) == 0 {
		types = []string{"User", "ServicePrincipal", "Group", "Principal"}
	}
	for i := range r.Targets {
		if foldIn(r.Targets[i].Type, types) {
			return &r.Targets[i]
		}
	}
	return nil
}

// accountKey keys per-account state: the object id, else the UPN, else the
// name.
func accountKey(t *AuditTarget) string {
	switch {
	case t.ID != "":
		return strings.ToLower(t.ID)
	case t.UPN != "":
		return t.UPN
	}
	return strings.ToLower(t.Name)
}

// accountLabel names an account in a summary.
func accountLabel(t *AuditTarget) string {
	for _, s := range []string{t.UPN, t.Name, t.ID} {
		if s != "" {
			return s
		}
	}
	return "an unnamed account"
}

// CredentialAdded: a password secret or certificate added to an
// application or service principal by a user (after Sentinel's "New
// access credential added to Application or Service Principal" and "First
// access credential added ... where no credential was present"; ATT&CK
// T1550.001, T1098.001). The first credential of an application (its key
// list was `[]` before) is high, another one medium. Rows of one change logged twice
// (one CorrelationId) raise once. Defaults: operations containing
// "Certificates and secrets management" or "Add service principal"; rows
// remembered 24 hours.
type CredentialAdded struct {
	Operations []string      `json:"operations"` // an operation containing one of these (any case) adds credentials
	Window     time.Duration `json:"window"`     // how long a change's rows are remembered, to raise it once
	raised     map[string]time.Time
	sweep      sweeper
}

// Name implements AuditDetector.
func (d *CredentialAdded) Name() string { return "credentialAdded" }

// keyDesc is one entry of Entra's KeyDescription list:
// "[KeyIdentifier=…,KeyType=Password,KeyUsage=Verify,DisplayName=…]".
type keyDesc struct{ id, typ, usage, name string }

// keyList reads a KeyDescription value; ok is false when it is not a list.
func keyList(v string) ([]keyDesc, bool) {
	var list []string
	if json.Unmarshal([]byte(v), &list) != nil || list == nil {
		return nil, false
	}
	out := make([]keyDesc, 0, len(list))
	for _, s := range list {
		var k keyDesc
		if _, rest, ok := strings.Cut(s, "KeyIdentifier="); ok {
			k.id, rest, _ = strings.Cut(rest, ",KeyType=")
			k.typ, rest, _ = strings.Cut(rest, ",KeyUsage=")
			k.usage, rest, _ = strings.Cut(rest, ",DisplayName=")
			k.name = strings.TrimSuffix(rest, "]")
		} else {
			k.id = s
		}
		out = append(out, k)
	}
	return out, true
}

// userInitiated reports whether a user made the change: a UPN with "@"
// (Sentinel's test), or, in Verity's own records, an actor known only by
// its id.
func userInitiated(r *AuditRecord) bool {
	return strings.Contains(r.InitiatorUPN, "@") || (r.InitiatorUPN == "" && r.InitiatorApp == "" && r.InitiatorID != "")
}

// ObserveAudit implements AuditDetector.
func (d *CredentialAdded) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.raised != nil && d.sweep.due(r.Time, d.Window) {
		sweepRaised(d.raised, r.Time, d.Window)
	}
	if !r.Success || !slices.ContainsFunc(d.Operations, func(op string) bool { return foldContains(r.Operation, op) }) || !userInitiated(r) {
		return
	}
	for i := range r.Targets {
		t := &r.Targets[i]
		if !strings.EqualFold(t.Type, "Application") && !strings.EqualFold(t.Type, "ServicePrincipal") {
			continue
		}
		for _, m := range t.Modified {
			if strings.EqualFold(m.Name, "KeyDescription") {
				d.observeKeys(r, t, m, raise)
			}
		}
	}
}

func (d *CredentialAdded) observeKeys(r *AuditRecord, t *AuditTarget, m ModifiedProperty, raise func(Alert)) {
	old, oldOK := keyList(m.Old)
	var added []keyDesc
	if keys, ok := keyList(m.New); ok {
		for _, k := range keys {
			if !slices.ContainsFunc(old, func(o keyDesc) bool { return o.id == k.id }) && (k.usage == "" || strings.EqualFold(k.usage, "Verify")) {
				added = append(added, k)
			}
		}
	} else if name := unquoteValue(m.New); name != "" {
		added = append(added, keyDesc{name: name}) // a description, not a key list: one credential added
	}
	if len(added) == 0 {
		return
	}
	change := r.CorrelationID
	if change == "" {
		change = recordRef(r)
	}
	key := d.Name() + "/" + strings.ToLower(t.ID) + "/" + change
	if _, ok := d.raised[key]; ok {
		return // another row of the same change
	}
	if d.raised == nil {
		d.raised = map[string]time.Time{}
	}
	d.raised[key] = r.Time
	// An application's record lists every key before and after; a service
	// principal's may not, so only the former tells a first credential.
	first := oldOK && len(old) == 0 && foldContains(r.Operation, "Certificates and secrets management")
	sev, kind := "medium", "a new"
	if first {
		sev, kind = "high", "the first"
	}
	k := added[0]
	what := strings.TrimSpace(strings.ToLower(k.typ) + " credential")
	if k.name != "" {
		what += fmt.Sprintf(" %q", k.name)
	}
	target := t.Name
	if target == "" {
		target = t.ID
	}
	typ := "application"
	if strings.EqualFold(t.Type, "ServicePrincipal") {
		typ = "service principal"
	}
	summary := fmt.Sprintf("%s added %s %s to %s %s", initiatorName(r), kind, what, typ, target)
	if first {
		summary += ", which had no credential before"
	}
	raise(Alert{Detector: d.Name(), Key: key, MITRE: []string{"T1550.001", "T1098.001"}, Severity: sev, IP: r.InitiatorIP,
		AppID: r.AppID, First: r.Time, Last: r.Time, Evidence: recordEvidence(r), Summary: summary})
}

// ConsentGrant: an application granted high-impact permissions for the
// whole tenant — a delegated permission grant for all principals
// (ConsentType AllPrincipals), an application permission (app role
// assignment, tenant-wide by nature), or an admin consent — the grant an
// illicit-consent attack needs (after Sentinel's "Mail.Read Permissions
// Granted to Application"; ATT&CK T1098.002). Only scopes the change adds
// count; one consent's records (one CorrelationId) raise once. Scopes
// ending in "*" match by prefix.
type ConsentGrant struct {
	Scopes []string      `json:"scopes"` // high-impact scopes, e.g. "Mail.*", "Directory.ReadWrite.All"
	Window time.Duration `json:"window"` // how long a consent's records are remembered, to raise it once
	raised map[string]time.Time
	sweep  sweeper
}

// Name implements AuditDetector.
func (d *ConsentGrant) Name() string { return "consentGrant" }

// scopeMatches reports whether scope is one of patterns (any case); a
// pattern ending in "*" matches by prefix.
func scopeMatches(patterns []string, scope string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			return foldHasPrefix(scope, pre)
		}
		return strings.EqualFold(scope, p)
	})
}

// scopeTokens splits a permission list ("User.Read Mail.ReadWrite", or
// the "[Id: …, Scope: User.Read Mail.ReadWrite, …]" of a consent) into
// words.
func scopeTokens(v string) []string {
	return strings.FieldsFunc(v, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	})
}

// permissionGrant is what a consent record grants: the scopes it adds, to
// which client, of which resource, and whether for the whole tenant.
type permissionGrant struct {
	scopes []string
	// client names the client's service principal (object id or display
	// name); clientAppID is its application id, when the record says.
	client, clientAppID string
	resource            string
	tenantWide          bool
}

// readGrant reads a record that grants permissions — a delegated
// permission grant, an app role assignment (an application permission,
// tenant-wide by nature), a consent; ok is false for any other record.
func readGrant(r *AuditRecord) (g permissionGrant, ok bool) {
	switch {
	case strings.EqualFold(r.Operation, "Add delegated permission grant"):
		var old []string
		for _, t := range r.Targets {
			for _, m := range t.Modified {
				switch m.Name {
				case "DelegatedPermissionGrant.Scope":
					g.scopes, old, g.resource = scopeTokens(unquoteValue(m.New)), scopeTokens(unquoteValue(m.Old)), t.Name
				case "DelegatedPermissionGrant.ConsentType":
					g.tenantWide = strings.EqualFold(unquoteValue(m.New), "AllPrincipals")
				case "ServicePrincipal.ObjectID":
					g.client = unquoteValue(m.New)
				case "ServicePrincipal.AppId":
					g.clientAppID = unquoteValue(m.New)
				}
			}
		}
		g.scopes = slices.DeleteFunc(g.scopes, func(s string) bool { return slices.Contains(old, s) })
	case strings.EqualFold(r.Operation, "Add app role assignment to service principal"):
		g.tenantWide = true
		for _, t := range r.Targets {
			for _, m := range t.Modified {
				switch m.Name {
				case "AppRole.Value":
					g.scopes, g.resource = append(g.scopes, unquoteValue(m.New)), t.Name
				case "ServicePrincipal.DisplayName", "ServicePrincipal.ObjectID":
					if g.client == "" {
						g.client = unquoteValue(m.New)
					}
				case "ServicePrincipal.AppId":
					g.clientAppID = unquoteValue(m.New)
				}
			}
		}
	case strings.EqualFold(r.Operation, "Consent to application"):
		for _, t := range r.Targets {
			if g.client == "" {
				g.client = t.Name
			}
			for _, m := range t.Modified {
				switch m.Name {
				case "ConsentContext.IsAdminConsent", "ConsentContext.OnBehalfOfAll":
					g.tenantWide = g.tenantWide || strings.EqualFold(unquoteValue(m.New), "True")
				case "ConsentAction.Permissions":
					g.scopes = scopeTokens(m.New)
					g.tenantWide = g.tenantWide || foldContains(m.New, "ConsentType: AllPrincipals")
				}
			}
		}
	default:
		return g, false
	}
	return g, true
}

// tenantWideScopes are the scopes of a tenant-wide grant that match
// patterns, sorted, each once; none when the grant is not tenant-wide.
func (g *permissionGrant) tenantWideScopes(patterns []string) []string {
	if !g.tenantWide {
		return nil
	}
	scopes := slices.DeleteFunc(slices.Clone(g.scopes), func(s string) bool { return !scopeMatches(patterns, s) })
	slices.Sort(scopes)
	return slices.Compact(scopes)
}

// clientLabel names a grant's client in a summary.
func (g *permissionGrant) clientLabel() string {
	if g.client == "" {
		return "an application"
	}
	return "application " + g.client
}

// changeRef is what identifies the change a record is part of: its
// CorrelationId (one consent logs a grant and a consent), else the record.
func changeRef(r *AuditRecord) string {
	if r.CorrelationID != "" {
		return r.CorrelationID
	}
	return recordRef(r)
}

// ObserveAudit implements AuditDetector.
func (d *ConsentGrant) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.raised != nil && d.sweep.due(r.Time, d.Window) {
		sweepRaised(d.raised, r.Time, d.Window)
	}
	if !r.Success {
		return
	}
	g, ok := readGrant(r)
	if !ok {
		return
	}
	scopes := g.tenantWideScopes(d.Scopes)
	if len(scopes) == 0 {
		return
	}
	key := d.Name() + "/" + changeRef(r)
	if _, ok := d.raised[key]; ok {
		return
	}
	if d.raised == nil {
		d.raised = map[string]time.Time{}
	}
	d.raised[key] = r.Time
	of := ""
	if g.resource != "" {
		of = " of " + g.resource
	}
	raise(Alert{Detector: d.Name(), Key: key, MITRE: []string{"T1098.002"}, Severity: "medium", IP: r.InitiatorIP,
		First: r.Time, Last: r.Time, Evidence: recordEvidence(r),
		Summary: fmt.Sprintf("%s gave %s the permissions %s%s for every user (%s)", initiatorName(r), g.clientLabel(), strings.Join(scopes, " "), of, r.Operation)})
}

// AccountCreatedDeleted: an account deleted within Window of its creation
// — one made for an attack and removed after (after Sentinel's "Account
// Created and Deleted in Short Timeframe"; ATT&CK T1078.004). Default: 24
// hours.
type AccountCreatedDeleted struct {
	Window  time.Duration `json:"window"`
	created map[string]createdAccount
	sweep   sweeper
}

type createdAccount struct {
	at       time.Time
	record   string
	upn, who string
}

// Name implements AuditDetector.
func (d *AccountCreatedDeleted) Name() string { return "accountCreatedDeleted" }

// deletedUPN is a deleted user's UPN without the object id Entra puts in
// front of it ("{32 hex}alice@contoso.com").
func deletedUPN(upn string) string {
	if len(upn) > 32 && strings.Trim(upn[:32], "0123456789abcdef") == "" {
		return strings.TrimPrefix(upn[32:], "_")
	}
	return upn
}

// ObserveAudit implements AuditDetector.
func (d *AccountCreatedDeleted) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.created != nil && d.sweep.due(r.Time, d.Window) {
		for k, c := range d.created {
			if r.Time.Sub(c.at) > d.Window {
				delete(d.created, k)
			}
		}
	}
	create := strings.EqualFold(r.Operation, "Add user")
	if !r.Success || !create && !strings.EqualFold(r.Operation, "Delete user") {
		return
	}
	p := memberTarget(r, "User")
	if p == nil {
		return
	}
	k := strings.ToLower(p.ID)
	if k == "" {
		k = deletedUPN(p.UPN)
	}
	if k == "" {
		return
	}
	if create {
		if d.created == nil {
			d.created = map[string]createdAccount{}
		}
		d.created[k] = createdAccount{at: r.Time, record: r.ID, upn: p.UPN, who: initiatorName(r)}
		return
	}
	c, ok := d.created[k]
	if !ok {
		return
	}
	delete(d.created, k)
	if lived := r.Time.Sub(c.at); lived < 0 || lived > d.Window {
		return
	}
	upn := c.upn
	if upn == "" {
		upn = deletedUPN(p.UPN)
	}
	name := upn
	if name == "" {
		name = p.ID
	}
	ev := recordEvidence(r)
	if c.record != "" {
		ev = append([]string{c.record}, ev...)
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), k, c.at.Unix()), MITRE: []string{"T1078.004"}, Severity: "high",
		User: upn, UserID: p.ID, IP: r.InitiatorIP, First: c.at, Last: r.Time, Evidence: ev,
		Summary: fmt.Sprintf("account %s created by %s and deleted by %s %v later", name, c.who, initiatorName(r), r.Time.Sub(c.at).Round(time.Second))})
}

// MassSecretRetrieval: one caller reading secrets (keys, vaults) more than
// Threshold times in Window, with one operation — a credential dump or a
// misconfigured application (after Sentinel's "Mass secret retrieval from
// Azure Key Vault"; ATT&CK T1003). VaultGet of IgnoreApps (Azure services
// that read every vault) is not counted. Defaults: more than 25 in a day
// of SecretGet, KeyGet or VaultGet.
type MassSecretRetrieval struct {
	Threshold  int           `json:"threshold"`
	Window     time.Duration `json:"window"`
	Operations []string      `json:"operations"`
	IgnoreApps []string      `json:"ignoreApps"` // app ids whose VaultGet is not counted
	byCaller   map[secretCaller]*window[string]
	raised     map[secretCaller]time.Time
	sweep      sweeper
}

// secretCaller is who reads secrets, and with which operation.
type secretCaller struct{ caller, op string }

// Name implements AuditDetector.
func (d *MassSecretRetrieval) Name() string { return "massSecretRetrieval" }

// ObserveAudit implements AuditDetector.
func (d *MassSecretRetrieval) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.byCaller != nil && d.sweep.due(r.Time, d.Window) {
		sweepWindows(d.byCaller, r.Time, d.Window)
		sweepRaised(d.raised, r.Time, d.Window)
	}
	if !r.Success || r.Service != keyVaultService || !foldIn(r.Operation, d.Operations) {
		return
	}
	if strings.EqualFold(r.Operation, "VaultGet") && foldIn(r.InitiatorApp, d.IgnoreApps) {
		return
	}
	caller := r.InitiatorID
	if caller == "" {
		caller = r.InitiatorUPN
	}
	if caller == "" {
		caller = r.InitiatorApp
	}
	if caller == "" {
		return
	}
	if d.byCaller == nil {
		d.byCaller, d.raised = map[secretCaller]*window[string]{}, map[secretCaller]time.Time{}
	}
	k := secretCaller{caller, r.Operation}
	w := d.byCaller[k]
	if w == nil {
		w = &window[string]{}
		d.byCaller[k] = w
	}
	w.add(r.Time, r.ID, d.Window)
	if len(w.items) <= d.Threshold {
		return
	}
	if last, ok := d.raised[k]; ok && r.Time.Sub(last) <= d.Window {
		return // the same retrieval, raised already
	}
	d.raised[k] = r.Time
	first := w.items[0].at
	ev := make([]string, 0, len(w.items))
	for _, it := range w.items {
		ev = append(ev, it.v)
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s|%s/%d", d.Name(), caller, r.Operation, first.Unix()), MITRE: []string{"T1003"}, Severity: "low",
		User: r.InitiatorUPN, UserID: r.InitiatorID, IP: r.InitiatorIP, First: first, Last: r.Time, Evidence: ev,
		Summary: fmt.Sprintf("%s made %d %s calls within %v", initiatorName(r), len(w.items), r.Operation, d.Window)})
}
