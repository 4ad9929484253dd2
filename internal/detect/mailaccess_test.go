package detect

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var mailIP = netip.MustParseAddr("203.0.113.9")

// auditMailRead is Exchange's record of an application (app; "" for a
// user's own client) reading owner's mail.
func auditMailRead(at time.Time, id, app, owner string) AuditRecord {
	return AuditRecord{Time: at, ID: id, Operation: "MailItemsAccessed", Category: "ExchangeItem", Service: "Exchange", Success: true,
		InitiatorUPN: owner, InitiatorApp: app, InitiatorIP: mailIP, AppID: "00000003-0000-0000-c000-000000000000", Client: "Client=REST;;",
		Targets: []AuditTarget{{ID: "mbx-" + owner, Type: "Mailbox", Name: owner, UPN: owner}}}
}

// auditAppRole is the record of an application permission (app role
// value) given to the client Mailer.
func auditAppRole(at time.Time, id, value string) AuditRecord {
	return AuditRecord{Time: at, ID: id, CorrelationID: "c-" + id, Operation: "Add app role assignment to service principal", Success: true,
		InitiatorUPN: "admin@contoso.com", Targets: []AuditTarget{{ID: "exo", Type: "ServicePrincipal", Name: "Office 365 Exchange Online",
			Modified: []ModifiedProperty{{Name: "AppRole.Value", New: `"` + value + `"`}, {Name: "ServicePrincipal.DisplayName", New: `"Mailer"`}}}}}
}

// TestAuditReadsMailAccess reads a mail read of Office activity in each
// shape it is exported in — the OfficeActivity row (JSON lines as OTRF
// keeps it, the portal's CSV) and the Office 365 Management API record
// (alone, or the API's JSON array) — as the same record; other Office
// activity is skipped.
func TestAuditReadsMailAccess(t *testing.T) {
	t.Parallel()
	want := AuditRecord{Time: time.Date(2021, 8, 2, 13, 32, 7, 0, time.UTC), ID: "699e0b10-1c53-403e-976f-ce0847a92b44",
		Operation: "MailItemsAccessed", Category: "ExchangeItem", Service: "Exchange", Success: true, InitiatorUPN: "pgustavo@simulandlabs.com",
		InitiatorApp: "5a95e683-08ad-424e-a441-1d1aec52c02c", InitiatorIP: netip.MustParseAddr("1.2.3.4"),
		Targets: []AuditTarget{{ID: "d0c5f8ae-9ed7-4e46-bfdf-ea1460f5a31b", Type: "Mailbox", Name: "pgustavo@simulandlabs.com", UPN: "pgustavo@simulandlabs.com"}},
		AppID:   "00000003-0000-0000-c000-000000000000", Client: "Client=REST;;"}
	management := `{"CreationTime":"2021-08-02T13:32:07","Id":"699e0b10-1c53-403e-976f-ce0847a92b44","Operation":"MailItemsAccessed",` +
		`"OrganizationId":"00000000-0000-0000-0000-000000000000","RecordType":50,"ResultStatus":"Succeeded","UserKey":"100320015858B802",` +
		`"UserType":0,"Version":1,"Workload":"Exchange","UserId":"PGustavo@simulandlabs.com","AppId":"00000003-0000-0000-c000-000000000000",` +
		`"ClientAppId":"5a95e683-08ad-424e-a441-1d1aec52c02c","ClientIPAddress":"1.2.3.4:50312","ClientInfoString":"Client=REST;;",` +
		`"ExternalAccess":false,"LogonType":0,"MailboxGuid":"d0c5f8ae-9ed7-4e46-bfdf-ea1460f5a31b","MailboxOwnerUPN":"pgustavo@simulandlabs.com",` +
		`"OperationProperties":[{"Name":"MailAccessType","Value":"Bind"}],"Folders":[{"Path":"\\Inbox","FolderItems":[]}]}`
	csvRows := "TimeGenerated [UTC],Operation,OfficeWorkload,RecordType,ResultStatus,UserId,MailboxOwnerUPN,MailboxGuid,ClientAppId,AppId,Client_IPAddress,ClientInfoString,OfficeId,Type\n" +
		"\"8/2/2021, 1:32:07.000 PM\",MailItemsAccessed,Exchange,50,Succeeded,pgustavo@simulandlabs.com,pgustavo@simulandlabs.com,d0c5f8ae-9ed7-4e46-bfdf-ea1460f5a31b," +
		"5a95e683-08ad-424e-a441-1d1aec52c02c,00000003-0000-0000-c000-000000000000,1.2.3.4,Client=REST;;,699e0b10-1c53-403e-976f-ce0847a92b44,OfficeActivity\n" +
		"\"8/2/2021, 1:33:00.000 PM\",FileAccessed,SharePoint,6,Succeeded,pgustavo@simulandlabs.com,,,,,1.2.3.4,,8f1e0000-0000-0000-0000-000000000001,OfficeActivity\n"
	for _, c := range []struct{ name, in string }{
		{"OfficeActivity row (JSON lines)", ""},
		{"OfficeActivity rows (CSV)", csvRows},
		{"Management API record", management},
		{"Management API array, with other activity", "[" + management + `,{"CreationTime":"2021-08-02T13:40:00","Id":"x","Operation":"MailboxLogin","RecordType":2,"Workload":"Exchange"}]`},
	} {
		var got []AuditRecord
		if c.in == "" {
			got = readAuditFile(t, "testdata/logs/otrf-goldensaml/OfficeActivityEvents.json")
		} else {
			got = readAuditString(t, c.in)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, want)
		}
	}

	ipv6 := strings.Replace(management, `"1.2.3.4:50312"`, `"[2001:db8::1]:443"`, 1)
	if got := readAuditString(t, ipv6); len(got) != 1 || got[0].InitiatorIP != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("an IPv6 address with its port: %+v", got)
	}
	failed := strings.Replace(management, `"Succeeded"`, `"Failed"`, 1)
	if got := readAuditString(t, failed); len(got) != 1 || got[0].Success {
		t.Errorf("a failed access: %+v", got)
	}
	for _, other := range []string{
		`{"TimeGenerated":"2021-08-02T13:32:07Z","Operation":"Send","OfficeWorkload":"Exchange","UserId":"a@contoso.com","Type":"OfficeActivity"}`,
		`{"CreationTime":"2021-08-02T13:32:07","Operation":"FileDownloaded","Workload":"OneDrive","UserId":"a@contoso.com","RecordType":6}`,
	} {
		if got := readAuditString(t, other); len(got) != 0 {
			t.Errorf("%s read as %+v", other, got)
		}
	}
	bad := strings.Replace(management, `"2021-08-02T13:32:07"`, `"tuesday"`, 1)
	if _, err := ReadAuditRecords(strings.NewReader(management + "\n" + bad)); err == nil || !strings.Contains(err.Error(), `line 2: CreationTime: not a time: "tuesday"`) {
		t.Errorf("a bad CreationTime: %v", err)
	}
}

