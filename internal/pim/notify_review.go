package pim

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// Event types of access review notifications: what Entra ID Governance
// mails reviewers and a review's creator, posted to the definition's
// Notify webhooks.
const (
	EventReviewStarted   = "accessReview.instance.started"
	EventReviewReminder  = "accessReview.instance.reminder"
	EventReviewCompleted = "accessReview.instance.completed"
	EventReviewApplied   = "accessReview.instance.applied"
)

// reviewEventType is the event an access review audit record of action
// may be ("" for none). A stop is an event only when it completed an
// instance in progress (its record's status says so).
func reviewEventType(action string) string {
	switch action {
	case "accessReview.start":
		return EventReviewStarted
	case "accessReview.remind":
		return EventReviewReminder
	case "accessReview.complete", "accessReview.stop":
		return EventReviewCompleted
	case "accessReview.apply":
		return EventReviewApplied
	}
	return ""
}

// NotifiedReview is the access review instance an event is about.
type NotifiedReview struct {
	DefinitionID            string    `json:"definitionId"`
	DisplayName             string    `json:"displayName"`
	DescriptionForReviewers string    `json:"descriptionForReviewers,omitempty"`
	InstanceID              string    `json:"instanceId"`
	Status                  string    `json:"status"`
	RoleKind                string    `json:"roleKind"`
	ResourceScope           string    `json:"resourceScope"`
	StartDateTime           time.Time `json:"startDateTime"`
	EndDateTime             time.Time `json:"endDateTime"`
	CreatedBy               Person    `json:"createdBy"`
	// Summary counts the items: all of them and those not reviewed when
	// the event is told (started, reminder); by decision and apply result
	// as the record says (completed, applied).
	Summary ReviewStats `json:"summary"`
}

// Reviewer is a reviewer an access review event names, with how many
// items they decide — in a reminder, how many of those are still not
// reviewed.
type Reviewer struct {
	Person
	Items int `json:"items"`
}

// reviewDetails are the fields of access review audit records a
// notification uses.
type reviewDetails struct {
	DefinitionID string       `json:"definitionId"`
	Status       string       `json:"status"`
	Summary      *ReviewStats `json:"summary"`
	EndDateTime  *time.Time   `json:"endDateTime"`
}

// reviewNotification builds the event of an access review instance's
// audit record: nil when it is no event, its definition (or instance) is
// gone, has no webhooks or does not enable this kind of notification, or
// nobody is left to tell. The definition, the instance and its items are
// read when the record is handled: one handled late tells the counts as
// they are then.
func (n *Notifier) reviewNotification(ctx context.Context, ev *store.AuditEvent) (*Notification, []string, error) {
	typ := reviewEventType(ev.Action)
	instanceID, ok := strings.CutPrefix(ev.Target, "/accessReviews/instances/")
	if typ == "" || !ok {
		return nil, nil, nil
	}
	var rd reviewDetails
	if err := json.Unmarshal(ev.Details, &rd); err != nil || rd.DefinitionID == "" {
		n.log.Warn("pim: notify: an audit record it cannot read", "leaf", ev.Index, "action", ev.Action)
		return nil, nil, nil
	}
	if typ == EventReviewCompleted && rd.Status != ReviewCompleted {
		return nil, nil, nil // stopped before it started: nobody was asked anything
	}
	d, _, err := getDefinition(ctx, n.st, rd.DefinitionID)
	if err != nil || len(d.Notify) == 0 {
		return nil, nil, ignoreGone(err)
	}
	if typ == EventReviewReminder && !d.Settings.ReminderNotificationsEnabled ||
		typ != EventReviewReminder && !d.Settings.MailNotificationsEnabled {
		return nil, nil, nil
	}
	inst, _, err := getInstance(ctx, n.st, instanceID)
	if err != nil {
		return nil, nil, ignoreGone(err)
	}
	dir := n.directory()
	r := &NotifiedReview{DefinitionID: d.ID, DisplayName: d.DisplayName, DescriptionForReviewers: d.DescriptionForReviewers,
		InstanceID: inst.ID, Status: rd.Status, RoleKind: d.Scope.RoleKind, ResourceScope: d.Scope.ResourceScope,
		StartDateTime: inst.StartDateTime.UTC(), EndDateTime: inst.EndDateTime.UTC(), CreatedBy: person(dir, d.CreatedBy.ID)}
	if rd.EndDateTime != nil {
		r.EndDateTime = rd.EndDateTime.UTC() // a stop moved it
	}
	note := &Notification{ID: eventID(ev), Type: typ, Time: ev.Time.UTC(), Actor: person(dir, ev.Actor), AuditLeaf: ev.Index, Review: r}
	budget := maxRecipients
	switch typ {
	case EventReviewStarted, EventReviewReminder:
		reviewers, stats, err := n.reviewers(ctx, dir, d, inst.ID, typ == EventReviewReminder, &budget)
		if err != nil || len(reviewers) == 0 {
			return nil, nil, err
		}
		note.Recipients.Reviewers, r.Summary = reviewers, stats
	default:
		switch {
		case rd.Summary != nil:
			r.Summary = *rd.Summary
		case inst.Summary != nil:
			r.Summary = *inst.Summary
		}
		if d.CreatedBy.ID != "" {
			note.Recipients.Creator = expand(dir, []string{d.CreatedBy.ID}, &budget)
		}
		if n.Admins != nil {
			note.Recipients.Admins = expand(dir, n.Admins(d.Scope.RoleKind, d.Scope.ResourceScope), &budget)
		}
		if len(note.Recipients.Creator) == 0 && len(note.Recipients.Admins) == 0 {
			return nil, nil, nil
		}
	}
	note.Summary = reviewSummary(note, ev.Action)
	return note, d.Notify, nil
}

