package proxy

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/decision"
)

// recheckEvery is how often each open upgraded connection (a WebSocket)
// is decided again. With the session cache's freshness it bounds how late
// a revocation closes one: recheckEvery + sessionFreshness < 1 s.
const recheckEvery = 250 * time.Millisecond

// openUpgrade is one upgraded connection being proxied, with what its
// decision was made on.
type openUpgrade struct {
	cancel                  context.CancelFunc
	routeID, sessionID      string
	userID, appID, host     string
	ip                      netip.Addr
	userAgent, method, path string
}

type upgradeSet struct {
	mu   sync.Mutex
	open map[*openUpgrade]struct{}
}

func newUpgradeSet() *upgradeSet { return &upgradeSet{open: map[*openUpgrade]struct{}{}} }

func (s *upgradeSet) add(u *openUpgrade) {
	s.mu.Lock()
	s.open[u] = struct{}{}
	s.mu.Unlock()
}

func (s *upgradeSet) remove(u *openUpgrade) {
	s.mu.Lock()
	delete(s.open, u)
	s.mu.Unlock()
}

func (s *upgradeSet) list() []*openUpgrade {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*openUpgrade, 0, len(s.open))
	for u := range s.open {
		out = append(out, u)
	}
	return out
}

// watchUpgrades decides every open upgraded connection again every
// recheckEvery, and closes those no longer allowed: a revoked or expired
// session, a disabled user, a policy or role that now says no, a removed
// route. Closing cancels the request's context, on which the reverse
// proxy closes both sides.
func (p *Proxy) watchUpgrades(ctx context.Context) {
	t := time.NewTicker(recheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, u := range p.upgrades.list() {
			if ok, why := p.stillAllowed(ctx, u); !ok {
				p.log.InfoContext(ctx, "proxy: closing an upgraded connection no longer allowed", "route", u.routeID, "session", u.sessionID, "why", why)
				ev := decisionEvent{CorrelationID: newCorrelationID(), RouteID: u.routeID, AppID: u.appID, UserID: u.userID, SessionID: u.sessionID,
					Method: u.method, Host: u.host, Path: u.path, IP: u.ip.String(), Outcome: decision.Deny.String(), Code: codeConnectionClosed,
					Reason: "An open connection was closed: " + why, Policies: []appliedPolicy{}}
				p.audit(ctx, &ev)
				u.cancel()
			}
		}
	}
}

// stillAllowed decides an open connection again; why says what changed.
func (p *Proxy) stillAllowed(ctx context.Context, u *openUpgrade) (bool, string) {
	snap := p.opts.Live.Current()
	route, ok := snap.Directory().Route(u.routeID)
	if !ok {
		return false, "the route was removed"
	}
	if res := snap.NetworkAccess().App(route.AppID, route.Port(), u.ip, p.opts.Now()); !res.Open {
		return false, "just-in-time network access to the port ended"
	}
	sess, err := p.sessions.get(ctx, u.sessionID)
	if err != nil {
		return true, "" // the store is unreachable: keep what was allowed, as new requests are refused
	}
	if sess == nil {
		return false, "the session ended"
	}
	now := p.opts.Now()
	req := p.decisionRequest(snap, route, sess, u.ip, u.userAgent, u.method, u.path, now)
	d := decisionPool.Get()
	defer decisionPool.Put(d)
	if err := snap.Decide(&req, d); err != nil || d.Verdict != decision.Allow || d.Access.Session.SignInFrequency.Reauthenticate {
		return false, "the decision is now " + d.Verdict.String()
	}
	return true, ""
}
