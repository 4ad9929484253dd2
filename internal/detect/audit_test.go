package detect

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

func readAuditFile(t *testing.T, path string) []AuditRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadAuditRecords(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

func readAuditString(t *testing.T, s string) []AuditRecord {
	t.Helper()
	recs, err := ReadAuditRecords(strings.NewReader(s))
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return recs
}

func alertsOf(as []Alert, name string) []Alert {
	var out []Alert
	for _, a := range as {
		if a.Detector == name {
			out = append(out, a)
		}
	}
	return out
}

func alertKeys(as []Alert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Key)
	}
	slices.Sort(out)
	return out
}

// auditExpectations reads one section of testdata/logs/expected.json.
func auditExpectations(t *testing.T, section string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/logs/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(all[section], v); err != nil {
		t.Fatal(err)
	}
}

// TestAuditTrainingLab replays the Training Lab's hunting output (no time
// column): one new credential on an application that had one, four first
// credentials, with the initiators and applications expected.json names.
func TestAuditTrainingLab(t *testing.T) {
	t.Parallel()
	var lab struct {
		Files  []string `json:"files"`
		Expect []struct {
			Count       int      `json:"count"`
			Initiator   string   `json:"initiator"`
			InitiatorIP string   `json:"initiator_ip"`
			TargetApp   string   `json:"target_app"`
			TargetApps  []string `json:"target_apps"`
			Rule        string   `json:"sentinel_rule"`
		} `json:"expect"`
	}
	auditExpectations(t, "sentinel-training-lab-audit", &lab)
	recs := readAuditFile(t, "testdata/logs/"+lab.Files[0])
	if len(recs) != 5 {
		t.Fatalf("%d records", len(recs))
	}
	all := RunAudit(recs, DefaultAuditDetectors())
	got := alertsOf(all, "credentialAdded")
	if len(got) != len(all) {
		t.Errorf("alerts of other detectors: %+v", all)
	}
	bySeverity := map[string][]Alert{}
	for _, a := range got {
		bySeverity[a.Severity] = append(bySeverity[a.Severity], a)
	}
	newer, first := lab.Expect[0], lab.Expect[1]
	if !strings.Contains(newer.Rule, "NewApp") || !strings.Contains(first.Rule, "FirstApp") {
		t.Fatalf("expected.json changed: %+v", lab.Expect)
	}
	if n := bySeverity["medium"]; len(n) != newer.Count || !foldContains(n[0].Summary, newer.Initiator) ||
		!strings.Contains(n[0].Summary, newer.TargetApp) || n[0].IP.String() != newer.InitiatorIP || strings.Contains(n[0].Summary, "first") {
		t.Errorf("new credential: %+v, want %+v", n, newer)
	}
	var apps []string
	for _, a := range bySeverity["high"] {
		if !foldContains(a.Summary, first.Initiator) || !strings.Contains(a.Summary, "first") || len(a.Evidence) != 1 {
			t.Errorf("first credential %+v, want by %s", a, first.Initiator)
		}
		apps = append(apps, a.Summary[strings.LastIndex(a.Summary, "EntApp"):][:len("EntApp01")])
	}
	slices.Sort(apps)
	if len(apps) != first.Count || !slices.Equal(apps, first.TargetApps) {
		t.Errorf("first credentials on %v, want %v", apps, first.TargetApps)
	}
}

// TestAuditGoldenSAML replays OTRF's Golden SAML dataset (JSON lines with
// a byte order mark), the audit log and the Office activity together: the
// first credential on SimuLandApp, whose change is logged twice and raised
// once; the tenant-wide Mail.ReadWrite grant; and the application's mail
// read through Graph five minutes after it — the three detections
// expected.json lists, nothing else.
func TestAuditGoldenSAML(t *testing.T) {
	t.Parallel()
	var set struct {
		Files  []string `json:"files"`
		Expect []struct {
			Detection string   `json:"detection"`
			MITRE     []string `json:"mitre"`
			Initiator string   `json:"initiator"`
			Time      string   `json:"time"`
		} `json:"expect"`
	}
	auditExpectations(t, "otrf-goldensaml", &set)
	if len(set.Files) != 2 || len(set.Expect) != 3 {
		t.Fatalf("expected.json changed: %+v", set)
	}
	recs := readAuditFile(t, "testdata/logs/"+set.Files[0])
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	office := readAuditFile(t, "testdata/logs/"+set.Files[1])
	if len(office) != 1 || office[0].Operation != "MailItemsAccessed" {
		t.Fatalf("Office activity %+v, want the one mail read", office)
	}
	if a := RunAudit(slices.Clone(office), DefaultAuditDetectors()); len(a) != 0 {
		t.Errorf("the mail read alone raised %+v", a)
	}
	recs = append(recs, office...)
	all := RunAudit(recs, DefaultAuditDetectors())
	if len(all) != len(set.Expect) {
		t.Fatalf("alerts %+v, want the credential, the grant and the mail read", all)
	}
	raised := 0 // by the detectors themselves, before RunAudit's dedupe by key
	for _, d := range DefaultAuditDetectors() {
		for i := range recs {
			d.ObserveAudit(&recs[i], func(Alert) { raised++ })
		}
	}
	if raised != len(set.Expect) {
		t.Errorf("the detectors raised %d times, want %d (the credential's second row is the same change)", raised, len(set.Expect))
	}
	cred, grant, mail := alertsOf(all, "credentialAdded"), alertsOf(all, "consentGrant"), alertsOf(all, "mailAccessAfterConsent")
	want := set.Expect[0]
	at, _ := time.Parse(time.RFC3339Nano, want.Time)
	if len(cred) != 1 || cred[0].Severity != "high" || !cred[0].First.Equal(at) || !strings.Contains(cred[0].Summary, "SimuLandApp") ||
		!strings.Contains(cred[0].Summary, want.Initiator) || !strings.Contains(cred[0].Summary, `"SimuLandCreds"`) ||
		!slices.Contains(cred[0].MITRE, want.MITRE[0]) || len(cred[0].Evidence) != 1 {
		t.Errorf("credential %+v, want %+v", cred, want)
	}
	want = set.Expect[1]
	at, _ = time.Parse(time.RFC3339Nano, want.Time)
	if len(grant) != 1 || !grant[0].First.Equal(at) || !strings.Contains(grant[0].Summary, "Mail.ReadWrite") ||
		strings.Contains(grant[0].Summary, "User.Read") || !slices.Equal(grant[0].MITRE, want.MITRE) {
		t.Errorf("grant %+v, want %+v", grant, want)
	}
	grantEvidence := grant[0].Evidence
	want = set.Expect[2]
	at, _ = time.Parse(time.RFC3339Nano, want.Time)
	_, client, _ := strings.Cut(want.Detection, "ClientAppId ")
	client = client[:min(len(client), 36)]
	if len(mail) != 1 || mail[0].Severity != "high" || !mail[0].First.Equal(at) || !slices.Equal(mail[0].MITRE, want.MITRE) ||
		mail[0].AppID != client || !strings.Contains(mail[0].Summary, client) || !strings.Contains(mail[0].Summary, "Mail.ReadWrite") ||
		!strings.Contains(mail[0].Summary, "T1098.002") || mail[0].User != office[0].InitiatorUPN || mail[0].IP != office[0].InitiatorIP ||
		!slices.Equal(mail[0].Evidence, append(slices.Clone(grantEvidence), office[0].ID)) {
		t.Errorf("mail read %+v, want %+v", mail, want)
	}
}

