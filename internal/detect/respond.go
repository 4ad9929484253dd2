package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/webhook"
)

// Response actions a playbook can take.
const (
	// ActionRevokeSessions ends every session, refresh token and API token
	// of the alert's user: the next request anywhere signs in again.
	ActionRevokeSessions = "revokeSessions"
	// ActionBlockSignIn disables the alert's user (accountEnabled false).
	ActionBlockSignIn = "blockSignIn"
	// ActionRequirePasswordChange makes the user's next sign-in change the
	// password.
	ActionRequirePasswordChange = "requirePasswordChange"
	// ActionDisableServicePrincipal disables the alert's application's
	// service principal: its tokens and client credentials stop working.
	ActionDisableServicePrincipal = "disableServicePrincipal"
	// ActionConfirmCompromised marks the user's risk confirmedCompromised
	// (high), as an administrator would.
	ActionConfirmCompromised = "confirmCompromised"
	// ActionWebhook posts the alert, signed, to the playbook's webhook.
	ActionWebhook = "webhook"
)

// ResponseActions lists the actions a playbook may name.
var ResponseActions = []string{ActionRevokeSessions, ActionBlockSignIn, ActionRequirePasswordChange,
	ActionDisableServicePrincipal, ActionConfirmCompromised, ActionWebhook}

// Playbook is an automated response: the actions to take on alerts of
// some detectors at or above a severity.
type Playbook struct {
	Name string `json:"name"`
	// Detectors the playbook answers; empty: every detector.
	Detectors []string `json:"detectors,omitempty"`
	// MinSeverity is the least severity answered: low (default), medium
	// or high.
	MinSeverity string   `json:"minSeverity,omitempty"`
	Actions     []string `json:"actions"`
	// WebhookURL receives the alerts (ActionWebhook), signed as Standard
	// Webhooks says with WebhookSecret ("whsec_" and base64).
	WebhookURL    string `json:"webhookURL,omitempty"`
	WebhookSecret string `json:"-"`
	// DryRun records what the playbook would do and does nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

var severities = []string{"low", "medium", "high"}

// Validate checks a playbook; errors name the field.
func (p *Playbook) Validate() error {
	if p.Name == "" {
		return errors.New("name: required")
	}
	if len(p.Actions) == 0 {
		return errors.New("actions: at least one action is required")
	}
	for _, a := range p.Actions {
		if !slices.Contains(ResponseActions, a) {
			return fmt.Errorf("actions: %q is not an action (%v)", a, ResponseActions)
		}
	}
	if p.MinSeverity != "" && !slices.Contains(severities, p.MinSeverity) {
		return fmt.Errorf("minSeverity: must be low, medium or high, not %q", p.MinSeverity)
	}
	if slices.Contains(p.Actions, ActionWebhook) {
		if p.WebhookURL == "" {
			return errors.New("webhookURL: required with the webhook action")
		}
		if _, err := standardwebhooks.NewWebhook(p.WebhookSecret); err != nil || p.WebhookSecret == "" {
			return errors.New("webhookSecret: required with the webhook action: \"whsec_\" and at least 24 random bytes in base64")
		}
	}
	return nil
}

func (p *Playbook) answers(a *Alert) bool {
	if len(p.Detectors) > 0 && !slices.Contains(p.Detectors, a.Detector) {
		return false
	}
	return slices.Index(severities, a.Severity) >= max(0, slices.Index(severities, p.MinSeverity))
}

// Actions carries out the responses that change who can sign in; the
// node wires them to sign-in, the OpenID Connect provider and the
// directory. Each is idempotent: done twice, it changes nothing the
// second time (changed false).
type Actions interface {
	RevokeSessions(ctx context.Context, userID string) (changed bool, err error)
	BlockSignIn(ctx context.Context, userID, reason string) (changed bool, err error)
	RequirePasswordChange(ctx context.Context, userID string) (changed bool, err error)
	DisableServicePrincipal(ctx context.Context, appID, reason string) (changed bool, err error)
}

// Records and audit events of responses.
const (
	// ResponseKind keeps one record per action taken on an alert (id:
	// the digest of alert, playbook and action): an action recorded is
	// never taken again for that alert.
	ResponseKind = "detectResponse"
	// ResponseAuditAction is the audit event of each response action.
	ResponseAuditAction = "detect.response"
	// ResponseActor is the audit actor of automated responses.
	ResponseActor = "verity-detect"
)

// Response is the record of one action of a playbook on an alert.
type Response struct {
	ID       string    `json:"id"`
	AlertID  string    `json:"alertId"`
	Detector string    `json:"detector"`
	Playbook string    `json:"playbook"`
	Action   string    `json:"action"`
	Target   string    `json:"target,omitempty"` // /users/ID, /applications/APPID, the webhook URL
	DryRun   bool      `json:"dryRun,omitempty"`
	Result   string    `json:"result"` // done, unchanged (already so), skipped (nothing to act on), dryRun, failed
	Detail   string    `json:"detail,omitempty"`
	Time     time.Time `json:"time"`
}

// Response results.
const (
	ResultDone      = "done"
	ResultUnchanged = "unchanged"
	ResultSkipped   = "skipped"
	ResultDryRun    = "dryRun"
	ResultFailed    = "failed"
)

// Responder runs the playbooks on alerts: each action once per alert
// (recorded in the store after it is taken: a crash in between takes it
// again, which an idempotent action survives), each audited.
type Responder struct {
	st        store.Store
	act       Actions
	playbooks []Playbook
	log       *slog.Logger
	client    *http.Client
	// DryRun makes every playbook a dry run.
	DryRun bool
	// Now is the clock (tests).
	Now func() time.Time

	hooks sync.WaitGroup
	sem   chan struct{}
}

// NewResponder returns a responder over st running playbooks (validated
// by the caller) with act.
func NewResponder(st store.Store, act Actions, playbooks []Playbook, log *slog.Logger) *Responder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responder{st: st, act: act, playbooks: playbooks, log: log, Now: time.Now,
		client: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:    make(chan struct{}, 8)}
}