// TestMailAccessAfterConsent: an application new to mail reading it
// within the window of a tenant-wide mail grant raises once per grant;
// reads before any grant, by known readers, too late, after another grant,
// or without an application do not.
func TestMailAccessAfterConsent(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	grant := func(at time.Time, id string) AuditRecord {
		return auditGrant(at, id, "c-"+id, "AllPrincipals", "User.Read", "User.Read Mail.Read")
	}
	read := func(after time.Duration, id, app string) AuditRecord {
		return auditMailRead(auditT0.Add(after), id, app, "alice@contoso.com")
	}
	namedClient := func(appID string) AuditRecord {
		g := grant(auditT0, "g1")
		g.Targets[0].Modified = append(g.Targets[0].Modified, ModifiedProperty{Name: "ServicePrincipal.AppId", New: `"` + appID + `"`})
		return g
	}
	failed := read(time.Hour, "m1", "app-1")
	failed.Success = false
	adminConsent := AuditRecord{Time: auditT0, ID: "ac1", CorrelationID: "c-g1", Operation: "Consent to application", Success: true,
		Targets: []AuditTarget{{ID: "client-sp", Type: "ServicePrincipal", Name: "Mailer", Modified: []ModifiedProperty{
			{Name: "ConsentContext.IsAdminConsent", New: `"True"`},
			{Name: "ConsentAction.Permissions", New: `"[] => [[Id: x, ClientId: client-sp, ConsentType: AllPrincipals, Scope:  User.Read Mail.Read, ]]; "`}}}}}
	for _, c := range []struct {
		name string
		recs []AuditRecord
		want int
	}{
		{"a new application reads mail an hour after the grant", []AuditRecord{grant(auditT0, "g1"), read(time.Hour, "m1", "app-1")}, 1},
		{"mail read, no grant", []AuditRecord{read(0, "m1", "app-1"), read(time.Hour, "m2", "app-2")}, 0},
		{"mail read before the grant only", []AuditRecord{read(-time.Hour, "m1", "app-1"), grant(auditT0, "g1")}, 0},
		{"an application that read mail the hour before the grant", []AuditRecord{read(-time.Hour, "m0", "app-1"), grant(auditT0, "g1"),
			read(time.Hour, "m1", "app-1")}, 0},
		{"an application that read mail at the grant's time, logged before it", []AuditRecord{read(0, "m0", "app-1"), grant(auditT0, "g1"),
			read(time.Hour, "m1", "app-1")}, 0},
		{"an application that read mail 7 days before the grant", []AuditRecord{read(-7*day, "m0", "app-1"), grant(auditT0, "g1"),
			read(time.Hour, "m1", "app-1")}, 0},
		{"an application that read mail 7 days and 1s before the grant", []AuditRecord{read(-7*day-time.Second, "m0", "app-1"), grant(auditT0, "g1"),
			read(time.Hour, "m1", "app-1")}, 1},
		{"a known reader and a new one", []AuditRecord{read(-day, "m0", "app-1"), grant(auditT0, "g1"), read(time.Hour, "m1", "app-1"),
			read(2*time.Hour, "m2", "app-2")}, 1},
		{"read 24 hours after the grant", []AuditRecord{grant(auditT0, "g1"), read(day, "m1", "app-1")}, 1},
		{"read 24 hours and 1s after the grant", []AuditRecord{grant(auditT0, "g1"), read(day+time.Second, "m1", "app-1")}, 0},
		{"a grant of files, not mail", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "", "Files.Read.All User.ReadWrite.All"),
			read(time.Hour, "m1", "app-1")}, 0},
		{"Mail.Read for one user", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "Principal", "User.Read", "User.Read Mail.Read"),
			read(time.Hour, "m1", "app-1")}, 0},
		{"Mail.Read granted before", []AuditRecord{auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "Mail.Read", "Mail.Read Files.Read"),
			read(time.Hour, "m1", "app-1")}, 0},
		{"an application permission, Mail.Read", []AuditRecord{auditAppRole(auditT0, "ar1", "Mail.Read"), read(time.Hour, "m1", "app-1")}, 1},
		{"an application permission, full_access_as_app", []AuditRecord{auditAppRole(auditT0, "ar1", "full_access_as_app"), read(time.Hour, "m1", "app-1")}, 1},
		{"an application permission, User.Read.All", []AuditRecord{auditAppRole(auditT0, "ar1", "User.Read.All"), read(time.Hour, "m1", "app-1")}, 0},
		{"a user's own client", []AuditRecord{grant(auditT0, "g1"), read(time.Hour, "m1", "")}, 0},
		{"a failed read", []AuditRecord{grant(auditT0, "g1"), failed}, 0},
		{"two applications, one reading three times", []AuditRecord{grant(auditT0, "g1"), read(time.Hour, "m1", "app-1"),
			read(2*time.Hour, "m2", "app-1"), read(3*time.Hour, "m3", "APP-1"), read(4*time.Hour, "m4", "app-2")}, 2},
		{"grant and admin consent of one change", []AuditRecord{grant(auditT0, "g1"), adminConsent, read(time.Hour, "m1", "app-1")}, 1},
		{"two grants, one new reader", []AuditRecord{grant(auditT0, "g1"), grant(auditT0.Add(time.Minute), "g2"), read(time.Hour, "m1", "app-1")}, 2},
		{"a reader new after one grant, known before the next", []AuditRecord{grant(auditT0, "g1"), read(time.Hour, "m1", "app-1"),
			grant(auditT0.Add(2*time.Hour), "g2"), read(3*time.Hour, "m2", "app-1")}, 1},
		{"the grant names its client, which reads", []AuditRecord{namedClient("APP-1"), read(time.Hour, "m1", "app-1")}, 1},
		{"the grant names its client, another reads", []AuditRecord{namedClient("app-1"), read(time.Hour, "m1", "app-2")}, 0},
	} {
		all := RunAudit(slices.Clone(c.recs), DefaultAuditDetectors())
		got := alertsOf(all, "mailAccessAfterConsent")
		if len(got) != c.want {
			t.Errorf("%s: raised %d, want %d: %+v", c.name, len(got), c.want, got)
		}
		if others := len(all) - len(got) - len(alertsOf(all, "consentGrant")); others != 0 {
			t.Errorf("%s: other detectors raised %+v", c.name, all)
		}
	}

	// What the alert says.
	got := RunAudit([]AuditRecord{grant(auditT0, "g1"), read(time.Hour, "m1", "app-1")}, DefaultAuditDetectors())
	a := alertsOf(got, "mailAccessAfterConsent")
	if len(a) != 1 || a[0].Key != "mailAccessAfterConsent/app-1/c-g1" || a[0].Severity != "high" || !slices.Equal(a[0].MITRE, []string{"T1114"}) ||
		a[0].User != "alice@contoso.com" || a[0].AppID != "app-1" || a[0].IP != mailIP || !a[0].First.Equal(auditT0.Add(time.Hour)) ||
		!slices.Equal(a[0].Evidence, []string{"g1", "m1"}) || !strings.Contains(a[0].Summary, "Mail.Read of Microsoft Graph") ||
		!strings.Contains(a[0].Summary, "1h0m0s after") || !strings.Contains(a[0].Summary, "7 days") {
		t.Errorf("alert %+v", a)
	}
}

