package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
)

// Active health checks: the proxy probes the upstreams of every route
// with a healthCheck in the background, one prober per route, started
// and stopped as routes come and go.
const (
	// healthSyncEvery is how often the watcher looks for a new snapshot
	// (new, changed or removed routes).
	healthSyncEvery = 250 * time.Millisecond
	// healthResyncEvery: the watcher also syncs this often without a new
	// snapshot, to drop pools a request made for a route just removed.
	healthResyncEvery = 10 * time.Second
	// maxProbes bounds the probes in flight across all routes.
	maxProbes = 64
	// maxProbeBody is how much of a probe's response is read.
	maxProbeBody = 64 << 10
	// probeUserAgent names the proxy's probes in upstreams' logs.
	probeUserAgent = "Verity-HealthCheck/1"
)

// startHealthChecks starts the health watcher; it stops when ctx ends,
// and Close waits for it.
func (p *Proxy) startHealthChecks(ctx context.Context) {
	u := p.upstreams
	u.checks.Add(1)
	go func() {
		defer u.checks.Done()
		u.watch(ctx, p.opts.Live)
	}()
}

// prober probes one route's upstreams.
type prober struct {
	cfg    probeConfig
	cancel context.CancelFunc
	done   chan struct{}
}

// probeConfig is what a prober runs with; a route whose config changes
// gets a new prober (its upstreams keep their health).
type probeConfig struct {
	routeID      string
	set          *upstreamSet
	check        directory.RouteHealthCheck
	host         string // the route's, sent as Host with preserveHost
	preserveHost bool
}

// watch keeps one prober per route with a health check until ctx ends,
// then stops them all.
func (u *upstreams) watch(ctx context.Context, live *decision.Live) {
	probers := map[string]*prober{}
	sem := make(chan struct{}, maxProbes)
	d := newDialer(u.tls)
	probe := &http.Transport{
		Proxy:             nil,
		DialContext:       d.dial,
		DialTLSContext:    d.dialTLS,
		DisableKeepAlives: true, // every probe opens a connection, as a new request may have to
		ForceAttemptHTTP2: true,
	}
	defer probe.CloseIdleConnections()
	t := time.NewTicker(healthSyncEvery)
	defer t.Stop()
	var last *directory.Snapshot
	var synced time.Time
	for {
		if dir := live.Current().Directory(); dir != last || time.Since(synced) >= healthResyncEvery {
			u.sync(ctx, dir.Routes(), probers, sem, probe)
			last, synced = dir, time.Now()
		}
		select {
		case <-ctx.Done():
			for _, pr := range probers {
				pr.cancel()
			}
			for _, pr := range probers {
				<-pr.done
			}
			return
		case <-t.C:
		}
	}
}

// sync brings the pools and probers in line with routes.
func (u *upstreams) sync(ctx context.Context, routes []directory.AppRoute, probers map[string]*prober, sem chan struct{}, probe http.RoundTripper) {
	current := make(map[string]bool, len(routes))
	for i := range routes {
		r := &routes[i]
		current[r.ID] = true
		set := u.setFor(r.ID, u.pool(r.ID), r.To)
		pr := probers[r.ID]
		if r.HealthCheck == nil {
			if pr != nil {
				u.stopProber(pr)
				delete(probers, r.ID)
				// Without a check, no upstream stays out on its word.
				for _, up := range set.uniq {
					up.mu.Lock()
					up.checkDown.Store(false)
					up.passes, up.fails = 0, 0
					up.mu.Unlock()
				}
			}
			continue
		}
		cfg := probeConfig{routeID: r.ID, set: set, check: *r.HealthCheck, host: r.Host(), preserveHost: r.PreserveHost}
		if pr != nil && pr.cfg == cfg {
			continue
		}
		if pr != nil {
			u.stopProber(pr)
		}
		probers[r.ID] = u.startProber(ctx, cfg, sem, probe)
	}
	for id, pr := range probers {
		if !current[id] {
			u.stopProber(pr)
			delete(probers, id)
		}
	}
	u.pools.Range(func(k, _ any) bool {
		if id := k.(string); !current[id] {
			u.pools.Delete(id)
			u.metrics.upstreamFailures.DeletePartialMatch(prometheus.Labels{"route": id})
		}
		return true
	})
}

func (u *upstreams) stopProber(pr *prober) {
	pr.cancel()
	<-pr.done
}

// startProber probes the route's upstreams now and every interval; each
// probe waits for one of sem's places.
func (u *upstreams) startProber(ctx context.Context, cfg probeConfig, sem chan struct{}, probe http.RoundTripper) *prober {
	ctx, cancel := context.WithCancel(ctx)
	pr := &prober{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		t := time.NewTicker(cfg.check.Interval())
		defer t.Stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			for _, up := range cfg.set.uniq {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				wg.Go(func() {
					defer func() { <-sem }()
					u.probeOne(ctx, cfg, up, probe)
				})
			}
			wg.Wait()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return pr
}

// probeOne sends one probe and records its result.
func (u *upstreams) probeOne(ctx context.Context, cfg probeConfig, up *upstream, probe http.RoundTripper) {
	ctx, cancel := context.WithTimeout(ctx, cfg.check.Timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, probeURL(up.url, cfg.check.Path), nil)
	if err != nil {
		u.probed(cfg, up, 0, err)
		return
	}
	req.Header.Set("User-Agent", probeUserAgent)
	if cfg.preserveHost {
		req.Host = cfg.host
	}
	resp, err := probe.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
			return // the prober was stopped
		}
		u.probed(cfg, up, 0, err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	_ = resp.Body.Close()
	u.probed(cfg, up, resp.StatusCode, nil)
}

// probed records a probe's result: status is the response's (0 when
// there was none, err says why); 200 to 399 passes. An upstream failing the route's
// unhealthy threshold in a row is out until it passes the healthy one.
func (u *upstreams) probed(cfg probeConfig, up *upstream, status int, err error) {
	pass := err == nil && status >= 200 && status < 400
	if !pass {
		u.metrics.upstreamFailures.WithLabelValues(cfg.routeID, up.raw, "check").Inc()
		up.failedAt.Store(u.now().UnixNano())
	}
	up.mu.Lock()
	var wentDown, cameBack bool
	if pass {
		up.fails = 0
		up.passes++
		if up.checkDown.Load() && up.passes >= cfg.check.Healthy() {
			up.checkDown.Store(false)
			cameBack = true
		}
	} else {
		up.passes = 0
		up.fails++
		if !up.checkDown.Load() && up.fails >= cfg.check.Unhealthy() {
			up.checkDown.Store(true)
			wentDown = true
		}
	}
	up.mu.Unlock()
	switch {
	case wentDown:
		attrs := []any{"route", cfg.routeID, "upstream", up.raw, "why", "check", "path", cfg.check.Path, "failures", cfg.check.Unhealthy()}
		if err != nil {
			attrs = append(attrs, "err", err)
		} else {
			attrs = append(attrs, "status", status)
		}
		u.log.Warn("proxy: upstream down", attrs...)
	case cameBack:
		u.log.Info("proxy: upstream back", "route", cfg.routeID, "upstream", up.raw, "by", "check", "passes", cfg.check.Healthy())
	}
}

// probeURL is the URL a route's check probes on an upstream: the check's
// path below the upstream's own.
func probeURL(up *url.URL, path string) string {
	u := *up
	u.Path, u.RawPath, u.RawQuery, u.Fragment = strings.TrimSuffix(up.Path, "/")+path, "", "", ""
	return u.String()
}