// reviewers are the people who decide the instance's items, each with how
// many — only those still NotReviewed when open — by the rule decisions
// are checked with (decides): the listed reviewers (groups' members,
// transitively), or in a self-review each user under review and the
// fallback reviewers. Whoever has nothing to decide is left out; at most
// *budget are named. stats counts the items and those not reviewed.
func (n *Notifier) reviewers(ctx context.Context, dir *directory.Snapshot, d *ReviewDefinition, instanceID string, open bool, budget *int) ([]Reviewer, ReviewStats, error) {
	// decides looks at an item's principal alone, and at a principal that
	// is neither the reviewer nor a group of theirs only for whether it is
	// a user under self-review. So the items are counted by principal and
	// by that class, each reviewer is asked once per class — with a
	// principal that is nobody — and then about their own principals,
	// whose answer may differ: a few questions per reviewer, however many
	// items.
	type held struct {
		item  ReviewItem
		class int
		count int
	}
	classOf := func(p Identity) int {
		if d.SelfReview && p.Type == PrincipalUser {
			return 0
		}
		return 1
	}
	classes := [2]held{{item: ReviewItem{Principal: Identity{Type: PrincipalUser}}}, {item: ReviewItem{Principal: Identity{Type: PrincipalUnknown}}}}
	var users []string // in a self-review, each user under review, in item order
	byID := map[string][]*held{}
	var stats ReviewStats
	err := eachItem(ctx, n.st, instanceID, "", func(it *ReviewItem, _ int64) (bool, error) {
		stats.Items++
		if it.Decision == DecisionNotReviewed {
			stats.NotReviewed++
		} else if open {
			return true, nil
		}
		var h *held
		for _, c := range byID[it.Principal.ID] {
			if c.item.Principal.Type == it.Principal.Type {
				h = c
			}
		}
		if h == nil {
			h = &held{item: *it, class: classOf(it.Principal)}
			byID[it.Principal.ID] = append(byID[it.Principal.ID], h)
			if h.class == 0 {
				users = append(users, it.Principal.ID)
			}
		}
		h.count++
		classes[h.class].count++
		return true, nil
	})
	if err != nil {
		return nil, stats, err
	}
	listed := d.Reviewers
	if d.SelfReview {
		listed = d.FallbackReviewers
	}
	unbounded := math.MaxInt
	var out []Reviewer
	for _, p := range expand(dir, append(users, listed...), &unbounded) {
		if *budget <= 0 {
			break
		}
		var groups []string
		if dir != nil {
			groups = dir.TransitiveMemberOf(p.ID)
		}
		may := func(it *ReviewItem) bool { return decides(p.ID, groups, d, it) == nil }
		count := 0
		for i := range classes {
			if classes[i].count > 0 && may(&classes[i].item) {
				count += classes[i].count
			}
		}
		seen := map[*held]bool{}
		for _, id := range append([]string{p.ID}, groups...) {
			for _, h := range byID[id] {
				if seen[h] {
					continue
				}
				seen[h] = true
				switch own, anyone := may(&h.item), may(&classes[h.class].item); {
				case own && !anyone:
					count += h.count
				case !own && anyone:
					count -= h.count
				}
			}
		}
		if count > 0 {
			out = append(out, Reviewer{Person: p, Items: count})
			*budget--
		}
	}
	return out, stats, nil
}

// reviewSummary says what happened to the review in a line, without
// links.
func reviewSummary(note *Notification, action string) string {
	r := note.Review
	what := fmt.Sprintf("Access review %q of %s", r.DisplayName, r.ResourceScope)
	end := r.EndDateTime.Format(time.RFC3339)
	s := r.Summary
	switch note.Type {
	case EventReviewStarted:
		return fmt.Sprintf("%s started: %d items to review by %s", what, s.Items, end)
	case EventReviewReminder:
		return fmt.Sprintf("%s ends at %s: %d of its %d items are not reviewed yet", what, end, s.NotReviewed, s.Items)
	case EventReviewCompleted:
		how := "completed"
		if action == "accessReview.stop" {
			how = "was stopped by " + name(note.Actor)
		}
		return fmt.Sprintf("%s %s: %d approved, %d denied, %d don't know, %d not reviewed", what, how, s.Approved, s.Denied, s.DontKnow, s.NotReviewed)
	case EventReviewApplied:
		return fmt.Sprintf("%s: its decisions were applied by %s: %d removed, %d failed", what, name(note.Actor), s.Applied, s.Failed)
	}
	return note.Type + ": " + what
}
