package pim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/webhook"
)

// errNoSecret: nothing is posted unsigned.
var errNoSecret = errors.New("no signing secret is configured (pim.notifications.webhookSecretFile)")

// deliver posts the event to every URL at once, each with bounded
// attempts. A URL that runs out of them is logged and recorded in the
// audit log (pim.notification, failure), and the event counts as handled:
// one dead receiver does not hold the others up for good. Only a stop
// (ctx ended) leaves the event to be posted again.
func (n *Notifier) deliver(ctx context.Context, ev *store.AuditEvent, note *Notification, body []byte, urls []string) error {
	type result struct {
		attempts int
		err      error
	}
	results := make([]result, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			a, err := n.post(ctx, u, webhookID(note.ID, u), body)
			results[i] = result{a, err}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, u := range urls {
		r := results[i]
		if r.err == nil {
			n.log.Debug("pim: notified", "event", note.ID, "type", note.Type, "endpoint", endpoint(u), "attempts", r.attempts)
			continue
		}
		n.log.Error("pim: notification not delivered", "event", note.ID, "type", note.Type, "endpoint", endpoint(u),
			"attempts", r.attempts, "err", r.err)
		fields := map[string]any{"eventId": note.ID, "type": note.Type, "endpoint": endpoint(u), "attempts": r.attempts,
			"error": r.err.Error(), "auditLeaf": ev.Index}
		switch {
		case note.Request != nil:
			fields["requestId"] = note.Request.ID
		case note.Review != nil:
			fields["instanceId"] = note.Review.InstanceID
		}
		details, _ := json.Marshal(fields)
		if _, err := n.st.AppendAudit(ctx, store.AuditEvent{Time: n.now().UTC(), Actor: AuditActor, Action: NotificationAction,
			Target: ev.Target, Result: "failure", Details: details}); err != nil {
			return fmt.Errorf("pim: record an undelivered notification: %w", err)
		}
	}
	return nil
}

// post delivers body to u, signed, retrying answers that may pass (5xx,
// 408, 429) and failures to connect or to answer in time, with backoff. A
// URL whose last delivery failed gets one attempt until one succeeds.
// It returns the attempts made.
func (n *Notifier) post(ctx context.Context, u, id string, body []byte) (int, error) {
	if n.hook == nil {
		return 0, errNoSecret
	}
	n.mu.Lock()
	tries := n.opts.Attempts
	if n.failing[u] {
		tries = 1
	}
	n.mu.Unlock()
	var last error
	made := 0
	for made < tries {
		if made > 0 {
			t := time.NewTimer(n.backoff(made))
			select {
			case <-ctx.Done():
				t.Stop()
				return made, ctx.Err()
			case <-t.C:
			}
		}
		made++
		retry, err := n.attempt(ctx, u, id, body)
		if err == nil {
			n.setFailing(u, false)
			return made, nil
		}
		last = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	n.setFailing(u, true)
	return made, last
}

func (n *Notifier) setFailing(u string, failing bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if failing {
		n.failing[u] = true
	} else {
		delete(n.failing, u)
	}
}

// attempt posts once, within the timeout, and says whether a failure may
// pass on a retry. Errors never carry the URL: its path or query may hold
// the receiver's token.
func (n *Notifier) attempt(ctx context.Context, u, id string, body []byte) (retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	retry, err = webhook.Send(actx, n.client, n.hook, u, id, n.now(), body, "Verity-PIM")
	if errors.Is(err, webhook.ErrNoAnswer) {
		err = fmt.Errorf("no answer within %s", n.opts.Timeout)
	}
	return retry, err
}

// webhookID is the delivery's webhook-id: one event to one URL, the same
// on every attempt, node and restart, for the receiver to drop repeats.
func webhookID(eventID, u string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + u))
	return "msg_" + hex.EncodeToString(sum[:16])
}

// endpoint names a webhook URL in logs and records: its scheme and host,
// and the start of its digest to tell two on one host apart — never its
// path or query, which may carry the receiver's token.
func endpoint(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	origin := "?"
	if u, err := url.Parse(raw); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	return origin + " (" + hex.EncodeToString(sum[:4]) + ")"
}