// pantherDetectors maps the Panther rules to the audit detector that
// decides the same thing for one event: "Role changed in PIM" is a
// completed PIM assignment of a privileged role; "Service principal
// credentials added" a credential added.
var pantherDetectors = map[string]string{
	"Azure.Audit.RoleChangedPIM":                   "privilegedRoleAssigned",
	"Azure.Audit.ServicePrincipalCredentialsAdded": "credentialAdded",
}

// logAnalyticsRow is a diagnostic record as Log Analytics stores it: the
// properties as TitleCase columns, JSON values as JSON strings, the
// audit category as Category.
func logAnalyticsRow(diag map[string]any) map[string]string {
	row := map[string]string{}
	put := func(k string, v any) {
		if v == nil {
			return
		}
		k = string(unicode.ToUpper(rune(k[0]))) + k[1:]
		if s, ok := v.(string); ok {
			row[k] = s
		} else {
			b, _ := json.Marshal(v)
			row[k] = string(b)
		}
	}
	props, _ := diag["properties"].(map[string]any)
	for k, v := range diag {
		switch k {
		case "properties", "category", "time":
		default:
			put(k, v)
		}
	}
	for k, v := range props {
		put(k, v)
	}
	if c, _ := diag["category"].(string); props["category"] == nil && c != "AuditLogs" {
		row["Category"] = c
	}
	row["TimeGenerated"], _ = diag["time"].(string)
	row["Type"] = "AuditLogs"
	return row
}