// TestMailAccessReplay: replaying the records (fresh detectors, from the
// start or stopped half way) raises the same keys, and the same detectors
// fed them again raise nothing.
func TestMailAccessReplay(t *testing.T) {
	t.Parallel()
	var stream []AuditRecord
	for i := range 48 { // a known reader, every hour of two days
		stream = append(stream, auditMailRead(auditT0.Add(time.Duration(i-24)*time.Hour), fmt.Sprint("k", i), "outlook", "bob@contoso.com"))
	}
	stream = append(stream, auditGrant(auditT0, "g1", "c-g1", "AllPrincipals", "", "Mail.ReadWrite"),
		auditAppRole(auditT0.Add(6*time.Hour), "ar1", "Mail.Read"))
	for i := range 10 {
		stream = append(stream, auditMailRead(auditT0.Add(time.Duration(i+1)*time.Hour), fmt.Sprint("m", i), fmt.Sprint("app-", i%3), "alice@contoso.com"))
	}
	slices.SortStableFunc(stream, func(a, b AuditRecord) int { return a.Time.Compare(b.Time) })
	only := func(as []Alert) []string { return alertKeys(alertsOf(as, "mailAccessAfterConsent")) }
	full := only(RunAudit(slices.Clone(stream), DefaultAuditDetectors()))
	// app-0, app-1 and app-2 are new after the grant; after the app role
	// assignment at 6h, each has read mail since the grant: none is new.
	want := []string{"mailAccessAfterConsent/app-0/c-g1", "mailAccessAfterConsent/app-1/c-g1", "mailAccessAfterConsent/app-2/c-g1"}
	if !slices.Equal(full, want) {
		t.Fatalf("keys %v, want %v", full, want)
	}
	half := only(RunAudit(slices.Clone(stream[:len(stream)/2]), DefaultAuditDetectors()))
	again := only(RunAudit(slices.Clone(stream), DefaultAuditDetectors()))
	if !slices.Equal(again, full) || len(half) == 0 || slices.ContainsFunc(half, func(k string) bool { return !slices.Contains(full, k) }) {
		t.Errorf("half %v, replay %v, full run %v", half, again, full)
	}
	d := &MailAccessAfterConsent{Scopes: []string{"Mail.*"}, Window: 24 * time.Hour, Lookback: 7 * 24 * time.Hour}
	for pass := range 2 {
		n := 0
		for i := range stream {
			d.ObserveAudit(&stream[i], func(Alert) { n++ })
		}
		if want := []int{3, 0}[pass]; n != want {
			t.Errorf("pass %d raised %d, want %d", pass+1, n, want)
		}
	}
}

// TestMailReadsRaiseNothingElse: a busy day of mail reads, with no grant,
// raises nothing in any detector.
func TestMailReadsRaiseNothingElse(t *testing.T) {
	t.Parallel()
	var recs []AuditRecord
	for i := range 5000 {
		recs = append(recs, auditMailRead(auditT0.Add(time.Duration(i)*15*time.Second), fmt.Sprint("m", i), fmt.Sprint("app-", i%40),
			fmt.Sprintf("user%d@contoso.com", i%300)))
	}
	if got := RunAudit(recs, DefaultAuditDetectors()); len(got) != 0 {
		t.Errorf("alerts %+v", got)
	}
}
