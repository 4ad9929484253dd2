package decision

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Live holds the current Snapshot and replaces it whenever the store
// changes, on this node or any other. Readers call Current and never block.
type Live struct {
	store   store.Store
	log     *slog.Logger
	current atomic.Pointer[Snapshot]
	// OnBuild, when set, observes every successful build (for metrics).
	onBuild func(s *Snapshot, took time.Duration)

	buildMu sync.Mutex
	mu      sync.Mutex
	waiters []chan struct{} // closed on every swap
}

// NewLive builds the first snapshot; it fails when the store cannot be read.
func NewLive(ctx context.Context, st store.Store, log *slog.Logger, onBuild func(*Snapshot, time.Duration)) (*Live, error) {
	l := &Live{store: st, log: log, onBuild: onBuild}
	if err := l.rebuild(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Current returns the newest snapshot.
func (l *Live) Current() *Snapshot { return l.current.Load() }

// Run follows the change feed until ctx ends. A failed rebuild (the
// database is unreachable) keeps serving the previous snapshot and retries
// with backoff; it never crashes the node.
func (l *Live) Run(ctx context.Context, pollEvery time.Duration) {
	changes := l.store.Watch(ctx)
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	backoff := 100 * time.Millisecond
	for first := true; ; first = false {
		// The first pass looks at once: a write may have landed between
		// the initial build and the subscription.
		if !first {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-changes:
				if !ok {
					return
				}
			case <-ticker.C:
				// Safety net: compare revisions even without a notification.
			}
		}
		rev, err := l.store.Revision(ctx)
		if err != nil || rev == l.Current().Revision() {
			if err != nil && ctx.Err() == nil {
				l.log.Warn("snapshot: cannot read store revision", "err", err)
			}
			continue
		}
		if err := l.rebuild(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.Warn("snapshot: rebuild failed; serving the previous snapshot", "err", err, "retryIn", backoff.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

func (l *Live) rebuild(ctx context.Context) error {
	// One build at a time: concurrent full builds would only waste memory.
	l.buildMu.Lock()
	defer l.buildMu.Unlock()
	start := time.Now()
	snap, err := Build(ctx, l.store)
	if err != nil {
		return err
	}
	if old := l.Current(); old != nil && old.Revision() >= snap.Revision() {
		return nil
	}
	l.current.Store(snap)
	took := time.Since(start)
	if l.onBuild != nil {
		l.onBuild(snap, took)
	}
	l.log.Debug("snapshot installed", "revision", snap.Revision(), "took", took.String())
	l.mu.Lock()
	for _, w := range l.waiters {
		close(w)
	}
	l.waiters = nil
	l.mu.Unlock()
	return nil
}

// ErrStale means the snapshot did not reach the wanted revision in time.
var ErrStale = errors.New("snapshot has not caught up")

// WaitFor blocks until the current snapshot reflects at least revision, so a
// client reads its own writes. It rebuilds at once rather than waiting for
// the feed.
func (l *Live) WaitFor(ctx context.Context, revision int64) (*Snapshot, error) {
	for {
		if s := l.Current(); s.Revision() >= revision {
			return s, nil
		}
		l.mu.Lock()
		w := make(chan struct{})
		l.waiters = append(l.waiters, w)
		l.mu.Unlock()
		if err := l.rebuild(ctx); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ErrStale
		case <-w:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