func csvOf(t *testing.T, row map[string]string) string {
	t.Helper()
	head := slices.Sorted(maps.Keys(row))
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	rec := make([]string, len(head))
	for i, k := range head {
		rec[i] = row[k]
	}
	if err := w.WriteAll([][]string{head, rec}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestAuditPantherVerdicts holds each of Panther's audit-rule test events
// that one of the detectors decides to its expected single-event verdict,
// read in both shapes: as the diagnostic record it is, and as the Log
// Analytics row (CSV and JSON) of the same event. Sign-in events are not
// audit records; audit events of rules no detector covers raise nothing.
func TestAuditPantherVerdicts(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/logs/panther/panther_azure_signin_tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	decided := 0
	for sc.Scan() {
		var tc struct {
			Rule  string          `json:"rule_id"`
			Name  string          `json:"test_name"`
			Match bool            `json:"expected_match"`
			Log   json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &tc); err != nil {
			t.Fatal(err)
		}
		name := tc.Rule + "/" + tc.Name
		diag := readAuditString(t, string(tc.Log))
		var raw map[string]any
		if err := json.Unmarshal(tc.Log, &raw); err != nil {
			t.Fatal(err)
		}
		category, _ := raw["category"].(string)
		if strings.Contains(strings.ToLower(category), "signin") {
			if len(diag) != 0 {
				t.Errorf("%s: a sign-in read as an audit record: %+v", name, diag)
			}
			continue
		}
		if len(diag) != 1 {
			t.Fatalf("%s: %d records", name, len(diag))
		}
		row := logAnalyticsRow(raw)
		line, _ := json.Marshal(row)
		shapes := map[string][]AuditRecord{
			"diagnostic": diag,
			"csv":        readAuditString(t, csvOf(t, row)),
			"json":       readAuditString(t, string(line)),
		}
		for shape, recs := range shapes {
			if len(recs) != 1 {
				t.Fatalf("%s (%s): %d records", name, shape, len(recs))
			}
			if recs[0].Operation != diag[0].Operation || recs[0].Success != diag[0].Success || !recs[0].Time.Equal(diag[0].Time) ||
				len(recs[0].Targets) != len(diag[0].Targets) || recs[0].InitiatorUPN != diag[0].InitiatorUPN {
				t.Errorf("%s: the %s shape reads %+v, the diagnostic one %+v", name, shape, recs[0], diag[0])
			}
			alerts := RunAudit(recs, DefaultAuditDetectors())
			detector, ok := pantherDetectors[tc.Rule]
			if !ok {
				if len(alerts) != 0 {
					t.Errorf("%s (%s): %+v", name, shape, alerts)
				}
				continue
			}
			decided++
			if fired := len(alertsOf(alerts, detector)) == 1; fired != tc.Match || len(alerts) > 1 {
				t.Errorf("%s (%s): %s raised %+v, want %v", name, shape, detector, alerts, tc.Match)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if decided != 5*3 {
		t.Errorf("%d verdicts, want 5 events in 3 shapes", decided)
	}
}

var auditT0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

var adminIP = netip.MustParseAddr("198.51.100.7")

// auditRoleAdd is Core Directory's record of a role given to a user.
func auditRoleAdd(at time.Time, id, user, role, roleID string) AuditRecord {
	return AuditRecord{Time: at, ID: id, CorrelationID: "c-" + id, Operation: "Add member to role", Category: "RoleManagement",
		Service: "Core Directory", Success: true, InitiatorUPN: "admin@contoso.com", InitiatorIP: adminIP,
		Targets: []AuditTarget{{ID: "id-" + user, Type: "User", UPN: user, Modified: []ModifiedProperty{
			{Name: "Role.DisplayName", New: `"` + role + `"`}, {Name: "Role.TemplateId", New: `"` + roleID + `"`}}}}}
}

func auditUser(at time.Time, id, op, user string) AuditRecord {
	return AuditRecord{Time: at, ID: id, Operation: op, Category: "UserManagement", Service: "Core Directory", Success: true,
		InitiatorUPN: "admin@contoso.com", InitiatorIP: adminIP, Targets: []AuditTarget{{ID: "id-" + user, Type: "User", UPN: user}}}
}

func auditSecretRead(at time.Time, id, caller, op, app string) AuditRecord {
	return AuditRecord{Time: at, ID: id, Operation: op, Category: "AuditEvent", Service: keyVaultService, Success: true,
		InitiatorID: caller, InitiatorApp: app, InitiatorIP: adminIP, Targets: []AuditTarget{{Type: "Secret", Name: "vault1"}}}
}

func auditCredential(at time.Time, id, corr, app, old, new string) AuditRecord {
	return AuditRecord{Time: at, ID: id, CorrelationID: corr, Operation: "Update application – Certificates and secrets management",
		Service: "Core Directory", Success: true, InitiatorUPN: "dev@contoso.com", InitiatorIP: adminIP,
		Targets: []AuditTarget{{ID: "id-" + app, Type: "Application", Name: app, Modified: []ModifiedProperty{{Name: "KeyDescription", Old: old, New: new}}}}}
}

func auditKeys(list ...string) string {
	var out []string
	for _, k := range list {
		out = append(out, "[KeyIdentifier="+k+",KeyType=Password,KeyUsage=Verify,DisplayName="+k+"]")
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func auditGrant(at time.Time, id, corr, consentType, oldScope, newScope string) AuditRecord {
	return AuditRecord{Time: at, ID: id, CorrelationID: corr, Operation: "Add delegated permission grant", Service: "Core Directory", Success: true,
		InitiatorUPN: "user@contoso.com", Targets: []AuditTarget{{ID: "graph", Type: "ServicePrincipal", Name: "Microsoft Graph", Modified: []ModifiedProperty{
			{Name: "DelegatedPermissionGrant.Scope", Old: `"` + oldScope + `"`, New: `"` + newScope + `"`},
			{Name: "DelegatedPermissionGrant.ConsentType", New: `"` + consentType + `"`},
			{Name: "ServicePrincipal.ObjectID", New: `"client-sp"`}}}}}
}

// TestAuditDetectorThresholds: each detector at its threshold raises, just
// short of it does not.
func TestAuditDetectorThresholds(t *testing.T) {
	t.Parallel()
	const ga, gaID = "Global Administrator", "62e90394-69f5-4237-9190-012177145e10"
	const day = 24 * time.Hour
	reads := func(n int, every time.Duration, op, app string) []AuditRecord {
		var out []AuditRecord
		for i := range n {
			out = append(out, auditSecretRead(auditT0.Add(time.Duration(i)*every), fmt.Sprint("kv", i), "caller-1", op, app))
		}
		return out
	}
	pim := auditRoleAdd(auditT0, "p1", "alice@contoso.com", ga, gaID)
	pim.Service, pim.InitiatorUPN, pim.InitiatorApp = "Core Directory", "", "MS-PIM"
	outside := auditRoleAdd(auditT0, "o1", "alice@contoso.com", ga, gaID)
	outside.Operation, outside.Service = "Add member to role outside of PIM", "PIM"
	requested := auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID)
	requested.Operation, requested.Service = "Add member to role in PIM requested (permanent)", "PIM"
	appInitiated := auditCredential(auditT0, "a1", "c1", "App1", "[]", auditKeys("k1"))
	appInitiated.InitiatorUPN, appInitiated.InitiatorApp = "", "Automation"
	signKey := auditCredential(auditT0, "a1", "c1", "App1", "[]", strings.ReplaceAll(auditKeys("k1"), "Verify", "Sign"))
	spCred := auditCredential(auditT0, "a1", "c1", "App1", "[]", auditKeys("k1"))
	spCred.Operation, spCred.Targets[0].Type = "Add service principal credentials", "ServicePrincipal"
	failed := auditCredential(auditT0, "a1", "c1", "App1", "[]", auditKeys("k1"))
	failed.Success = false
	regAt := func(at time.Time) AuditRecord {
		r := auditUser(at, fmt.Sprint("m", at.Unix()), "User registered security info", "alice@contoso.com")
		r.InitiatorUPN = "alice@contoso.com"
		return r
	}
	appRole := AuditRecord{Time: auditT0, ID: "ar1", CorrelationID: "c-ar1", Operation: "Add app role assignment to service principal", Success: true,
		Targets: []AuditTarget{{ID: "graph", Type: "ServicePrincipal", Name: "Microsoft Graph", Modified: []ModifiedProperty{
			{Name: "AppRole.Value", New: `"Mail.Read"`}, {Name: "ServicePrincipal.DisplayName", New: `"Mailer"`}}}}}
	adminConsent := AuditRecord{Time: auditT0, ID: "ac1", CorrelationID: "c-g1", Operation: "Consent to application", Success: true,
		Targets: []AuditTarget{{ID: "client-sp", Type: "ServicePrincipal", Name: "Mailer", Modified: []ModifiedProperty{
			{Name: "ConsentContext.IsAdminConsent", New: `"True"`},
			{Name: "ConsentAction.Permissions", New: `"[] => [[Id: x, ClientId: client-sp, PrincipalId: , ResourceId: graph, ConsentType: AllPrincipals, Scope:  User.Read Files.Read.All, CreatedDateTime: , LastModifiedDateTime ]]; "`}}}}}
	for _, c := range []struct {
		name     string
		recs     []AuditRecord
		detector string
		want     int
	}{
		{"26 secret reads in a day", reads(26, 50*time.Minute, "SecretGet", ""), "massSecretRetrieval", 1},
		{"25 secret reads in a day", reads(25, 50*time.Minute, "SecretGet", ""), "massSecretRetrieval", 0},
		{"26 reads over 26 hours", reads(26, 61*time.Minute, "SecretGet", ""), "massSecretRetrieval", 0},
		{"60 reads in a day, raised once", reads(60, time.Minute, "KeyGet", ""), "massSecretRetrieval", 1},
		{"30 VaultGet of Azure Resource Graph", reads(30, time.Minute, "VaultGet", "509e4652-da8d-478d-a730-e9d4a1996ca4"), "massSecretRetrieval", 0},
		{"deleted 24h after creation", []AuditRecord{auditUser(auditT0, "u1", "Add user", "tmp@contoso.com"),
			auditUser(auditT0.Add(day), "u2", "Delete user", "tmp@contoso.com")}, "accountCreatedDeleted", 1},
		{"deleted 24h and 1s after creation", []AuditRecord{auditUser(auditT0, "u1", "Add user", "tmp@contoso.com"),
			auditUser(auditT0.Add(day+time.Second), "u2", "Delete user", "tmp@contoso.com")}, "accountCreatedDeleted", 0},
		{"deleted, never created here", []AuditRecord{auditUser(auditT0, "u2", "Delete user", "old@contoso.com")}, "accountCreatedDeleted", 0},
		{"Global Administrator given", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID)}, "privilegedRoleAssigned", 1},
		{"given again 14 days later", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID),
			auditRoleAdd(auditT0.Add(14*day), "r2", "alice@contoso.com", ga, gaID)}, "privilegedRoleAssigned", 1},
		{"given again 14 days and 1s later", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID),
			auditRoleAdd(auditT0.Add(14*day+time.Second), "r2", "alice@contoso.com", ga, gaID)}, "privilegedRoleAssigned", 2},
		{"an Admin-named role", []AuditRecord{auditRoleAdd(auditT0, "r1", "bob@contoso.com", "Teams Administrator", "69091246-20e8-4a56-aa4d-066075b2a7a8")}, "privilegedRoleAssigned", 1},
		{"Directory Readers given", []AuditRecord{auditRoleAdd(auditT0, "r1", "bob@contoso.com", "Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")}, "privilegedRoleAssigned", 0},
		{"a PIM request", []AuditRecord{requested}, "privilegedRoleAssigned", 0},
		{"assigned by an administrator", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID)}, "roleAssignedOutsidePIM", 1},
		{"PIM says outside of PIM", []AuditRecord{outside}, "roleAssignedOutsidePIM", 1},
		{"assigned by PIM", []AuditRecord{pim}, "roleAssignedOutsidePIM", 0},
		{"Directory Readers outside PIM", []AuditRecord{auditRoleAdd(auditT0, "r1", "bob@contoso.com", "Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")}, "roleAssignedOutsidePIM", 0},
		{"a holder registers a method", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID), regAt(auditT0.Add(time.Hour))}, "authMethodsChangedPrivileged", 1},
		{"a holder of 14 days ago", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID), regAt(auditT0.Add(14 * day))}, "authMethodsChangedPrivileged", 1},
		{"a holder of 14 days and 1s ago", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID), regAt(auditT0.Add(14*day + time.Second))}, "authMethodsChangedPrivileged", 0},
		{"three changes within 2 hours, then one after", []AuditRecord{auditRoleAdd(auditT0, "r1", "alice@contoso.com", ga, gaID), regAt(auditT0.Add(time.Hour)),
			regAt(auditT0.Add(2 * time.Hour)), regAt(auditT0.Add(3 * time.Hour)), regAt(auditT0.Add(3*time.Hour + time.Second))}, "authMethodsChangedPrivileged", 2},
		{"a user without a role", []AuditRecord{regAt(auditT0)}, "authMethodsChangedPrivileged", 0},
		{"a first credential, logged twice", []AuditRecord{auditCredential(auditT0, "a1", "c1", "App1", "[]", auditKeys("k1")),
			auditCredential(auditT0, "a1", "c1", "App1", "[]", auditKeys("k1"))}, "credentialAdded", 1},
		{"a service principal's credential", []AuditRecord{spCred}, "credentialAdded", 1},
		{"a second credential", []AuditRecord{auditCredential(auditT0, "a1", "c1", "App1", auditKeys("k1"), auditKeys("k1", "k2"))}, "credentialAdded", 1},
		{"a credential removed", []AuditRecord{auditCredential(auditT0, "a1", "c1", "App1", auditKeys("k1", "k2"), auditKeys("k1"))}, "credentialAdded", 0},
		{"added by an application", []AuditRecord{appInitiated}, "credentialAdded", 0},
		{"a signing key", []AuditRecord{signKey}, "credentialAdded", 0},
		{"a failed change", []AuditRecord{failed}, "credentialAdded", 0},
		{"Mail.Read for all principals", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "User.Read", "User.Read Mail.Read")}, "consentGrant", 1},
		{"Mail.Read for one user", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "Principal", "User.Read", "User.Read Mail.Read")}, "consentGrant", 0},
		{"User.Read for all principals", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "", "User.Read openid")}, "consentGrant", 0},
		{"Mail.Read granted before", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "Mail.Read", "Mail.Read User.Read")}, "consentGrant", 0},
		{"an application permission", []AuditRecord{appRole}, "consentGrant", 1},
		{"grant and admin consent of one change", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "", "Files.Read.All"), adminConsent}, "consentGrant", 1},
	} {
		got := alertsOf(RunAudit(slices.Clone(c.recs), DefaultAuditDetectors()), c.detector)
		if len(got) != c.want {
			t.Errorf("%s: %s raised %d, want %d: %+v", c.name, c.detector, len(got), c.want, got)
		}
	}
	// A service principal's record may not list its keys before: never "first".
	if got := RunAudit([]AuditRecord{spCred}, DefaultAuditDetectors()); len(got) != 1 || got[0].Severity != "medium" {
		t.Errorf("service principal credential: %+v", got)
	}
}

