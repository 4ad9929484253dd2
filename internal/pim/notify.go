package pim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// NotificationAction is the audit action of a notification that could not
// be delivered.
const NotificationAction = "pim.notification"

// NotifierOptions tune delivery.
type NotifierOptions struct {
	// Secret signs every delivery as Standard Webhooks says ("whsec_" and
	// base64 of at least 24 bytes). Without one nothing is posted: each
	// delivery is recorded as failed, so that the gap shows.
	Secret string
	// Timeout bounds each attempt (default 10s); Attempts per event and
	// URL (default 3); Backoff is the wait before the second attempt,
	// doubled for each further one (default 1s).
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration
	// Batch bounds the audit records read at a time (default 500).
	Batch int
}

// Records and the lease of the notifier.
const (
	notifyCursorKind = "pimNotifyCursor"
	notifyCursorID   = "auditLog"
	notifyLease      = "pimNotify"
)

// notifyCursor is the first audit leaf the notifier has not handled.
type notifyCursor struct {
	Next uint64 `json:"next"`
}

// Notifier follows the audit log and posts each PIM step to the Notify
// webhooks of the role's settings, signed, with the recipients the
// role's notification rules name — and each access review instance's
// start, reminder, completion and application to the Notify webhooks of
// its definition, with its reviewers or its creator and administrators.
// One notifier of a database posts at a time (the holder of the
// "pimNotify" lease, apart from detection's), from a cursor in the store
// that moves only past handled records: delivery is at least once, and
// the webhook-id, the same on every attempt, node and restart, lets
// receivers drop repeats.
type Notifier struct {
	st     store.Store
	log    *slog.Logger
	lease  *store.Lease
	hook   *standardwebhooks.Webhook
	client *http.Client
	opts   NotifierOptions

	// Directory returns the directory now, to name users by sign-in name
	// and mail and to expand groups; nil: recipients are ids.
	Directory func() *directory.Snapshot
	// Admins lists who manages a role kind's assignments at a scope
	// (roleAssignments/write there; /directory for directory roles):
	// Entra's default Admin recipients. nil: none.
	Admins func(roleKind, scope string) []string
	// Now is the clock of signatures and failure records (time.Now when
	// nil). Receivers compare the signature's time with theirs, so it is
	// the real time, not the PIM service's.
	Now func() time.Time

	started bool
	next    uint64
	// policies are the role settings read in this step.
	policies map[string]Policy
	// failing are endpoints whose last delivery ran out of attempts: they
	// get one attempt per event until one succeeds, so that a dead
	// receiver costs other receivers one timeout per event, not all.
	mu      sync.Mutex
	failing map[string]bool
}

