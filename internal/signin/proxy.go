package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/store"
)

// The identity-aware proxy serves applications on their own hosts, where
// the sign-in cookie is not sent. It hands a browser over to sign-in
// (ProxyPath) with the route and an opaque state; sign-in makes sure the
// browser has a session that satisfies conditional access for the
// route's application — signing in or stepping up as needed — and sends
// it back to the route's host with a one-time code (ProxyCallbackPath),
// which the proxy redeems for the session's id. Each proxy keeps its own
// cookie per host; the session stays here, so revoking it ends every
// proxy's access.

const (
	// ProxyPath is the sign-in endpoint the proxy sends a browser to:
	// ProxyPath?route={route id}&state={state}.
	ProxyPath = "/signin/proxy"
	// ProxyCallbackPath is where, on the route's host, sign-in sends the
	// browser back: ?code={code}&state={state}.
	ProxyCallbackPath = "/.verity/callback"

	kindHandoff = "proxyHandoff"
	// handoffLifetime is how long a handoff code may wait for the proxy.
	handoffLifetime = time.Minute
	maxState        = 512
)

// handoff is the body of a proxyHandoff record.
type handoff struct {
	SessionID string    `json:"sessionId"`
	RouteID   string    `json:"routeId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// ErrHandoff means a handoff code is unknown, used, expired or for
// another route.
var ErrHandoff = errors.New("sign-in handoff: invalid code")

// getProxy hands a browser back to the proxy with a session for the
// route's application.
func (s *Service) getProxy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	route, ok := s.opts.Live.Current().Directory().Route(q.Get("route"))
	if !ok || state == "" || len(state) > maxState || !urlSafe(state) {
		s.page(w, r, http.StatusBadRequest, errorPage{Title: "This link is not valid", Message: "Go back to the application and try again."})
		return
	}
	returnTo := ProxyPath + "?" + url.Values{"route": {route.ID}, "state": {state}}.Encode()
	sess := s.Require(w, r, route.AppID, returnTo, Requirements{})
	if sess == nil {
		return // Require answered: a sign-in, a step-up, or a refusal
	}
	code, id := newSecret()
	body, err := json.Marshal(handoff{SessionID: sess.ID, RouteID: route.ID, ExpiresAt: s.opts.Now().Add(handoffLifetime)})
	if err != nil {
		s.page(w, r, http.StatusInternalServerError, errorPage{Title: "Something went wrong", Message: "Try again in a moment."})
		return
	}
	if _, err := s.opts.Store.CreateRecord(r.Context(), store.Record{Kind: kindHandoff, ID: id, Subject: sess.UserID, Body: body,
		ExpiresAt: s.opts.Now().Add(handoffLifetime)}); err != nil {
		s.log.ErrorContext(r.Context(), "sign-in: proxy handoff", "route", route.ID, "err", err)
		s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Sign-in is not available", Message: "Try again in a moment."})
		return
	}
	back := url.URL{Scheme: routeScheme(route.From), Host: route.Host(), Path: ProxyCallbackPath,
		RawQuery: url.Values{"code": {code}, "state": {state}}.Encode()}
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func routeScheme(from string) string {
	if u, err := url.Parse(from); err == nil && u.Scheme == "http" {
		return "http"
	}
	return "https"
}

func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// RedeemHandoff exchanges a handoff code for the id of the session it
// carries, once: the record is deleted as it is read, so of two
// redemptions one fails.
func (s *Service) RedeemHandoff(ctx context.Context, code, routeID string) (string, error) {
	if !validSecret(code) {
		return "", ErrHandoff
	}
	id := digest(code)
	rec, err := s.opts.Store.GetRecord(ctx, kindHandoff, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrHandoff
	}
	if err != nil {
		return "", err
	}
	if err := s.opts.Store.DeleteRecord(ctx, kindHandoff, id); errors.Is(err, store.ErrNotFound) {
		return "", ErrHandoff // redeemed meanwhile
	} else if err != nil {
		return "", err
	}
	var h handoff
	if err := json.Unmarshal(rec.Body, &h); err != nil {
		return "", fmt.Errorf("handoff record: %w", err)
	}
	if h.RouteID != routeID || !s.opts.Now().Before(h.ExpiresAt) {
		return "", ErrHandoff
	}
	return h.SessionID, nil
}

// SessionByID returns the live session with record id id — nil when there
// is none, or it expired or sat idle too long. Whether its user may still
// do anything is the decision's to say. It does not record use: the
// caller does, with Touch, when it serves a request.
func (s *Service) SessionByID(ctx context.Context, id string) (*Session, error) {
	if len(id) != 64 {
		return nil, nil
	}
	sess, err := sessionByID(ctx, s.opts.Store, id, s.opts.Now())
	if errors.Is(err, errNoSession) {
		return nil, nil
	}
	return sess, err
}

// Live reports whether the session has neither expired nor sat idle too
// long at now.
func (s *Session) Live(now time.Time) bool {
	return now.Before(s.ExpiresAt) && (s.IdleTimeout <= 0 || now.Sub(s.LastSeen) < s.IdleTimeout)
}

// Touch records use of the session at now, at most once a minute.
func (s *Service) Touch(ctx context.Context, sess *Session) error {
	return touchSession(ctx, s.opts.Store, sess, s.opts.Now())
}

// UserRisk is userID's risk level for conditional access (none without a
// risk signal configured).
func (s *Service) UserRisk(ctx context.Context, userID string) access.RiskLevel {
	if s.opts.UserRisk == nil {
		return access.RiskNone
	}
	return s.opts.UserRisk(ctx, userID)
}

// AccessRequest is the conditional access request of a session's request
// for appID from ip with userAgent at now: the signals sign-in evaluates,
// so that an enforcement point decides on exactly what sign-in decided
// on. Groups and roles are left for the decision engine to resolve.
func (s *Service) AccessRequest(sess *Session, appID string, ip netip.Addr, userAgent string, now time.Time) access.Request {
	req := access.Request{Identity: access.IdentityUser, UserID: sess.UserID, Applications: []string{appID},
		ClientApp: access.ClientAppBrowser, Platform: platform(userAgent),
		Methods: sess.Methods, Now: now, SignInTime: sess.AuthTime, MFATime: sess.MFATime,
		UserRisk: s.UserRisk(context.Background(), sess.UserID)}
	if sess.Methods&(access.MethodSoftwareOath|access.MethodHardwareOath|access.MethodFIDO2) != 0 {
		req.Satisfied |= access.ControlMFA
	}
	if ip.IsValid() {
		req.IP = ip
		if s.opts.Countries != nil {
			req.Country, _ = s.opts.Countries.Country(ip)
		}
	}
	return req
}