// TestAuditAlertContents: what an alert says about whom.
func TestAuditAlertContents(t *testing.T) {
	t.Parallel()
	recs := []AuditRecord{
		auditUser(auditT0, "u1", "Add user", "tmp@contoso.com"),
		auditRoleAdd(auditT0.Add(time.Minute), "r1", "tmp@contoso.com", "Privileged Role Administrator", "e8611ab8-c189-46e8-94e1-60213ab1f814"),
		auditUser(auditT0.Add(time.Hour), "u2", "Delete user", "tmp@contoso.com"),
	}
	got := RunAudit(recs, DefaultAuditDetectors())
	byName := map[string]Alert{}
	for _, a := range got {
		byName[a.Detector] = a
	}
	for _, c := range []struct {
		detector, severity string
		mitre              []string
		evidence           []string
	}{
		{"privilegedRoleAssigned", "high", []string{"T1078.004"}, []string{"r1"}},
		{"roleAssignedOutsidePIM", "low", []string{"T1078.004"}, []string{"r1"}},
		{"accountCreatedDeleted", "high", []string{"T1078.004"}, []string{"u1", "u2"}},
	} {
		a, ok := byName[c.detector]
		if !ok || a.Severity != c.severity || !slices.Equal(a.MITRE, c.mitre) || !slices.Equal(a.Evidence, c.evidence) ||
			a.User != "tmp@contoso.com" || a.UserID != "id-tmp@contoso.com" || a.IP != adminIP || a.Summary == "" || a.Key == "" {
			t.Errorf("%s: %+v", c.detector, a)
		}
	}
	if a := byName["accountCreatedDeleted"]; !a.First.Equal(auditT0) || !a.Last.Equal(auditT0.Add(time.Hour)) {
		t.Errorf("created and deleted: %v to %v", a.First, a.Last)
	}
	if len(got) != 3 {
		t.Errorf("alerts %+v", got)
	}
}

