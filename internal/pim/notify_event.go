package pim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// Event types of PIM notifications.
const (
	EventApprovalRequired    = "pim.approval.required"
	EventRoleActivated       = "pim.role.activated"
	EventRequestApproved     = "pim.request.approved"
	EventRequestDenied       = "pim.request.denied"
	EventRequestCanceled     = "pim.request.canceled"
	EventRequestTimedOut     = "pim.request.timedOut"
	EventRoleDeactivated     = "pim.role.deactivated"
	EventRoleExpired         = "pim.role.expired"
	EventEligibilityCreated  = "pim.eligibility.created"
	EventEligibilityRemoved  = "pim.eligibility.removed"
	EventEligibilityExtended = "pim.eligibility.extended"
	EventEligibilityRenewed  = "pim.eligibility.renewed"
	EventAssignmentCreated   = "pim.assignment.created"
	EventAssignmentRemoved   = "pim.assignment.removed"
	EventAssignmentExtended  = "pim.assignment.extended"
	EventEligibilityExpiring = "pim.eligibility.expiring"
	EventAssignmentExpiring  = "pim.assignment.expiring"
)

// eventRule says what an audit record is as a notification: the record of
// action (about a request with that target and status; "" matches any)
// is an event of type typ, for the recipient types in to; critical names
// the recipient type that must act on it (Graph's Critical level lets only
// that through).
type eventRule struct {
	action, target, status string
	typ                    string
	to                     []string
	critical               string
}

