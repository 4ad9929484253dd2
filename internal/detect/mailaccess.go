package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// MailAccessAfterConsent: an application reading mail (Office activity
// MailItemsAccessed with a ClientAppId) within Window of a tenant-wide
// grant of a mail scope — a delegated grant for all principals or an
// application permission, as consentGrant reads them — when that
// application had read no mail in the Lookback before the grant: the
// illicit consent, or the application an attacker took over, put to use
// (the mail collection of OTRF's Golden SAML simulation; ATT&CK T1114,
// after T1098.002). The grant names its client by service principal object
// id, the mail read by application id, and they cannot be joined: unless
// the grant also names the client's application id (ServicePrincipal.AppId),
// every application new to mail after it counts. One alert per application
// and grant. Defaults: mail scopes, a read within 24 hours of the grant,
// new when it read nothing in the 7 days before — with the window, within
// the 14 days the engine reads again after a restart, so a replay judges
// as the first reading did.
type MailAccessAfterConsent struct {
	Scopes   []string      `json:"scopes"`   // the mail scopes, e.g. "Mail.*", "full_access_as_app"; "*" at the end matches by prefix
	Window   time.Duration `json:"window"`   // how long after the grant a read counts
	Lookback time.Duration `json:"lookback"` // how long before the grant a read makes the application a known reader
	// grants are those of the last Window, oldest first; lastRead is each
	// application's (id, lower case) last mail read.
	grants   []*mailGrant
	lastRead map[string]time.Time
	sweep    sweeper
}

// mailGrant is a tenant-wide grant of mail scopes and the applications
// judged since.
type mailGrant struct {
	at          time.Time
	ref         string // the change (CorrelationId, else the record)
	record      string // the record's id, for the evidence
	clientAppID string // lower case; "" when the record does not name it
	about       string // who gave what to whom, for the summary
	// judged are the applications that read mail after the grant: true
	// when the read was new (and raised).
	judged map[string]bool
}

// Name implements AuditDetector.
func (d *MailAccessAfterConsent) Name() string { return "mailAccessAfterConsent" }

// ObserveAudit implements AuditDetector.
func (d *MailAccessAfterConsent) ObserveAudit(r *AuditRecord, raise func(Alert)) {
	if d.lastRead != nil && d.sweep.due(r.Time, d.Window) {
		d.grants = slices.DeleteFunc(d.grants, func(g *mailGrant) bool { return r.Time.Sub(g.at) > d.Window })
		// A read older than Lookback before the oldest grant that may
		// still be read after judges nothing.
		sweepRaised(d.lastRead, r.Time, d.Lookback+d.Window)
	}
	if !r.Success {
		return
	}
	if strings.EqualFold(r.Operation, mailItemsAccessed) {
		d.observeRead(r, raise)
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
	ref := changeRef(r)
	if slices.ContainsFunc(d.grants, func(m *mailGrant) bool { return m.ref == ref }) {
		return // another record of the same consent
	}
	d.ensure()
	about := initiatorName(r) + " gave " + g.clientLabel() + " " + strings.Join(scopes, " ")
	if g.resource != "" {
		about += " of " + g.resource
	}
	d.grants = append(d.grants, &mailGrant{at: r.Time, ref: ref, record: r.ID, clientAppID: strings.ToLower(g.clientAppID),
		about: about, judged: map[string]bool{}})
}

func (d *MailAccessAfterConsent) ensure() {
	if d.lastRead == nil {
		d.lastRead = map[string]time.Time{}
	}
}

// observeRead judges a mail read against each grant it follows: an
// application's first read after a grant is new unless it read mail in
// the lookback before the grant.
func (d *MailAccessAfterConsent) observeRead(r *AuditRecord, raise func(Alert)) {
	app := strings.ToLower(r.InitiatorApp)
	if app == "" {
		return // a user's own client: no application to have been granted
	}
	d.ensure()
	prior, readBefore := d.lastRead[app]
	if !readBefore || r.Time.After(prior) {
		d.lastRead[app] = r.Time
	}
	for _, g := range d.grants {
		if r.Time.Before(g.at) || r.Time.Sub(g.at) > d.Window || g.clientAppID != "" && g.clientAppID != app {
			continue
		}
		if _, ok := g.judged[app]; ok {
			continue // raised already, or a known reader
		}
		// Records come in time order: an earlier read after the grant
		// would have been judged, so the last read is the last before it
		// (or at its very time, logged before it).
		known := readBefore && !prior.After(g.at) && g.at.Sub(prior) <= d.Lookback
		g.judged[app] = !known
		if known {
			continue
		}
		d.raiseRead(r, g, raise)
	}
}

func (d *MailAccessAfterConsent) raiseRead(r *AuditRecord, g *mailGrant, raise func(Alert)) {
	var owner string
	if t := memberTarget(r, "Mailbox"); t != nil {
		owner = t.UPN
	}
	mailbox := owner
	if mailbox == "" {
		mailbox = "a mailbox the record does not name"
	}
	via := ""
	if r.Client != "" {
		via = " (" + r.Client + ")"
	}
	ev := make([]string, 0, 2)
	for _, id := range []string{g.record, r.ID} {
		if id != "" {
			ev = append(ev, id)
		}
	}
	raise(Alert{Detector: d.Name(), Key: d.Name() + "/" + strings.ToLower(r.InitiatorApp) + "/" + g.ref, MITRE: []string{"T1114"}, Severity: "high",
		User: owner, IP: r.InitiatorIP, AppID: r.InitiatorApp, First: r.Time, Last: r.Time, Evidence: ev,
		Summary: fmt.Sprintf("application %s read the mail of %s%s %v after %s for every user (T1098.002); it had read no mail in the %s before",
			r.InitiatorApp, mailbox, via, r.Time.Sub(g.at).Round(time.Second), g.about, spanText(d.Lookback))})
}

// spanText is a duration as a summary says it: whole days in days.
func spanText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "day"
	case d > 0 && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