// TestAuditReplay: replaying the log (a restart reads the lookback again
// with fresh detectors) raises no key a full run does not, and a second
// pass through the same detectors nothing new.
func TestAuditReplay(t *testing.T) {
	t.Parallel()
	var stream []AuditRecord
	for i := range 30 {
		stream = append(stream, auditSecretRead(auditT0.Add(time.Duration(i)*time.Minute), fmt.Sprint("kv", i), "caller-1", "SecretGet", ""))
	}
	stream = append(stream,
		auditUser(auditT0, "u1", "Add user", "tmp@contoso.com"),
		auditUser(auditT0.Add(time.Hour), "u2", "Delete user", "tmp@contoso.com"),
		auditRoleAdd(auditT0.Add(2*time.Hour), "r1", "alice@contoso.com", "Global Administrator", "62e90394-69f5-4237-9190-012177145e10"),
		auditCredential(auditT0.Add(3*time.Hour), "a1", "c1", "App1", "[]", auditKeys("k1")),
		auditGrant(auditT0.Add(4*time.Hour), "g1", "c-g1", "AllPrincipals", "", "Mail.Read"),
		auditMailRead(auditT0.Add(4*time.Hour+30*time.Minute), "mr1", "app-1", "alice@contoso.com"))
	r := auditUser(auditT0.Add(5*time.Hour), "m1", "Admin registered security info", "alice@contoso.com")
	stream = append(stream, r)
	slices.SortStableFunc(stream, func(a, b AuditRecord) int { return a.Time.Compare(b.Time) })

	full := alertKeys(RunAudit(slices.Clone(stream), DefaultAuditDetectors()))
	if len(full) != len(DefaultAuditDetectors()) {
		t.Fatalf("a full run raised %v, want one alert of each detector", full)
	}
	// Stopped half way, then restarted from the beginning.
	first := alertKeys(RunAudit(slices.Clone(stream[:len(stream)/2]), DefaultAuditDetectors()))
	again := alertKeys(RunAudit(slices.Clone(stream), DefaultAuditDetectors()))
	for _, k := range first {
		if !slices.Contains(again, k) {
			t.Errorf("the replay raised %s under another key", k)
		}
	}
	if !slices.Equal(again, full) {
		t.Errorf("replay %v, full run %v", again, full)
	}
	// The same detectors, fed the stream again.
	ds := DefaultAuditDetectors()
	seen := map[string]bool{}
	for pass := range 2 {
		for i := range stream {
			for _, d := range ds {
				d.ObserveAudit(&stream[i], func(a Alert) {
					if pass == 1 && !seen[a.Key] {
						t.Errorf("a second pass raised %s", a.Key)
					}
					seen[a.Key] = true
				})
			}
		}
	}
}

// TestAuditStateIsSwept: per-entity state follows the entities active
// within each detector's window, not every one ever seen.
func TestAuditStateIsSwept(t *testing.T) {
	t.Parallel()
	ds := DefaultAuditDetectors()
	day := 24 * time.Hour
	for i := range 20_000 {
		at := auditT0.Add(time.Duration(i) * 2 * time.Minute) // about 28 days
		u := fmt.Sprintf("u%d@contoso.com", i)
		recs := []AuditRecord{
			auditUser(at, fmt.Sprint("a", i), "Add user", u),
			auditSecretRead(at, fmt.Sprint("s", i), fmt.Sprint("caller", i), "SecretGet", ""),
			auditRoleAdd(at, fmt.Sprint("r", i), u, "Global Administrator", "62e90394-69f5-4237-9190-012177145e10"),
			auditCredential(at, fmt.Sprint("c", i), fmt.Sprint("cc", i), fmt.Sprint("App", i), "[]", auditKeys("k")),
			auditGrant(at, fmt.Sprint("g", i), fmt.Sprint("gc", i), "AllPrincipals", "", "Mail.Read"),
		}
		reg := auditUser(at, fmt.Sprint("m", i), "User registered security info", u)
		recs = append(recs, reg)
		if i%100 == 0 { // a new application reading mail every 200 minutes
			recs = append(recs, auditMailRead(at, fmt.Sprint("mr", i), fmt.Sprint("app", i), u))
		}
		for j := range recs {
			for _, d := range ds {
				d.ObserveAudit(&recs[j], func(Alert) {})
			}
		}
	}
	perDay, twoWeeks := int(day/(2*time.Minute)), int(14*day/(2*time.Minute))
	slack := perDay / 16 // a sweep runs every sixteenth of a window
	for _, d := range ds {
		var n, limit int
		switch d := d.(type) {
		case *CredentialAdded:
			n, limit = len(d.raised), perDay+slack
		case *ConsentGrant:
			n, limit = len(d.raised), perDay+slack
		case *AccountCreatedDeleted:
			n, limit = len(d.created), perDay+slack
		case *MassSecretRetrieval:
			n, limit = len(d.byCaller)+len(d.raised), perDay+slack
		case *PrivilegedRoleAssigned:
			n, limit = len(d.seen), twoWeeks+twoWeeks/16
		case *AuthMethodsChangedPrivileged:
			n, limit = len(d.holders)+len(d.raised), 2*(twoWeeks+twoWeeks/16)+perDay
		case *MailAccessAfterConsent:
			// The grants of a day, each with the applications judged since
			// (a read every 200 minutes), and the readers of 8 days.
			judged := 0
			for _, g := range d.grants {
				judged += len(g.judged)
			}
			if readers := int(8*day/(200*time.Minute)) + 1; len(d.lastRead) > readers || len(d.lastRead) == 0 {
				t.Errorf("%s remembers %d readers after 28 days, want at most %d", d.Name(), len(d.lastRead), readers)
			}
			n, limit = len(d.grants)+judged, (perDay+slack)*(1+perDay/100+1)
		default:
			continue
		}
		if n > limit || n == 0 {
			t.Errorf("%s holds %d entries after 28 days, want at most %d", d.Name(), n, limit)
		}
	}
}

