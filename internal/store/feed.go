package store

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// feed fans the store's latest revision out to Watch channels. Revisions
// arrive from this node's own commits, from the engine's notifications
// (PostgreSQL LISTEN) and from polling the revision counter, which covers
// lost notifications, a lost listener connection and other processes
// writing the same SQLite file. Each channel holds one value and the newest
// wins, so a slow receiver never blocks a writer.
type feed struct {
	s     *sqlStore
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	subs    map[chan int64]struct{}
	latest  int64 // newest revision sent
	running bool  // poller and listener started
	closed  bool
	failing bool // the last poll failed, so it was logged
	stop    context.CancelFunc
	doneCh  chan struct{} // closed by close
	// wg counts goroutines; Add is only called with mu held and closed
	// false, so it never races with close's Wait.
	wg sync.WaitGroup
}

func newFeed(s *sqlStore, every time.Duration, log *slog.Logger) *feed {
	return &feed{s: s, log: log, every: every, subs: map[chan int64]struct{}{}}
}

// Watch returns a channel that receives the latest revision after commits
// by this or any other node. It is closed when ctx ends or the store closes.
func (s *sqlStore) Watch(ctx context.Context) <-chan int64 {
	return s.feed.subscribe(ctx)
}

func (f *feed) subscribe(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	f.mu.Lock()
	first := !f.running
	f.mu.Unlock()
	if first {
		// The baseline, read before subscribing, keeps the first poll from
		// announcing a revision committed before anyone watched, while a
		// commit racing with this call is announced (at worst needlessly).
		if rev, err := f.s.Revision(ctx); err == nil {
			f.publishQuiet(rev)
		}
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		close(ch)
		return ch
	}
	f.subs[ch] = struct{}{}
	start := !f.running
	f.running = true
	done := f.done()
	f.wg.Add(1)
	f.mu.Unlock()

	if start {
		f.start()
	}
	go func() {
		defer f.wg.Done()
		select {
		case <-ctx.Done():
		case <-done:
		}
		f.mu.Lock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
		f.mu.Unlock()
	}()
	return ch
}

// start begins polling and listening, on the first Watch only: a store
// nobody watches (a CLI command) costs the database nothing.
func (f *feed) start() {
	runCtx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		cancel()
		return
	}
	f.stop = cancel
	f.wg.Add(2)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		f.poll(runCtx)
	}()
	go func() {
		defer f.wg.Done()
		f.s.eng.listen(runCtx, f.publish, func() { f.pollOnce(runCtx) })
	}()
}

// done lazily makes the channel closed by close; f.mu is held.
func (f *feed) done() chan struct{} {
	if f.doneCh == nil {
		f.doneCh = make(chan struct{})
	}
	return f.doneCh
}

func (f *feed) poll(ctx context.Context) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.pollOnce(ctx)
		}
	}
}

func (f *feed) pollOnce(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, max(f.every, 5*time.Second))
	defer cancel()
	rev, err := f.s.Revision(qctx)
	f.mu.Lock()
	failing := f.failing
	f.failing = err != nil
	f.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil && !failing:
		f.log.WarnContext(ctx, "store: change feed cannot read the revision; retrying", "err", err)
	case err == nil && failing:
		f.log.InfoContext(ctx, "store: change feed reads the revision again", "revision", rev)
	}
	if err == nil {
		f.publish(rev)
	}
}

// publish sends rev to every watcher when it is newer than any sent.
func (f *feed) publish(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishLocked(rev)
}

// publishQuiet raises the latest known revision without telling anyone,
// unless someone already watches: they must hear of it.
func (f *feed) publishQuiet(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) > 0 {
		f.publishLocked(rev)
		return
	}
	f.latest = max(f.latest, rev)
}

func (f *feed) publishLocked(rev int64) {
	if rev <= f.latest {
		return
	}
	f.latest = rev
	for ch := range f.subs {
		select {
		case <-ch: // drop the stale value; the newest wins
		default:
		}
		ch <- rev
	}
}

// close stops the feed goroutines and closes every channel.
func (f *feed) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	if f.stop != nil {
		f.stop()
	}
	close(f.done())
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
	f.mu.Unlock()
	f.wg.Wait()
}