// eventRules maps PIM's audit records to events; the first match wins.
// A new kind of request record is one more row; records about something
// else than a request are one more case in notification, with a payload
// beside Request (as access reviews have Review).
var eventRules = []eventRule{
	{action: "pim.selfActivate", status: StatusPendingApproval, typ: EventApprovalRequired, to: []string{RecipientApprover, RecipientRequestor}, critical: RecipientApprover},
	{action: "pim.selfActivate", status: StatusProvisioned, typ: EventRoleActivated, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.selfExtend", status: StatusPendingApproval, typ: EventApprovalRequired, to: []string{RecipientApprover, RecipientRequestor}, critical: RecipientApprover},
	{action: "pim.selfRenew", status: StatusPendingApproval, typ: EventApprovalRequired, to: []string{RecipientApprover, RecipientRequestor}, critical: RecipientApprover},
	{action: "pim.approve", typ: EventRequestApproved, to: []string{RecipientRequestor, RecipientApprover, RecipientAdmin}},
	{action: "pim.deny", typ: EventRequestDenied, to: []string{RecipientRequestor, RecipientApprover}},
	{action: "pim.cancel", typ: EventRequestCanceled, to: []string{RecipientRequestor, RecipientApprover}},
	{action: "pim.timeout", typ: EventRequestTimedOut, to: []string{RecipientRequestor, RecipientApprover}},
	{action: "pim.selfDeactivate", typ: EventRoleDeactivated, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.expire", typ: EventRoleExpired, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminAssign", target: TargetAssignment, typ: EventAssignmentCreated, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminAssign", typ: EventEligibilityCreated, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminRemove", target: TargetAssignment, typ: EventAssignmentRemoved, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminRemove", typ: EventEligibilityRemoved, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminExtend", target: TargetAssignment, typ: EventAssignmentExtended, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminExtend", typ: EventEligibilityExtended, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: "pim.adminRenew", typ: EventEligibilityRenewed, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: ExpiringAction, target: TargetEligibility, typ: EventEligibilityExpiring, to: []string{RecipientRequestor, RecipientAdmin}},
	{action: ExpiringAction, target: TargetAssignment, typ: EventAssignmentExpiring, to: []string{RecipientRequestor, RecipientAdmin}},
}

// notifiable reports whether records of action may be events.
func notifiable(action string) bool {
	if reviewEventType(action) != "" {
		return true
	}
	for i := range eventRules {
		if eventRules[i].action == action {
			return true
		}
	}
	return false
}

// ruleFor finds the row for a record of action about a request with
// target and status.
func ruleFor(action, target, status string) (*eventRule, bool) {
	for i := range eventRules {
		r := &eventRules[i]
		if r.action == action && (r.target == "" || r.target == target) && (r.status == "" || r.status == status) {
			return r, true
		}
	}
	return nil, false
}

// ruleGroup is the group of notification rules that governs a request:
// activations (and their end), an administrator's eligibilities (and the
// requests to extend or renew one, and the reminders of their end), or an
// administrator's active assignments (and the requests to extend one, and
// the reminders of their end).
func ruleGroup(requestType, target string) string {
	switch requestType {
	case SelfActivate, SelfDeactivate, expireRecord:
		return GroupEndUserAssignment
	}
	if target == TargetAssignment {
		return GroupAdminAssignment
	}
	return GroupAdminEligibility
}

// Notification is the body of a PIM webhook: one step of a role's
// just-in-time life, whom it concerns by Entra's recipient types, and a
// summary without links.
type Notification struct {
	// ID is the event's, the same on every node and after restarts.
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Actor   Person    `json:"actor"`
	Summary string    `json:"summary"`
	// Request is what the event is about (every pim.* event has one);
	// Review, for accessReview.* events, the review instance.
	Request *Notified       `json:"request,omitempty"`
	Review  *NotifiedReview `json:"review,omitempty"`
	// Recipients by type; a type the role's notification rules leave out
	// is absent.
	Recipients Recipients `json:"recipients"`
	// AuditLeaf is the audit record's leaf index (for its proof).
	AuditLeaf int64 `json:"auditLeaf"`
}

// Notified is the request an event is about, as it stood then.
type Notified struct {
	ID               string      `json:"id,omitempty"`
	RequestType      string      `json:"requestType"`
	Target           string      `json:"target,omitempty"`
	Status           string      `json:"status"`
	Principal        Person      `json:"principal"`
	RequestorID      string      `json:"requestorId,omitempty"`
	RoleKind         string      `json:"roleKind"`
	RoleDefinitionID string      `json:"roleDefinitionId"`
	RoleName         string      `json:"roleName,omitempty"`
	Scope            string      `json:"scope"`
	Justification    string      `json:"justification,omitempty"`
	TicketInfo       *TicketInfo `json:"ticketInfo,omitempty"`
	StartDateTime    *time.Time  `json:"startDateTime,omitempty"`
	EndDateTime      *time.Time  `json:"endDateTime,omitempty"`
	ApprovalDeadline *time.Time  `json:"approvalDeadline,omitempty"`
	TargetScheduleID string      `json:"targetScheduleId,omitempty"`
	Approval         *Approval   `json:"approval,omitempty"`
}

// Person is a recipient or principal: its id, and its sign-in name and
// mail when the directory knows them; an extra recipient of a rule is a
// mail address alone.
type Person struct {
	ID                string `json:"id,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	Mail              string `json:"mail,omitempty"`
}

// Recipients are an event's recipients by Entra's recipient types: those
// of PIM's notification rules, and an access review's reviewers and
// creator.
type Recipients struct {
	Requestor []Person   `json:"requestor,omitempty"`
	Approvers []Person   `json:"approvers,omitempty"`
	Admins    []Person   `json:"admins,omitempty"`
	Reviewers []Reviewer `json:"reviewers,omitempty"`
	Creator   []Person   `json:"creator,omitempty"`
}

// maxRecipients is how many people one event names at most (Entra's
// limit on the notifications of one event).
const maxRecipients = 1000

// auditDetails are the fields of PIM's audit records a notification uses.
// Target is in the records of what time does to a schedule; a request's
// is read from the stored request.
type auditDetails struct {
	RequestType      string      `json:"requestType"`
	Target           string      `json:"target"`
	Status           string      `json:"status"`
	PrincipalID      string      `json:"principalId"`
	RoleDefinitionID string      `json:"roleDefinitionId"`
	Scope            string      `json:"scope"`
	RoleKind         string      `json:"roleKind"`
	Justification    string      `json:"justification"`
	TicketInfo       *TicketInfo `json:"ticketInfo"`
	TargetScheduleID string      `json:"targetScheduleId"`
	EndDateTime      *time.Time  `json:"endDateTime"`
	Approval         *Approval   `json:"approval"`
}

// notification builds the event of an audit record and says where it
// goes: nil when the record is no event or goes nowhere.
func (n *Notifier) notification(ctx context.Context, ev *store.AuditEvent) (*Notification, []string, error) {
	switch {
	case strings.HasPrefix(ev.Action, "pim."):
		return n.requestNotification(ctx, ev)
	case strings.HasPrefix(ev.Action, "accessReview."):
		return n.reviewNotification(ctx, ev)
	}
	return nil, nil, nil
}

// requestNotification builds the event of a PIM request's audit record:
// nil when its role has no webhooks or its rules send it to nobody.
func (n *Notifier) requestNotification(ctx context.Context, ev *store.AuditEvent) (*Notification, []string, error) {
	var d auditDetails
	if err := json.Unmarshal(ev.Details, &d); err != nil || d.RequestType == "" {
		n.log.Warn("pim: notify: an audit record it cannot read", "leaf", ev.Index, "action", ev.Action)
		return nil, nil, nil
	}
	p, err := n.policy(ctx, d.RoleKind, d.RoleDefinitionID, d.Scope)
	if err != nil || len(p.Notify) == 0 {
		return nil, nil, err
	}
	// The stored request adds what the record leaves out (the requestor,
	// the target, the start); the record says how it stood then.
	var req *Request
	if id, ok := strings.CutPrefix(ev.Target, "/pim/requests/"); ok {
		r, err := getRequest(ctx, n.st, id)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, nil, err
		default:
			req = r
		}
	}
	target := d.Target
	if req != nil {
		target = req.Target
	}
	rule, ok := ruleFor(ev.Action, target, d.Status)
	if !ok {
		return nil, nil, nil
	}
	dir := n.directory()
	note := &Notification{ID: eventID(ev), Type: rule.typ, Time: ev.Time.UTC(), Actor: person(dir, ev.Actor), AuditLeaf: ev.Index,
		Request: &Notified{RequestType: d.RequestType, Target: target, Status: d.Status, Principal: person(dir, d.PrincipalID),
			RoleKind: d.RoleKind, RoleDefinitionID: d.RoleDefinitionID, RoleName: n.roleName(ctx, d.RoleKind, d.RoleDefinitionID),
			Scope: d.Scope, Justification: d.Justification, TicketInfo: d.TicketInfo, EndDateTime: d.EndDateTime,
			TargetScheduleID: d.TargetScheduleID, Approval: d.Approval}}
	if req != nil {
		note.Request.ID, note.Request.RequestorID = req.ID, req.RequestorID
		if req.Status == d.Status {
			// Unchanged since: its start and deadline are the record's.
			note.Request.StartDateTime, note.Request.ApprovalDeadline = req.ScheduleInfo.StartDateTime, req.ApprovalDeadline
		}
	}
	if !n.address(note, rule, &p, ruleGroup(d.RequestType, target), dir) {
		return nil, nil, nil
	}
	note.Summary = summary(note, dir)
	return note, p.Notify, nil
}

// policy is the role's settings, read once per step: a batch of events
// about one role costs one read.
func (n *Notifier) policy(ctx context.Context, roleKind, role, scope string) (Policy, error) {
	k := policyID(roleKind, role, scope)
	if p, ok := n.policies[k]; ok {
		return p, nil
	}
	p, err := policyIn(ctx, n.st, roleKind, role, scope)
	if err == nil {
		n.policies[k] = p
	}
	return p, err
}

// address names the event's recipients by the role's notification rules
// and reports whether anyone is left to tell.
func (n *Notifier) address(note *Notification, rule *eventRule, p *Policy, group string, dir *directory.Snapshot) bool {
	r := note.Request
	budget := maxRecipients
	addressed := false
	for _, to := range rule.to {
		nr := p.notificationRule(to, group)
		if nr.Level == LevelNone || nr.Level == LevelCritical && rule.critical != to ||
			!nr.DefaultRecipients && len(nr.Recipients) == 0 {
			continue
		}
		addressed = true
		var ids []string
		if nr.DefaultRecipients {
			switch to {
			case RecipientRequestor:
				ids = []string{r.Principal.ID}
			case RecipientApprover:
				if r.RequestType == SelfActivate {
					ids = p.Approvers
				} else if n.Admins != nil {
					ids = n.Admins(r.RoleKind, r.Scope) // extensions and renewals are answered by administrators
				}
			case RecipientAdmin:
				if n.Admins != nil {
					ids = n.Admins(r.RoleKind, r.Scope)
				}
			}
		}
		people := expand(dir, ids, &budget)
		for _, m := range nr.Recipients {
			if budget > 0 {
				people = append(people, Person{Mail: m})
				budget--
			}
		}
		if people == nil {
			people = []Person{} // the type is addressed, though nobody resolves
		}
		switch to {
		case RecipientRequestor:
			note.Recipients.Requestor = people
		case RecipientApprover:
			note.Recipients.Approvers = people
		case RecipientAdmin:
			note.Recipients.Admins = people
		}
	}
	return addressed
}

// expand turns principal ids into people — a group into its users,
// transitively — each once, at most *budget of them.
func expand(dir *directory.Snapshot, ids []string, budget *int) []Person {
	var out []Person
	seen := map[string]bool{}
	add := func(id string) {
		if *budget <= 0 || seen[strings.ToLower(id)] {
			return
		}
		seen[strings.ToLower(id)] = true
		out = append(out, person(dir, id))
		*budget--
	}
	for _, id := range ids {
		if dir != nil && dir.PrincipalKind(id) == directory.KindGroup {
			for _, m := range dir.TransitiveMembers(id) {
				if dir.PrincipalKind(m) != directory.KindGroup {
					add(m)
				}
			}
			continue
		}
		add(id)
	}
	return out
}

// person is id with its sign-in name and mail, when a user.
func person(dir *directory.Snapshot, id string) Person {
	p := Person{ID: id}
	if dir != nil {
		if u, ok := dir.User(id); ok {
			p.UserPrincipalName, p.Mail = u.UserPrincipalName, u.Mail
		}
	}
	return p
}

func (n *Notifier) directory() *directory.Snapshot {
	if n.Directory == nil {
		return nil
	}
	return n.Directory()
}

// roleName is the display name of a role: a built-in's, a custom RBAC
// role's from the store, else none.
func (n *Notifier) roleName(ctx context.Context, roleKind, id string) string {
	if roleKind == RoleKindDirectory {
		if r, ok := directory.RoleByID(id); ok {
			return r.DisplayName
		}
		return ""
	}
	if r, ok := rbac.LookupRole(id); ok {
		return r.RoleName
	}
	o, err := n.st.Get(ctx, rbac.DefinitionKind, id[strings.LastIndexByte(id, '/')+1:])
	if err != nil {
		return ""
	}
	var def rbac.RoleDefinition
	if json.Unmarshal(o.Body, &def) != nil {
		return ""
	}
	return def.RoleName
}

// eventID names an audit record's event: the same wherever and whenever
// it is computed.
func eventID(ev *store.AuditEvent) string {
	sum := sha256.Sum256([]byte(strconv.FormatInt(ev.Index, 10) + "\x00" + ev.Action + "\x00" + ev.Target + "\x00" +
		ev.Time.UTC().Format(time.RFC3339Nano)))
	return "pim_" + hex.EncodeToString(sum[:12])
}

// summary says what happened in a line, without links (the receiver adds
// its own); dir tells a group from a user.
func summary(note *Notification, dir *directory.Snapshot) string {
	r := note.Request
	who, actor := name(r.Principal), name(note.Actor)
	role := r.RoleName
	if role == "" {
		role = r.RoleDefinitionID
	}
	what := role + " at " + r.Scope
	until := ""
	if r.EndDateTime != nil {
		until = " until " + r.EndDateTime.UTC().Format(time.RFC3339)
	}
	asked := "activate " + what
	held := "eligibility for " // what a request to extend or renew is about
	if r.Target == TargetAssignment {
		held = "active assignment of "
	}
	switch r.RequestType {
	case SelfExtend:
		asked = "extend their " + held + what
	case SelfRenew:
		asked = "renew their " + held + what
	}
	switch note.Type {
	case EventApprovalRequired:
		return who + " asks to " + asked + until + "; approval is needed"
	case EventRoleActivated:
		return who + " activated " + what + until
	case EventRequestApproved:
		return actor + " approved " + who + "'s request to " + asked + until
	case EventRequestDenied:
		return actor + " denied " + who + "'s request to " + asked
	case EventRequestCanceled:
		return actor + " canceled the request to " + asked
	case EventRequestTimedOut:
		return who + "'s request to " + asked + " timed out unanswered"
	case EventRoleDeactivated:
		return who + " deactivated " + what
	case EventRoleExpired:
		return who + "'s activation of " + what + " ended" + strings.Replace(until, " until ", " at ", 1)
	case EventEligibilityCreated:
		return actor + " made " + who + " eligible for " + what + until
	case EventEligibilityRemoved:
		return actor + " removed " + who + "'s eligibility for " + what
	case EventEligibilityExtended:
		return actor + " extended " + who + "'s eligibility for " + what + until
	case EventEligibilityRenewed:
		return actor + " renewed " + who + "'s eligibility for " + what + until
	case EventAssignmentCreated:
		return actor + " assigned " + what + " to " + who + until
	case EventAssignmentRemoved:
		return actor + " removed " + who + "'s active assignment of " + what
	case EventAssignmentExtended:
		return actor + " extended " + who + "'s active assignment of " + what + until
	case EventEligibilityExpiring, EventAssignmentExpiring:
		// A member cannot extend a group's eligibility or assignment: the
		// request is the principal's own (SelfExtend).
		ends := strings.Replace(until, " until ", " ends at ", 1)
		group := dir != nil && dir.PrincipalKind(r.Principal.ID) == directory.KindGroup
		if note.Type == EventEligibilityExpiring {
			next := who + " can ask to extend it (SelfExtend)"
			if group {
				next = "an administrator can extend it (AdminExtend)"
			}
			return who + "'s eligibility for " + what + ends + "; " + next
		}
		next := who + " can ask to extend it (SelfExtend with target assignment)"
		if group {
			next = "an administrator can extend it (AdminExtend with target assignment)"
		}
		return who + "'s active assignment of " + what + ends + "; " + next
	}
	return note.Type + ": " + who + ", " + what
}

func name(p Person) string {
	if p.UserPrincipalName != "" {
		return p.UserPrincipalName
	}
	return p.ID
}