// TestAuditDetectorSettings: every threshold is a field the configuration
// sets by its json name, of a type it can set.
func TestAuditDetectorSettings(t *testing.T) {
	t.Parallel()
	allowed := []reflect.Type{reflect.TypeFor[int](), reflect.TypeFor[float64](), reflect.TypeFor[time.Duration](),
		reflect.TypeFor[string](), reflect.TypeFor[[]string](), reflect.TypeFor[bool]()}
	names := map[string]bool{}
	for _, d := range DefaultAuditDetectors() {
		if names[d.Name()] {
			t.Errorf("two detectors named %s", d.Name())
		}
		names[d.Name()] = true
		v := reflect.ValueOf(d).Elem()
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case tag == "-" && f.Type.Kind() == reflect.Func:
			case tag == "" || !unicode.IsLower(rune(tag[0])) || !slices.Contains(allowed, f.Type):
				t.Errorf("%s.%s: tag %q, type %v", d.Name(), f.Name, tag, f.Type)
			case v.Field(i).IsZero() && f.Name != "PrivilegedRoles": // beyond the built-in ones: none
				t.Errorf("%s.%s has no default", d.Name(), f.Name)
			}
		}
	}
	if len(names) != 8 {
		t.Errorf("detectors %v", names)
	}
}

// TestAuditReaderErrors: a record that cannot be read is an error naming
// its line.
func TestAuditReaderErrors(t *testing.T) {
	t.Parallel()
	good := `{"TimeGenerated":"2026-11-27T09:00:00Z","OperationName":"Add user","Result":"success","LoggedByService":"Core Directory","TargetResources":"[]"}`
	badTime := strings.Replace(good, "2026-11-27T09:00:00Z", "yesterday", 1)
	for _, c := range []struct{ name, in, want string }{
		{"malformed JSON line", good + "\n" + `{"TimeGenerated": "2026-11-27T09:00:00Z",` + "\n" + good, "line 2"},
		{"bad time", good + "\n" + good + "\n" + badTime + "\n", `line 3: TimeGenerated: not a time: "yesterday"`},
		{"bad time after a record of several lines", "\ufeff" + strings.ReplaceAll(good, ",", ",\n") + "\n\n" + badTime, "line 7: TimeGenerated"},
		{"bad activity time", `{"properties":{"activityDateTime":"13/13/2026","loggedByService":"PIM"},"category":"AuditLogs"}`, "line 1: activityDateTime"},
		{"bad time in CSV", "OperationName,LoggedByService,TimeGenerated [UTC]\nAdd user,Core Directory,2026-11-27T09:00:00Z\nAdd user,Core Directory,soon\n", "line 3: TimeGenerated [UTC]"},
		{"bad time in a JSON array", "[" + good + "," + badTime + "]", "record 2"},
		{"unterminated CSV quote", "OperationName,LoggedByService\n\"Add user,Core Directory\n", "audit CSV"},
	} {
		_, err := ReadAuditRecords(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
	if recs := readAuditString(t, good+"\n\n"+good+"\n"); len(recs) != 2 || !recs[1].Time.Equal(auditT0) {
		t.Errorf("records %+v", recs)
	}
}

// TestAuditKeyVaultShapes reads Key Vault audit events as AzureDiagnostics
// rows (CSV) and as diagnostic records.
func TestAuditKeyVaultShapes(t *testing.T) {
	t.Parallel()
	csvRows := "TimeGenerated [UTC],ResourceType,OperationName,ResultType,CallerIPAddress,identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g,identity_claim_upn_s,identity_claim_appid_g,id_s,Resource,CorrelationId,Category\n" +
		"\"11/27/2026, 9:00:00.000 AM\",VAULTS,SecretGet,Success,203.0.113.9,oid-1,Eve@Contoso.com,app-1,https://kv1.vault.azure.net/secrets/db,KV1,corr-1,AuditEvent\n" +
		"\"11/27/2026, 9:00:01.000 AM\",VAULTS,SecretGet,Forbidden,203.0.113.9,oid-1,eve@contoso.com,app-1,https://kv1.vault.azure.net/secrets/db,KV1,corr-2,AuditEvent\n"
	diag := `{"time":"2026-11-27T09:00:00Z","resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","operationName":"SecretGet","category":"AuditEvent","resultType":"Success","resultSignature":"OK","callerIpAddress":"203.0.113.9","correlationId":"corr-1","identity":{"claim":{"http://schemas.microsoft.com/identity/claims/objectidentifier":"oid-1","upn":"eve@contoso.com","appid":"app-1"}},"properties":{"id":"https://kv1.vault.azure.net/secrets/db","httpStatusCode":200}}`
	want := AuditRecord{Time: auditT0, ID: "corr-1", CorrelationID: "corr-1", Operation: "SecretGet", Category: "AuditEvent", Service: keyVaultService,
		Success: true, InitiatorUPN: "eve@contoso.com", InitiatorID: "oid-1", InitiatorApp: "app-1", InitiatorIP: netip.MustParseAddr("203.0.113.9"),
		Targets: []AuditTarget{{ID: "https://kv1.vault.azure.net/secrets/db", Type: "Secret", Name: "KV1"}}}
	fromCSV := readAuditString(t, csvRows)
	if len(fromCSV) != 2 || !reflect.DeepEqual(fromCSV[0], want) || fromCSV[1].Success {
		t.Errorf("AzureDiagnostics rows %+v, want %+v", fromCSV, want)
	}
	if got := readAuditString(t, diag); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("diagnostic record %+v, want %+v", got, want)
	}
}

// verityAuditEvent is an audit event as the store returns it.
func verityAuditEvent(seq int64, at time.Time, action, actor string, details any) store.AuditEvent {
	b, _ := json.Marshal(details)
	return store.AuditEvent{Seq: seq, Index: seq - 1, Time: at, RequestID: fmt.Sprint("req-", seq), Actor: actor, Action: action,
		Target: "/api/v1/x", Result: "success", Details: b}
}

// apiChange is the details the API writes for a change made in a
// transaction (internal/api auditEvent).
func apiChange(kind, id, op string) map[string]any {
	return map[string]any{"method": "POST", "revision": 7, "changes": []map[string]string{{"kind": kind, "id": id, "op": op}}, "changeCount": 1}
}

// TestAuditRecordFromVerity maps Verity's own audit events, with the
// details its API and sign-in pages write, and runs the detectors on them.
func TestAuditRecordFromVerity(t *testing.T) {
	t.Parallel()
	const admin, bob, tmp = "a0000000-0000-0000-0000-000000000001", "b0000000-0000-0000-0000-000000000002", "c0000000-0000-0000-0000-000000000003"
	const ga, owner, appUser = "62e90394-69f5-4237-9190-012177145e10", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "6c2f4a1e-8b3d-4e7f-a9c5-1d2e3f4a5b6c"
	withRole := func(kind, assignment, principal, role string) map[string]any {
		d := apiChange(kind, assignment, "put")
		d["principalId"], d["roleDefinitionId"] = principal, role
		return d
	}
	totp, _ := json.Marshal(map[string]any{"id": "signin-1", "createdDateTime": auditT0.Add(3 * time.Hour), "userId": bob, "userPrincipalName": "Bob@contoso.com",
		"ipAddress": "192.0.2.8", "status": map[string]any{"errorCode": 0}, "authenticationDetails": []map[string]any{
			{"authenticationMethod": "Password", "succeeded": true, "authenticationStepDateTime": auditT0.Add(3 * time.Hour)},
			{"authenticationMethod": "OATH verification code", "succeeded": true, "authenticationStepDateTime": auditT0.Add(3 * time.Hour),
				"authenticationStepResultDetail": "Authenticator app registered"}}})
	plainSignIn, _ := json.Marshal(map[string]any{"id": "signin-2", "userId": bob, "authenticationDetails": []map[string]any{
		{"authenticationMethod": "Password", "succeeded": true, "authenticationStepResultDetail": "Password changed at another time"}}})
	cases := []struct {
		name   string
		events []store.AuditEvent
		want   map[string]int // alerts by detector
	}{
		{"a user created and deleted within the hour", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "users.create", admin, apiChange("user", tmp, "put")),
			verityAuditEvent(2, auditT0.Add(time.Hour), "users.delete", admin, apiChange("user", tmp, "delete")),
		}, map[string]int{"accountCreatedDeleted": 1}},
		{"a federated user provisioned, deleted a day later", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "identityProviders.provisionUser", tmp, map[string]any{"id": tmp, "userPrincipalName": "t@contoso.com", "revision": 3}),
			verityAuditEvent(2, auditT0.Add(25*time.Hour), "users.delete", admin, apiChange("user", tmp, "delete")),
		}, map[string]int{}},
		{"a directory role assigned, as the API records it today", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "directoryRoleAssignments.create", admin, apiChange("directoryRoleAssignment", "ra-1", "put")),
		}, map[string]int{"roleAssignedOutsidePIM": 1}},
		{"Global Administrator assigned, with the role and principal in the details", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "directoryRoleAssignments.create", admin, withRole("directoryRoleAssignment", "ra-1", bob, ga)),
			verityAuditEvent(2, auditT0.Add(time.Hour), "users.setPassword", admin, map[string]any{"method": "POST", "id": bob, "forceChangePasswordNextSignIn": false}),
		}, map[string]int{"roleAssignedOutsidePIM": 1, "privilegedRoleAssigned": 1, "authMethodsChangedPrivileged": 1}},
		{"Owner assigned (RBAC) to a user who then enrolls an authenticator app", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "roleAssignments.create", admin, withRole("roleAssignment", "rb-1", bob, "/providers/Microsoft.Authorization/roleDefinitions/"+owner)),
			{Seq: 2, Time: auditT0.Add(3 * time.Hour), Actor: bob, Action: SignInAction, Result: "success", Details: totp},
		}, map[string]int{"roleAssignedOutsidePIM": 1, "privilegedRoleAssigned": 1, "authMethodsChangedPrivileged": 1}},
		{"app access assigned (RBAC), with and without the role", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "roleAssignments.create", admin, withRole("roleAssignment", "rb-1", bob, appUser)),
			verityAuditEvent(2, auditT0, "roleAssignments.create", admin, apiChange("roleAssignment", "rb-2", "put")),
		}, map[string]int{}},
		{"a client secret added", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "applications.addPassword", admin, map[string]any{"method": "POST", "id": "app-object", "appId": "app-client", "keyId": "key-1"}),
		}, map[string]int{"credentialAdded": 1}},
		{"a password set for a user without a role", []store.AuditEvent{
			verityAuditEvent(1, auditT0, "users.setPassword", admin, map[string]any{"method": "POST", "id": tmp}),
		}, map[string]int{}},
	}
	for _, c := range cases {
		var recs []AuditRecord
		for i := range c.events {
			if r, ok := AuditRecordFromVerity(&c.events[i]); ok {
				recs = append(recs, r)
			} else {
				t.Errorf("%s: event %d not mapped", c.name, i)
			}
		}
		got := map[string]int{}
		for _, a := range RunAudit(recs, DefaultAuditDetectors()) {
			got[a.Detector]++
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: alerts %v, want %v", c.name, got, c.want)
		}
	}

	// What the alerts say.
	secret := verityAuditEvent(9, auditT0, "applications.addPassword", admin, map[string]any{"method": "POST", "id": "app-object", "appId": "app-client", "keyId": "key-1"})
	r, _ := AuditRecordFromVerity(&secret)
	a := RunAudit([]AuditRecord{r}, DefaultAuditDetectors())
	if len(a) != 1 || a[0].AppID != "app-client" || a[0].Severity != "medium" || !slices.Equal(a[0].Evidence, []string{"9"}) || !strings.Contains(a[0].Summary, admin) {
		t.Errorf("client secret alert %+v", a)
	}
	first := verityAuditEvent(9, auditT0, "applications.addPassword", admin, map[string]any{"id": "app-object", "appId": "app-client", "keyId": "key-1", "credentialsBefore": 0})
	r, _ = AuditRecordFromVerity(&first)
	if a := RunAudit([]AuditRecord{r}, DefaultAuditDetectors()); len(a) != 1 || a[0].Severity != "high" {
		t.Errorf("first client secret %+v", a)
	}
	reg := store.AuditEvent{Seq: 3, Time: auditT0, Actor: bob, Action: SignInAction, Result: "success", Details: totp}
	if r, ok := AuditRecordFromVerity(&reg); !ok || r.Operation != "User registered security info" || r.ID != "signin-1" || r.InitiatorIP.String() != "192.0.2.8" ||
		!r.Time.Equal(auditT0.Add(3*time.Hour)) || len(r.Targets) != 1 || r.Targets[0].ID != bob || r.Targets[0].UPN != "bob@contoso.com" {
		t.Errorf("authenticator app registration %+v %v", r, ok)
	}

	// Events the detectors have no use for.
	for _, ev := range []store.AuditEvent{
		verityAuditEvent(1, auditT0, "auth.login", "", map[string]any{"userPrincipalName": "bob@contoso.com"}),
		verityAuditEvent(1, auditT0, "users.list", admin, map[string]any{"method": "GET"}),
		verityAuditEvent(1, auditT0, "groups.addMember", admin, apiChange("group", "g1", "put")),
		{Action: SignInAction, Details: plainSignIn},
		{Action: "users.create", Details: []byte("not json")},
	} {
		if r, ok := AuditRecordFromVerity(&ev); ok {
			t.Errorf("%s mapped: %+v", ev.Action, r)
		}
	}
}

