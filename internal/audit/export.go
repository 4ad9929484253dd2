package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// A Sink delivers audit events elsewhere — a file, a syslog server, an
// OpenTelemetry collector — in leaf order.
type Sink interface {
	// Name identifies the sink (its cursor and lease in the store).
	Name() string
	// Send delivers evs, in order; it returns how many of them, from the
	// first, were delivered, and an error when not all were.
	Send(ctx context.Context, evs []store.AuditEvent) (int, error)
	Close() error
}

// A LocalSink keeps its own cursor (a file knows the last event it holds)
// and belongs to the node that writes it: every node with one exports the
// whole log there, without a lease.
type LocalSink interface {
	Sink
	// Next returns the leaf index of the first event the sink does not
	// hold yet.
	Next(ctx context.Context) (uint64, error)
}

// Exporter runs sinks: each reads the log from its cursor on, in leaf
// order, and moves the cursor only past what its sink delivered, so an
// outage or a restart resumes where it stopped. A shared sink (syslog,
// OTLP) is exported by one node at a time, the holder of its lease in the
// store.
type Exporter struct {
	st    store.Store
	sinks []Sink
	log   *slog.Logger
	node  string
	// leases of the shared sinks, by name, made with the exporter: each
	// sink's goroutine holds its own.
	leases map[string]*store.Lease
	// Poll is how often a caught-up sink looks for new events; Backoff
	// bounds the wait after a failure (it doubles from Poll).
	Poll, Backoff time.Duration
	// Batch bounds the events one Send takes.
	Batch int
}

// NewExporter returns an exporter of sinks for the log in st.
func NewExporter(st store.Store, sinks []Sink, log *slog.Logger) *Exporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	x := &Exporter{st: st, sinks: sinks, log: log, node: fmt.Sprintf("%016x", rand.Uint64()), leases: map[string]*store.Lease{},
		Poll: time.Second, Backoff: 30 * time.Second, Batch: 500}
	for _, s := range sinks {
		if _, local := s.(LocalSink); !local {
			x.leases[s.Name()] = store.NewLease(st, "auditSink/"+s.Name(), x.node, leaseTTL)
		}
	}
	return x
}

// Run exports until ctx ends, then closes the sinks.
func (x *Exporter) Run(ctx context.Context) {
	done := make(chan struct{}, len(x.sinks))
	for _, s := range x.sinks {
		go func() {
			defer func() { done <- struct{}{} }()
			x.run(ctx, s)
			if err := s.Close(); err != nil {
				x.log.Warn("audit export: close sink", "sink", s.Name(), "err", err)
			}
		}()
	}
	for range x.sinks {
		<-done
	}
}

// Records in the store: a shared sink's cursor and lease.
const (
	cursorKind = "auditSinkCursor"
	leaseTTL   = 15 * time.Second
)

type cursorBody struct {
	Next uint64 `json:"next"`
}

func (x *Exporter) run(ctx context.Context, s Sink) {
	log := x.log.With("sink", s.Name())
	wait := x.Poll
	failing := false
	for {
		n, err := x.step(ctx, s)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				log.Warn("audit export: the sink failed; retrying", "err", err)
			}
			failing = true
			wait = min(max(wait*2, x.Poll), x.Backoff)
		case n > 0:
			if failing {
				log.Info("audit export: the sink is back")
			}
			failing, wait = false, 0 // more may be waiting
		default:
			wait = x.Poll
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// step delivers the next batch: how many events were delivered.
func (x *Exporter) step(ctx context.Context, s Sink) (int, error) {
	local, isLocal := s.(LocalSink)
	var next uint64
	var cursor store.Record
	if isLocal {
		n, err := local.Next(ctx)
		if err != nil {
			return 0, err
		}
		next = n
	} else {
		held, err := x.lease(ctx, s.Name())
		if err != nil || !held {
			return 0, err
		}
		cursor, next, err = x.readCursor(ctx, s.Name())
		if err != nil {
			return 0, err
		}
	}
	head, err := x.st.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	if next >= head.Size {
		return 0, nil
	}
	evs, err := x.st.AuditLeaves(ctx, next, min(x.Batch, int(head.Size-next)))
	if err != nil {
		return 0, err
	}
	// Only the tree's leaves, in order and without gaps: anything else is
	// for verification to report, not for a sink to carry.
	for i := range evs {
		if evs[i].Index != int64(next)+int64(i) {
			evs = evs[:i]
			break
		}
	}
	if len(evs) == 0 {
		return 0, fmt.Errorf("audit export: no event at leaf %d of %d (run verity audit verify)", next, head.Size)
	}
	sent, sendErr := s.Send(ctx, evs)
	if sent > 0 && !isLocal {
		if err := x.writeCursor(ctx, s.Name(), cursor, next+uint64(sent)); err != nil {
			return sent, err
		}
	}
	return sent, sendErr
}

// lease takes or renews the sink's lease for this node; false when
// another node holds it.
func (x *Exporter) lease(ctx context.Context, name string) (bool, error) {
	return x.leases[name].Hold(ctx)
}

func (x *Exporter) readCursor(ctx context.Context, name string) (store.Record, uint64, error) {
	rec, err := x.st.GetRecord(ctx, cursorKind, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Record{Kind: cursorKind, ID: name}, 0, nil
	}
	if err != nil {
		return rec, 0, err
	}
	var c cursorBody
	if err := json.Unmarshal(rec.Body, &c); err != nil {
		return rec, 0, fmt.Errorf("audit export: cursor of %s: %w", name, err)
	}
	return rec, c.Next, nil
}

func (x *Exporter) writeCursor(ctx context.Context, name string, rec store.Record, next uint64) error {
	rec.Kind, rec.ID = cursorKind, name
	rec.Body, _ = json.Marshal(cursorBody{Next: next})
	var err error
	if rec.Version == 0 {
		_, err = x.st.CreateRecord(ctx, rec)
	} else {
		_, err = x.st.UpdateRecord(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("audit export: move the cursor of %s to %d: %w", name, next, err)
	}
	return nil
}

// eventJSON is how sinks write an event: its place in the log, its
// sequence number and the leaf's fields.
func eventJSON(e *store.AuditEvent) []byte {
	leaf := store.AuditLeaf(e)
	// {"leafIndex":N,"seq":S, + the leaf's fields
	head := fmt.Sprintf(`{"leafIndex":%d,"seq":%d,`, e.Index, e.Seq)
	return append([]byte(head), leaf[1:]...)
}

// Prune deletes the events whose retention has ended — older than
// retention at now, and already delivered by every shared sink — keeping
// their hashes in the tree, and records the pruning in the log. It
// returns how many leaves lost their events.
func Prune(ctx context.Context, st store.Store, retention time.Duration, now time.Time) (uint64, error) {
	limit := ^uint64(0)
	cursors, err := st.ListRecords(ctx, cursorKind, "", 1000)
	if err != nil {
		return 0, err
	}
	for _, rec := range cursors {
		var c cursorBody
		if json.Unmarshal(rec.Body, &c) == nil {
			limit = min(limit, c.Next)
		}
	}
	var total uint64
	for {
		from, through, err := st.PruneAudit(ctx, now.Add(-retention), limit)
		if err != nil {
			return total, err
		}
		if through == from {
			return total, nil
		}
		total += through - from
	}
}

// RunRetention prunes every interval until ctx ends.
func RunRetention(ctx context.Context, st store.Store, retention, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := Prune(ctx, st, retention, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("audit retention: prune", "err", err)
		case n > 0:
			log.Info("audit retention: events pruned, their hashes kept", "leaves", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
