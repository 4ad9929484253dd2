package detect

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// SignInAction is the audit action of Verity's sign-in log records (the
// signin package writes them; their details are Graph signIn objects).
const SignInAction = "signIn"

// Records the engine keeps in the store.
const (
	cursorKind = "detectCursor"
	cursorID   = "signIns"
	// AlertKind holds raised alerts, one record each, by their key's hash:
	// an alert raised twice (a replay, another node) is stored once.
	AlertKind = "alert"
)

// cursor is where the engine is in the audit log: Next is the first leaf
// it has not read; ReplayFrom the first leaf still inside the detectors'
// longest window when Next was saved — a restart reads again from there,
// rebuilding the detectors' state, so nothing is missed; alerts are keyed,
// so nothing is raised twice.
type cursor struct {
	Next       uint64 `json:"next"`
	ReplayFrom uint64 `json:"replayFrom"`
}

// Engine runs detectors over Verity's audit log, in leaf order — the
// sign-in detectors over its sign-in records, the audit detectors over
// the records of directory changes — and stores the alerts they raise.
type Engine struct {
	st           store.Store
	newDetectors func() []Detector
	detectors    []Detector
	audit        []AuditDetector
	// NewAuditDetectors makes the audit detectors (DefaultAuditDetectors
	// unless set) whenever the engine starts reading.
	NewAuditDetectors func() []AuditDetector
	// Privileged, when set, tells the audit detectors whether a user holds
	// a privileged role now (from the live directory).
	Privileged func(userID string) bool
	log        *slog.Logger
	lease      *store.Lease
	// Lookback is the detectors' longest window: what a restart reads
	// again. Batch bounds the events read at a time.
	Lookback time.Duration
	Batch    int
	// Responder, when set, runs the playbooks on every alert.
	Responder *Responder

	started bool
	cur     cursor
	// marks are the first leaf of each minute read within Lookback, for
	// ReplayFrom.
	marks []mark
}

type mark struct {
	minute time.Time
	leaf   uint64
}

// NewEngine returns an engine running the detectors newDetectors makes
// (afresh whenever the engine starts reading) over st's audit log. One
// engine of a database reads at a time: the holder of the "detect" lease.
func NewEngine(st store.Store, newDetectors func() []Detector, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Engine{st: st, newDetectors: newDetectors, NewAuditDetectors: DefaultAuditDetectors, log: log,
		lease: store.NewLease(st, "detect", hex.EncodeToString(id), leaseTTL), Lookback: 14 * 24 * time.Hour, Batch: 1000}
}

// leaseTTL: another node's engine takes over this long after this one
// stops.
const leaseTTL = 15 * time.Second