// NewNotifier returns a notifier over st; an error when the secret is not
// a Standard Webhooks secret.
func NewNotifier(st store.Store, opts NotifierOptions, log *slog.Logger) (*Notifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{st: st, log: log, opts: opts, failing: map[string]bool{}}
	if opts.Secret != "" {
		hook, err := webhookSecret(opts.Secret)
		if err != nil {
			return nil, err
		}
		n.hook = hook
	}
	if n.opts.Timeout <= 0 {
		n.opts.Timeout = 10 * time.Second
	}
	if n.opts.Attempts <= 0 {
		n.opts.Attempts = 3
	}
	if n.opts.Backoff <= 0 {
		n.opts.Backoff = time.Second
	}
	if n.opts.Batch <= 0 {
		n.opts.Batch = 500
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = maxNotify
	n.client = &http.Client{Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	// The lease outlives the longest delivery of one event (every
	// attempt timing out), so that it is renewed between events before it
	// lapses.
	n.lease = store.NewLease(st, notifyLease, hex.EncodeToString(id), max(30*time.Second, 2*n.budget()))
	return n, nil
}

// webhookSecret checks a Standard Webhooks secret: "whsec_" and base64 of
// at least 24 bytes.
func webhookSecret(secret string) (*standardwebhooks.Webhook, error) {
	const bad = `must be "whsec_" and at least 24 random bytes in base64`
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New(bad)
	}
	hook, err := standardwebhooks.NewWebhook(secret)
	if err != nil || len(rest)*3/4 < 24 {
		return nil, errors.New(bad) // the library's error would quote the secret
	}
	return hook, nil
}

// maxBackoff bounds the wait between two attempts.
const maxBackoff = 30 * time.Second

// backoff is the wait before attempt made+1: Backoff, doubled for each
// attempt since the second, at most maxBackoff.
func (n *Notifier) backoff(made int) time.Duration {
	if made > 16 {
		return maxBackoff
	}
	return min(n.opts.Backoff<<(made-1), maxBackoff)
}

// budget is the longest one delivery may take.
func (n *Notifier) budget() time.Duration {
	b := time.Duration(n.opts.Attempts) * n.opts.Timeout
	for i := 1; i < n.opts.Attempts; i++ {
		b += n.backoff(i)
	}
	return b
}

func (n *Notifier) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

// saveEvery bounds how long a step runs without saving its cursor: what a
// crash makes it post again.
const saveEvery = 2 * time.Second

// Step handles the next audit records and returns how many. The first
// step of a database starts at the end of the log: what happened before
// notifications existed is not told.
func (n *Notifier) Step(ctx context.Context) (int, error) {
	held, err := n.lease.Hold(ctx)
	if err != nil || !held {
		n.started = false // another node posts; take over from the cursor
		return 0, err
	}
	if !n.started {
		if err := n.load(ctx); err != nil {
			return 0, err
		}
		n.started = true
	}
	head, err := n.st.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	from := max(n.next, head.Pruned)
	if from >= head.Size {
		return 0, nil
	}
	evs, err := n.st.AuditLeaves(ctx, from, min(n.opts.Batch, int(head.Size-from)))
	if err != nil {
		return 0, err
	}
	handled, saved := 0, time.Now()
	n.policies = map[string]Policy{}
	for i := range evs {
		ev := &evs[i]
		if ev.Index != int64(from)+int64(i) {
			break // a gap: verification's to report; handle what is in order
		}
		if i > 0 {
			if held, err := n.lease.Hold(ctx); err != nil || !held {
				n.started = false // the next holder goes on from the saved cursor
				return handled, err
			}
		}
		if err := n.handle(ctx, ev); err != nil {
			// Keep what was handled, even when stopping.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return handled, errors.Join(err, n.save(sctx))
		}
		handled++
		n.next = from + uint64(handled)
		if time.Since(saved) >= saveEvery {
			if err := n.save(ctx); err != nil {
				return handled, err
			}
			saved = time.Now()
		}
	}
	if handled == 0 {
		return 0, fmt.Errorf("pim: notify: no audit record at leaf %d of %d", from, head.Size)
	}
	return handled, n.save(ctx)
}

// load reads the cursor; a database without one starts at the log's end.
func (n *Notifier) load(ctx context.Context) error {
	rec, err := n.st.GetRecord(ctx, notifyCursorKind, notifyCursorID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		head, err := n.st.AuditHead(ctx)
		if err != nil {
			return err
		}
		n.next = head.Size
		return n.save(ctx)
	case err != nil:
		return err
	}
	var c notifyCursor
	if err := json.Unmarshal(rec.Body, &c); err != nil {
		return fmt.Errorf("pim: notify cursor: %w", err)
	}
	n.next = c.Next
	return nil
}

func (n *Notifier) save(ctx context.Context) error {
	body, _ := json.Marshal(notifyCursor{Next: n.next})
	if _, err := n.st.PutRecord(ctx, store.Record{Kind: notifyCursorKind, ID: notifyCursorID, Body: body}); err != nil {
		return fmt.Errorf("pim: save the notify cursor: %w", err)
	}
	return nil
}

// Close gives up the lease, for another node's notifier to go on at once.
func (n *Notifier) Close(ctx context.Context) error {
	n.started = false
	return n.lease.Release(ctx)
}

// Run steps until ctx ends — at once when the store changes (every PIM
// step writes to it), else every poll — then gives up the lease.
func (n *Notifier) Run(ctx context.Context, poll time.Duration) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = n.Close(cctx)
	}()
	changed := n.st.Watch(ctx)
	for {
		c, err := n.Step(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Error("pim: notify", "err", err)
		}
		if c > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(poll):
		}
	}
}

// handle notifies the event an audit record is, if it is one and its
// role has webhooks. An error leaves the record to be handled again.
func (n *Notifier) handle(ctx context.Context, ev *store.AuditEvent) error {
	if !notifiable(ev.Action) || ev.Result != "success" {
		return nil
	}
	note, urls, err := n.notification(ctx, ev)
	if err != nil || note == nil {
		return err
	}
	body, err := json.Marshal(note)
	if err != nil {
		return err
	}
	return n.deliver(ctx, ev, note, body, urls)
}