// TestPrivilegedRolesAreBuiltIn: the privileged roles are Verity's
// built-in roles under the names the directory and RBAC give them, and
// every directory role Microsoft labels privileged is among them.
func TestPrivilegedRolesAreBuiltIn(t *testing.T) {
	t.Parallel()
	for id, name := range privilegedRoleIDs {
		d, okD := directory.RoleByID(id)
		r, okR := rbac.LookupRole(id)
		switch {
		case okD && d.DisplayName == name && d.IsPrivileged:
		case okR && r.RoleName == name:
		default:
			t.Errorf("%s %q: directory %+v %v, RBAC %+v %v", id, name, d, okD, r.RoleName, okR)
		}
	}
	for _, d := range directory.BuiltinRoles() {
		if _, ok := privilegedRoleIDs[d.ID]; d.IsPrivileged && !ok {
			t.Errorf("%s (%s) is privileged", d.DisplayName, d.ID)
		}
	}
	for _, name := range []string{"Owner", "User Access Administrator", "Verity Privileged Role Administrator"} {
		r, ok := rbac.LookupRole(name)
		if !ok || !(auditRole{id: r.Name}).privileged(nil, nil) {
			t.Errorf("%s (%+v) is not privileged", name, r)
		}
	}
	if (auditRole{id: "6c2f4a1e-8b3d-4e7f-a9c5-1d2e3f4a5b6c", name: "Verity App User"}).privileged([]string{"Admin"}, nil) {
		t.Error("Verity App User is privileged")
	}
}