// Step reads the next events of the log (first, after a start, those of
// the lookback again) and returns how many it read.
func (e *Engine) Step(ctx context.Context) (int, error) {
	held, err := e.lease.Hold(ctx)
	if err != nil || !held {
		// Another node's engine reads; when this one takes over, it starts
		// again from the cursor with fresh detectors.
		e.started = false
		return 0, err
	}
	if !e.started {
		e.detectors, e.audit, e.marks, e.cur = e.newDetectors(), nil, nil, cursor{}
		if e.NewAuditDetectors != nil {
			e.audit = e.NewAuditDetectors()
		}
		for _, d := range e.audit {
			if p, ok := d.(*AuthMethodsChangedPrivileged); ok && e.Privileged != nil {
				p.Privileged = e.Privileged
			}
		}
		rec, err := e.st.GetRecord(ctx, cursorKind, cursorID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return 0, err
		default:
			if err := json.Unmarshal(rec.Body, &e.cur); err != nil {
				return 0, fmt.Errorf("detect: cursor: %w", err)
			}
		}
		// Read the lookback again: the detectors' state is rebuilt, the
		// alerts it raises again are known already.
		e.cur.Next, e.started = e.cur.ReplayFrom, true
	}
	head, err := e.st.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	from := max(e.cur.Next, head.Pruned)
	if from >= head.Size {
		return 0, nil
	}
	evs, err := e.st.AuditLeaves(ctx, from, min(e.Batch, int(head.Size-from)))
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range evs {
		ev := &evs[i]
		if ev.Index != int64(from)+int64(i) {
			break // a gap: verification's to report; read what is in order
		}
		if ev.Action == SignInAction {
			if err := e.observe(ctx, ev); err != nil {
				return n, err
			}
		}
		if len(e.audit) > 0 {
			if err := e.observeAudit(ctx, ev); err != nil {
				return n, err
			}
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("detect: no event at leaf %d of %d", from, head.Size)
	}
	e.cur.Next = from + uint64(n)
	if err := e.save(ctx); err != nil {
		return n, err
	}
	return n, nil
}

func (e *Engine) observe(ctx context.Context, ev *store.AuditEvent) error {
	s, err := signInFromVerity(ev.Details)
	if err != nil {
		e.log.Warn("detect: a sign-in record it cannot read", "leaf", ev.Index, "err", err)
		return nil
	}
	e.mark(s.Time, uint64(ev.Index))
	var failed error
	for _, d := range e.detectors {
		d.Observe(&s, func(a Alert) {
			if err := e.store(ctx, a); err != nil && failed == nil {
				failed = err
			}
		})
	}
	return failed
}

// observeAudit runs the audit detectors over an event they can read (a
// directory change; a sign-in in which the user registered a method).
func (e *Engine) observeAudit(ctx context.Context, ev *store.AuditEvent) error {
	r, ok := AuditRecordFromVerity(ev)
	if !ok {
		return nil
	}
	if ev.Action != SignInAction {
		e.mark(r.Time, uint64(ev.Index))
	}
	var failed error
	for _, d := range e.audit {
		d.ObserveAudit(&r, func(a Alert) {
			if err := e.store(ctx, a); err != nil && failed == nil {
				failed = err
			}
		})
	}
	return failed
}

// mark notes the first leaf of each minute and drops marks older than the
// lookback before at.
func (e *Engine) mark(at time.Time, leaf uint64) {
	m := at.Truncate(time.Minute)
	if len(e.marks) == 0 || m.After(e.marks[len(e.marks)-1].minute) {
		e.marks = append(e.marks, mark{m, leaf})
	}
	cut := 0
	for cut < len(e.marks)-1 && at.Sub(e.marks[cut+1].minute) > e.Lookback {
		cut++
	}
	e.marks = e.marks[cut:]
}

func (e *Engine) save(ctx context.Context) error {
	e.cur.ReplayFrom = e.cur.Next
	if len(e.marks) > 0 {
		e.cur.ReplayFrom = e.marks[0].leaf
	}
	body, _ := json.Marshal(e.cur)
	_, err := e.st.PutRecord(ctx, store.Record{Kind: cursorKind, ID: cursorID, Body: body})
	return err
}

// StoredAlert is an alert as the store keeps it.
type StoredAlert struct {
	Alert
	ID     string    `json:"id"`
	Raised time.Time `json:"raised"`
	// Status is new, acknowledged or closed; UpdatedBy, Comment and
	// Updated say who moved it last.
	Status    string    `json:"status"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// store keeps a once; a known key is no error.
func (e *Engine) store(ctx context.Context, a Alert) error {
	sum := sha256.Sum256([]byte(a.Key))
	id := hex.EncodeToString(sum[:12])
	body, err := json.Marshal(StoredAlert{Alert: a, ID: id, Raised: time.Now().UTC(), Status: StatusNew})
	if err != nil {
		return err
	}
	_, err = e.st.CreateRecord(ctx, store.Record{Kind: AlertKind, ID: id, Subject: a.Detector, Body: body})
	switch {
	case errors.Is(err, store.ErrConflict):
		// Raised before (a replay): only the responses not yet taken are.
	case err != nil:
		return err
	default:
		e.log.Warn("detect: alert", "detector", a.Detector, "id", id, "user", a.User, "ip", a.IP.String(), "summary", a.Summary)
		if level := userRiskOf(a); level != "" && a.UserID != "" {
			// The user's risk, for the next decision about them.
			if err := RaiseUserRisk(ctx, e.st, a.UserID, a.User, level, id); err != nil {
				return err
			}
			e.log.Warn("detect: user at risk", "user", a.User, "level", level, "alert", id)
		}
	}
	if e.Responder != nil {
		stored, _, err := GetAlert(ctx, e.st, id)
		if err != nil {
			return err
		}
		// A failed action is audited and tried again when the alert is
		// seen again; it does not hold detection up.
		if err := e.Responder.Respond(ctx, &stored); err != nil {
			e.log.Error("detect: response", "alert", id, "err", err)
		}
	}
	return nil
}

// Close gives up the engine's lease, for another node's engine to go on
// at once.
func (e *Engine) Close(ctx context.Context) error {
	e.started = false
	return e.lease.Release(ctx)
}

// Run steps until ctx ends, polling every poll once caught up, then
// gives up the lease.
func (e *Engine) Run(ctx context.Context, poll time.Duration) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = e.Close(cctx)
	}()
	for {
		n, err := e.Step(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("detect: step", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

// Alerts lists the stored alerts of a detector, oldest first.
func Alerts(ctx context.Context, st store.Store, detector string, limit int) ([]StoredAlert, error) {
	recs, err := st.ListRecords(ctx, AlertKind, detector, limit)
	if err != nil {
		return nil, err
	}
	out := make([]StoredAlert, 0, len(recs))
	for _, r := range recs {
		var a StoredAlert
		if err := json.Unmarshal(r.Body, &a); err != nil {
			return nil, fmt.Errorf("detect: alert %s: %w", r.ID, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Alert states.
const (
	StatusNew          = "new"
	StatusAcknowledged = "acknowledged"
	StatusClosed       = "closed"
)

// DetectorNames are the names of the default detectors — sign-in, then
// audit — the subjects alerts are listed by.
func DetectorNames() []string {
	var out []string
	for _, d := range DefaultDetectors() {
		out = append(out, d.Name())
	}
	for _, d := range DefaultAuditDetectors() {
		out = append(out, d.Name())
	}
	return out
}

// GetAlert returns the stored alert id; store.ErrNotFound when none.
func GetAlert(ctx context.Context, st store.Store, id string) (StoredAlert, store.Record, error) {
	var a StoredAlert
	rec, err := st.GetRecord(ctx, AlertKind, id)
	if err != nil {
		return a, rec, err
	}
	if err := json.Unmarshal(rec.Body, &a); err != nil {
		return a, rec, fmt.Errorf("detect: alert %s: %w", id, err)
	}
	if a.Status == "" {
		a.Status = StatusNew
	}
	return a, rec, nil
}

// SetAlertStatus moves an alert to status (acknowledged or closed) with
// who did it and a comment; closing is final.
func SetAlertStatus(ctx context.Context, st store.Store, id, status, by, comment string) (StoredAlert, error) {
	a, rec, err := GetAlert(ctx, st, id)
	if err != nil {
		return a, err
	}
	if a.Status == StatusClosed && status != StatusClosed {
		return a, fmt.Errorf("detect: alert %s is closed: %w", id, store.ErrConflict)
	}
	a.Status, a.UpdatedBy, a.Comment, a.Updated = status, by, comment, time.Now().UTC()
	if rec.Body, err = json.Marshal(a); err != nil {
		return a, err
	}
	if _, err := st.UpdateRecord(ctx, rec); err != nil {
		return a, err
	}
	return a, nil
}