// SetHTTPClient replaces the webhook client (custom roots).
func (r *Responder) SetHTTPClient(c *http.Client) { r.client = c }

// Respond runs every playbook that answers a on it. Webhooks are
// delivered in the background (Wait waits for them); the other actions
// before it returns, so that the next decision already sees them.
func (r *Responder) Respond(ctx context.Context, a *StoredAlert) error {
	var errs []error
	for i := range r.playbooks {
		p := &r.playbooks[i]
		if !p.answers(&a.Alert) {
			continue
		}
		for _, action := range p.Actions {
			if err := r.run(ctx, p, action, a); err != nil {
				errs = append(errs, fmt.Errorf("playbook %s: %s: %w", p.Name, action, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Wait waits for webhook deliveries under way.
func (r *Responder) Wait() { r.hooks.Wait() }

func responseID(alertID, playbook, action string) string {
	sum := sha256.Sum256([]byte(alertID + "\x00" + playbook + "\x00" + action))
	return hex.EncodeToString(sum[:12])
}

func (r *Responder) run(ctx context.Context, p *Playbook, action string, a *StoredAlert) error {
	id := responseID(a.ID, p.Name, action)
	switch _, err := r.st.GetRecord(ctx, ResponseKind, id); {
	case err == nil:
		return nil // taken already
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	resp := Response{ID: id, AlertID: a.ID, Detector: a.Detector, Playbook: p.Name, Action: action, DryRun: p.DryRun || r.DryRun}
	if action == ActionWebhook {
		resp.Target = p.WebhookURL
		if resp.DryRun {
			return r.finish(ctx, &resp, ResultDryRun, "would post the alert", nil)
		}
		r.sem <- struct{}{}
		r.hooks.Add(1)
		go func() {
			defer func() { <-r.sem; r.hooks.Done() }()
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err := r.post(hctx, p, id, a)
			result := ResultDone
			if err != nil {
				result = ResultFailed
			}
			if ferr := r.finish(hctx, &resp, result, "", err); ferr != nil {
				r.log.Error("detect: record a webhook delivery", "alert", a.ID, "err", ferr)
			}
		}()
		return nil
	}
	target, do := r.action(action, a)
	resp.Target = target
	if do == nil {
		return r.finish(ctx, &resp, ResultSkipped, "the alert names no "+targetNoun(action), nil)
	}
	if resp.DryRun {
		return r.finish(ctx, &resp, ResultDryRun, "would "+action+" "+target, nil)
	}
	changed, err := do(ctx)
	switch {
	case err != nil:
		return r.finish(ctx, &resp, ResultFailed, "", err)
	case !changed:
		return r.finish(ctx, &resp, ResultUnchanged, "", nil)
	}
	return r.finish(ctx, &resp, ResultDone, "", nil)
}

func targetNoun(action string) string {
	if action == ActionDisableServicePrincipal {
		return "application"
	}
	return "user"
}

// action returns what an action acts on and how; nil when the alert
// names nothing it can act on.
func (r *Responder) action(action string, a *StoredAlert) (string, func(context.Context) (bool, error)) {
	reason := fmt.Sprintf("alert %s (%s)", a.ID, a.Detector)
	user := a.UserID
	if action == ActionDisableServicePrincipal {
		if a.AppID == "" {
			return "", nil
		}
		return "/applications/" + a.AppID, func(ctx context.Context) (bool, error) {
			return r.act.DisableServicePrincipal(ctx, a.AppID, reason)
		}
	}
	if user == "" {
		return "", nil
	}
	target := "/users/" + user
	switch action {
	case ActionRevokeSessions:
		return target, func(ctx context.Context) (bool, error) { return r.act.RevokeSessions(ctx, user) }
	case ActionBlockSignIn:
		return target, func(ctx context.Context) (bool, error) { return r.act.BlockSignIn(ctx, user, reason) }
	case ActionRequirePasswordChange:
		return target, func(ctx context.Context) (bool, error) { return r.act.RequirePasswordChange(ctx, user) }
	case ActionConfirmCompromised:
		return target, func(ctx context.Context) (bool, error) {
			before, err := GetUserRisk(ctx, r.st, user)
			if err != nil {
				return false, err
			}
			if before.State == RiskConfirmedCompromised {
				return false, nil
			}
			_, err = SetUserRiskState(ctx, r.st, user, a.User, RiskConfirmedCompromised)
			return err == nil, err
		}
	}
	return "", nil
}

// finish audits the action's outcome and records it; a failed action is
// audited but not recorded, so that it is tried again when the alert is
// seen again.
func (r *Responder) finish(ctx context.Context, resp *Response, result, detail string, failure error) error {
	resp.Result, resp.Detail, resp.Time = result, detail, r.Now().UTC()
	if failure != nil {
		resp.Detail = failure.Error()
	}
	body, _ := json.Marshal(resp)
	auditResult := "success"
	if failure != nil {
		auditResult = "failure"
	}
	if _, err := r.st.AppendAudit(ctx, store.AuditEvent{Time: resp.Time, Actor: ResponseActor, Action: ResponseAuditAction,
		Target: resp.Target, Result: auditResult, Details: body}); err != nil {
		return errors.Join(failure, err)
	}
	level := slog.LevelWarn
	if failure != nil {
		level = slog.LevelError
	}
	r.log.Log(ctx, level, "detect: response", "alert", resp.AlertID, "playbook", resp.Playbook, "action", resp.Action,
		"target", resp.Target, "result", result, "dryRun", resp.DryRun)
	if failure != nil {
		return failure
	}
	_, err := r.st.CreateRecord(ctx, store.Record{Kind: ResponseKind, ID: resp.ID, Subject: resp.AlertID, Body: body})
	if errors.Is(err, store.ErrConflict) {
		return nil // another node took it at the same time
	}
	return err
}

// WebhookEvent is the body of a webhook delivery.
type WebhookEvent struct {
	Type     string      `json:"type"` // "verity.alert"
	Playbook string      `json:"playbook"`
	Alert    StoredAlert `json:"alert"`
}

// post delivers the alert: a JSON body signed as Standard Webhooks
// (webhook-id: the response id, the same on every retry; webhook-
// timestamp; webhook-signature), up to three attempts.
func (r *Responder) post(ctx context.Context, p *Playbook, id string, a *StoredAlert) error {
	wh, err := standardwebhooks.NewWebhook(p.WebhookSecret)
	if err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	body, err := json.Marshal(WebhookEvent{Type: "verity.alert", Playbook: p.Name, Alert: *a})
	if err != nil {
		return err
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(last, ctx.Err())
			case <-time.After(time.Duration(attempt) * 2 * time.Second):
			}
		}
		retry, err := webhook.Send(ctx, r.client, wh, p.WebhookURL, id, r.Now(), body, "Verity-Detect")
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			return last // the receiver refuses it: retrying will not help
		}
	}
	return last
}

// Responses lists the responses taken on an alert.
func Responses(ctx context.Context, st store.Store, alertID string) ([]Response, error) {
	recs, err := st.ListRecords(ctx, ResponseKind, alertID, 0)
	if err != nil {
		return nil, err
	}
	out := make([]Response, 0, len(recs))
	for _, rec := range recs {
		var r Response
		if err := json.Unmarshal(rec.Body, &r); err != nil {
			return nil, fmt.Errorf("detect: response %s: %w", rec.ID, err)
		}
		out = append(out, r)
	}
	return out, nil
}
