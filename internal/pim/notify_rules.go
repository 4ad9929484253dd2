package pim

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Recipient types of Graph's notification rules: the requestor (for an
// administrator's assignment, the assignee), the approvers, and the
// administrators of the role.
const (
	RecipientRequestor = "Requestor"
	RecipientApprover  = "Approver"
	RecipientAdmin     = "Admin"
)

// Rule groups — the end of a notification rule's id: what happened, done
// by whom. An administrator's eligibilities (and principals' requests to
// extend or renew theirs), an administrator's active assignments (and
// principals' requests to extend theirs), and principals' activations.
const (
	GroupAdminEligibility  = "Admin_Eligibility"
	GroupAdminAssignment   = "Admin_Assignment"
	GroupEndUserAssignment = "EndUser_Assignment"
)

// Notification levels (Graph's notificationLevel): every event, only
// those that ask the recipient to act (an approval), or none.
const (
	LevelAll      = "All"
	LevelCritical = "Critical"
	LevelNone     = "None"
)

var (
	recipientTypes = []string{RecipientAdmin, RecipientRequestor, RecipientApprover}
	ruleGroups     = []string{GroupAdminEligibility, GroupAdminAssignment, GroupEndUserAssignment}
)

// maxNotify bounds a role's webhook URLs, and maxRuleRecipients the
// extra recipients of one rule.
const (
	maxNotify         = 10
	maxRuleRecipients = 100
)

// NotificationRule is one of Graph's
// unifiedRoleManagementPolicyNotificationRule: for one recipient type and
// one rule group (ID "Notification_Approver_EndUser_Assignment"), which
// events are sent and whom they name. Graph sends e-mail; Verity posts
// each event to the role's Notify webhooks with the recipients by type,
// for the receiver to tell them. A rule that is not listed has Entra's
// default: every event, to the default recipients.
type NotificationRule struct {
	ID string `json:"id"`
	// Level: All, Critical (only what asks for action: an approval
	// request to approvers) or None.
	Level string `json:"notificationLevel"`
	// DefaultRecipients names the recipient type's own people: the
	// requestor or assignee, the role's approvers, the administrators of
	// the role at the scope.
	DefaultRecipients bool `json:"isDefaultRecipientsEnabled"`
	// Recipients are further e-mail addresses named with them.
	Recipients []string `json:"notificationRecipients,omitempty"`
}

// NotificationRuleID is the id of the rule for a recipient type in a rule
// group.
func NotificationRuleID(recipient, group string) string {
	return "Notification_" + recipient + "_" + group
}

// parseRuleID splits a notification rule id into its recipient type and
// rule group.
func parseRuleID(id string) (recipient, group string, ok bool) {
	rest, ok := strings.CutPrefix(id, "Notification_")
	if !ok {
		return "", "", false
	}
	recipient, group, ok = strings.Cut(rest, "_")
	return recipient, group, ok && slices.Contains(recipientTypes, recipient) && slices.Contains(ruleGroups, group)
}

// notificationRule is the rule for a recipient type in a rule group: the
// one listed, else the default.
func (p *Policy) notificationRule(recipient, group string) NotificationRule {
	id := NotificationRuleID(recipient, group)
	for _, r := range p.Notifications {
		if r.ID == id {
			return r
		}
	}
	return NotificationRule{ID: id, Level: LevelAll, DefaultRecipients: true}
}

// webhookError is a webhook URL list at fault: Field is the JSON path
// ("notify", "notify[2]"), Message what is wrong. It never quotes the URL,
// whose path or query may carry the receiver's token.
type webhookError struct{ Field, Message string }

func (e *webhookError) Error() string { return e.Field + ": " + e.Message }

// checkWebhooks checks the webhook URLs of a notify list — a role's
// settings or an access review's — with the same limits: at most
// maxNotify, each an http(s) URL with a host and no fragment, none twice.
func checkWebhooks(notify []string) *webhookError {
	if len(notify) > maxNotify {
		return &webhookError{"notify", fmt.Sprintf("at most %d webhook URLs", maxNotify)}
	}
	for i, s := range notify {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
			return &webhookError{fmt.Sprintf("notify[%d]", i), "must be an http(s) URL with a host"}
		}
		if slices.Contains(notify[:i], s) {
			return &webhookError{fmt.Sprintf("notify[%d]", i), "listed twice"}
		}
	}
	return nil
}

// validateNotify checks the webhook URLs and the notification rules.
func validateNotify(notify []string, rules []NotificationRule) error {
	if err := checkWebhooks(notify); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, r := range rules {
		at := fmt.Sprintf("notificationRules[%d]", i)
		if _, _, ok := parseRuleID(r.ID); !ok {
			return fmt.Errorf("%s.id: %q is not a notification rule (Notification_{Admin|Requestor|Approver}_{Admin_Eligibility|Admin_Assignment|EndUser_Assignment})", at, r.ID)
		}
		if seen[r.ID] {
			return fmt.Errorf("%s.id: %s is listed twice", at, r.ID)
		}
		seen[r.ID] = true
		switch r.Level {
		case LevelAll, LevelCritical, LevelNone:
		default:
			return fmt.Errorf("%s.notificationLevel: must be All, Critical or None, not %q", at, r.Level)
		}
		if len(r.Recipients) > maxRuleRecipients {
			return fmt.Errorf("%s.notificationRecipients: at most %d", at, maxRuleRecipients)
		}
		for j, m := range r.Recipients {
			if !plausibleMail(m) {
				return fmt.Errorf("%s.notificationRecipients[%d]: %q is not an e-mail address", at, j, m)
			}
		}
	}
	return nil
}

// plausibleMail accepts local@domain without spaces or angle brackets:
// the receiver sends the mail, Verity only keeps the text sane.
func plausibleMail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && len(s) <= 254 &&
		!strings.ContainsAny(s, " \t\r\n<>,;\"")
}

// notificationRule reads a Graph notification rule.
func (r *graphRule) notificationRule() (NotificationRule, error) {
	recipient, _, ok := parseRuleID(r.ID)
	switch {
	case !ok:
		return NotificationRule{}, errors.New("not a rule Verity knows")
	case r.NotificationType != "" && r.NotificationType != "Email":
		return NotificationRule{}, fmt.Errorf("notificationType: %q is not Email", r.NotificationType)
	case r.RecipientType != "" && r.RecipientType != recipient:
		return NotificationRule{}, fmt.Errorf("recipientType: %q, but the rule is for %s", r.RecipientType, recipient)
	}
	n := NotificationRule{ID: r.ID, Level: r.NotificationLevel, DefaultRecipients: true, Recipients: r.NotificationRecipients}
	if n.Level == "" {
		n.Level = LevelAll
	}
	if r.IsDefaultRecipientsEnabled != nil {
		n.DefaultRecipients = *r.IsDefaultRecipientsEnabled
	}
	return n, nil
}

// audited is the policy as its audit record shows it: webhook URLs by
// scheme, host and digest, since their path or query may carry the
// receiver's token.
func (p Policy) audited() Policy {
	p.Notify = auditedWebhooks(p.Notify)
	return p
}

// auditedWebhooks names webhook URLs as audit records and logs show them:
// scheme, host and the start of their digest (endpoint).
func auditedWebhooks(urls []string) []string {
	if len(urls) == 0 {
		return urls
	}
	names := make([]string, len(urls))
	for i, u := range urls {
		names[i] = endpoint(u)
	}
	return names
}