// FuzzReadAuditRecords: any input is records or an error, never a panic;
// the detectors take whatever the reader gives them.
func FuzzReadAuditRecords(f *testing.F) {
	for _, p := range []string{"testdata/logs/sentinel-training-lab/AuditLogs_Hunting.csv", "testdata/logs/otrf-goldensaml/AADAuditEvents.json",
		"testdata/logs/otrf-goldensaml/OfficeActivityEvents.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"category":"AuditEvent","resourceId":"/x/VAULTS/kv","operationName":"SecretGet","identity":{"claim":{"oid":"o"}},"properties":{}}`))
	f.Add([]byte(`[{"properties":{"loggedByService":"PIM","targetResources":[{"type":"Role","modifiedProperties":[{"displayName":"Role.DisplayName","newValue":1}]}]}}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := ReadAuditRecords(bytes.NewReader(in))
		if err != nil {
			return
		}
		RunAudit(recs, DefaultAuditDetectors())
	})
}

// FuzzAuditRecordFromVerity: any details of any action map or are
// skipped, never a panic.
func FuzzAuditRecordFromVerity(f *testing.F) {
	for _, s := range []string{`{"changes":[{"kind":"user","id":"u","op":"delete"}]}`, `{"id":"a","appId":"b","keyId":"k","credentialsBefore":0}`,
		`{"principalId":"p","roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/"}`,
		`{"authenticationDetails":[{"succeeded":true,"authenticationStepResultDetail":"Password changed"}]}`} {
		for _, action := range []string{"users.delete", "applications.addPassword", "roleAssignments.create", SignInAction} {
			f.Add(action, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, action string, details []byte) {
		ev := store.AuditEvent{Seq: 1, Action: action, Result: "success", Details: details}
		if r, ok := AuditRecordFromVerity(&ev); ok {
			RunAudit([]AuditRecord{r}, DefaultAuditDetectors())
		}
	})
}
