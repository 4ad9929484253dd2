package directory

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// KindAppRoute is the store kind of the proxy's routes.
const KindAppRoute = "appRoute"

// DefaultRouteDataAction is the data action a route without a matching
// rule asks for when its application requires assignment.
const DefaultRouteDataAction = "Verity.Apps/apps/access/action"

// Limits on a route.
const (
	maxRouteUpstreams   = 32
	maxRoutePublicPaths = 100
	maxRouteRules       = 200
	maxRoutePath        = 1024
	// MaxRouteTimeoutSeconds bounds upstreamTimeoutSeconds.
	MaxRouteTimeoutSeconds = 3600
	// Bounds of a route's health check.
	MaxHealthCheckIntervalSeconds = 300
	MaxHealthCheckTimeoutSeconds  = 60
	MaxHealthCheckThreshold       = 10
)

// Defaults of a route's health check.
const (
	DefaultHealthCheckIntervalSeconds    = 10
	DefaultHealthCheckTimeoutSeconds     = 2
	DefaultHealthCheckHealthyThreshold   = 2
	DefaultHealthCheckUnhealthyThreshold = 3
)

// AppRoute publishes an application through the identity-aware proxy, as
// Entra's application proxy publishes one at an external URL: requests to
// From (a host, and a path prefix under it) go to one of the To upstreams
// when a decision allows them. The decision is conditional access for the
// application AppID (a policy's includeApplications names it) and, for the
// request's method and path, the first matching rule's RBAC data action
// at /apps/{appId} — or, when no rule matches, Verity.Apps/apps/access/action
// if the application's service principal requires assignment.
type AppRoute struct {
	ID          string `json:"id,omitempty"`
	DisplayName string `json:"displayName"`
	// AppID is the application (its appId) the route belongs to.
	AppID string `json:"appId"`
	// From is the external URL: https://host[:port]/[prefix/]. Requests to
	// the host whose path is under the prefix are this route's; of two
	// routes on one host, the longer prefix wins.
	From string `json:"from"`
	// To are the upstreams' base URLs (http or https); requests are spread
	// over the healthy ones. A path on an upstream is prepended to the
	// request's path after From's prefix.
	To []string `json:"to"`
	// PreserveHost sends the client's Host header upstream instead of the
	// upstream's own.
	PreserveHost bool `json:"preserveHost,omitempty"`
	// PublicPaths are path prefixes (under From's) served without sign-in
	// or decision: health checks, static assets. Explicit, never implied.
	PublicPaths []string `json:"publicPaths,omitempty"`
	// AllowPreflight lets CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method) through without a session: browsers
	// send them without credentials.
	AllowPreflight bool `json:"allowPreflight,omitempty"`
	// Rules map methods and path prefixes to the data action a request
	// needs; the first match applies.
	Rules []RouteRule `json:"rules,omitempty"`
	// PassIdentityHeaders adds plain X-Verity-User-Id, X-Verity-User and
	// X-Verity-Groups headers beside the signed assertion.
	PassIdentityHeaders bool `json:"passIdentityHeaders,omitempty"`
	// UpstreamTimeoutSeconds bounds waiting for an upstream's response
	// headers (default 30).
	UpstreamTimeoutSeconds int `json:"upstreamTimeoutSeconds,omitempty"`
	// HealthCheck, when set, has the proxy probe every upstream in the
	// background; without it an upstream is judged by its connections
	// alone.
	HealthCheck     *RouteHealthCheck `json:"healthCheck,omitempty"`
	CreatedDateTime *time.Time        `json:"createdDateTime,omitempty"`

	host, prefix string // From's, parsed once by the snapshot
	port         int
}

// RouteRule is one access rule of a route.
type RouteRule struct {
	// Methods the rule applies to (upper case); empty: every method.
	Methods []string `json:"methods,omitempty"`
	// PathPrefix is matched against the request's normalised path,
	// ignoring case.
	PathPrefix string `json:"pathPrefix"`
	// DataAction is the RBAC data action the request needs at
	// /apps/{appId}, such as Verity.Apps/apps/access/action or a custom
	// role's Verity.Apps/apps/payroll/write/action.
	DataAction string `json:"dataAction"`
}

// RouteHealthCheck is the active health check of a route's upstreams: an
// upstream that fails UnhealthyThreshold probes in a row takes no requests
// until it passes HealthyThreshold in a row. Zero fields take the defaults.
type RouteHealthCheck struct {
	// Path is requested with GET on every upstream, below the upstream's
	// own path: /healthz on http://10.0.0.5:8080/app/ probes
	// http://10.0.0.5:8080/app/healthz. A status from 200 to 399 passes.
	Path string `json:"path"`
	// IntervalSeconds is the time between probes (default 10, at most 300).
	IntervalSeconds int `json:"intervalSeconds,omitempty"`
	// TimeoutSeconds bounds one probe, connection included (default 2, at
	// most 60 and at most IntervalSeconds).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// HealthyThreshold is how many passes in a row bring an upstream back
	// (default 2, at most 10).
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is how many failures in a row take it out
	// (default 3, at most 10).
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
}

// Interval is the time between probes.
func (h *RouteHealthCheck) Interval() time.Duration {
	return time.Duration(orDefault(h.IntervalSeconds, DefaultHealthCheckIntervalSeconds)) * time.Second
}

// Timeout bounds one probe.
func (h *RouteHealthCheck) Timeout() time.Duration {
	return time.Duration(orDefault(h.TimeoutSeconds, DefaultHealthCheckTimeoutSeconds)) * time.Second
}

// Healthy is how many passes in a row bring an upstream back.
func (h *RouteHealthCheck) Healthy() int {
	return orDefault(h.HealthyThreshold, DefaultHealthCheckHealthyThreshold)
}

// Unhealthy is how many failures in a row take an upstream out.
func (h *RouteHealthCheck) Unhealthy() int {
	return orDefault(h.UnhealthyThreshold, DefaultHealthCheckUnhealthyThreshold)
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// ObjectID implements Resource.
func (r *AppRoute) ObjectID() string { return r.ID }

// SetObjectID implements Resource.
func (r *AppRoute) SetObjectID(id string) { r.ID = id }

// SetCreatedDateTime implements Resource.
func (r *AppRoute) SetCreatedDateTime(t time.Time) { t = t.UTC(); r.CreatedDateTime = &t }

// Key is the store key: the normalised From URL, so two routes never
// claim the same host and prefix.
func (r *AppRoute) Key() string { return r.From }

// Host is From's host and port (the port only when it is not 443), lower
// case: what a request's Host header must equal.
func (r *AppRoute) Host() string {
	if r.host != "" {
		return r.host
	}
	u, err := url.Parse(r.From)
	if err != nil {
		return ""
	}
	return u.Host
}

// Port is From's port: the one written, else 443 for https and 80 for
// http — the port clients reach the application on, which just-in-time
// network access policies name.
func (r *AppRoute) Port() int {
	if r.port != 0 {
		return r.port
	}
	u, err := url.Parse(r.From)
	if err != nil {
		return 0
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "http" {
		return 80
	}
	return 443
}

// Prefix is From's path, ending in "/".
func (r *AppRoute) Prefix() string {
	if r.prefix != "" {
		return r.prefix
	}
	u, err := url.Parse(r.From)
	if err != nil {
		return "/"
	}
	return u.Path
}

// Timeout is the upstream timeout.
func (r *AppRoute) Timeout() time.Duration {
	if r.UpstreamTimeoutSeconds <= 0 {
		return 30 * time.Second
	}
	return time.Duration(r.UpstreamTimeoutSeconds) * time.Second
}

// IsPublic reports whether path (normalised) is under a public prefix.
func (r *AppRoute) IsPublic(path string) bool {
	for _, p := range r.PublicPaths {
		if underPrefix(path, p) {
			return true
		}
	}
	return false
}

// Rule returns the first rule for method and path (normalised and
// lower-cased), nil when none matches.
func (r *AppRoute) Rule(method, path string) *RouteRule {
	for i := range r.Rules {
		ru := &r.Rules[i]
		if (len(ru.Methods) == 0 || slices.Contains(ru.Methods, method)) && underPrefix(path, ru.PathPrefix) {
			return ru
		}
	}
	return nil
}

// underPrefix reports whether path is prefix or below it: "/api" covers
// "/api" and "/api/x" but not "/apix"; "/api/" covers "/api/x".
func underPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// Normalize implements Resource: the id lower-cased, From's scheme and
// host lower-cased with the default port dropped and its path ending in
// "/", methods upper-cased, rules' path prefixes lower-cased (rules match
// whatever the case of the request's path: many upstreams ignore it).
func (r *AppRoute) Normalize() {
	r.ID = lowerGUID(r.ID)
	r.AppID = lowerGUID(r.AppID)
	if u, err := url.Parse(r.From); err == nil && u.Host != "" {
		u.Scheme = strings.ToLower(u.Scheme)
		u.Host = strings.ToLower(u.Host)
		if h, p, err := net.SplitHostPort(u.Host); err == nil && p == "443" && u.Scheme == "https" {
			u.Host = h
		}
		if u.Path == "" {
			u.Path = "/"
		} else if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		r.From = u.String()
	}
	for i := range r.Rules {
		r.Rules[i].PathPrefix = strings.ToLower(r.Rules[i].PathPrefix)
		for j, m := range r.Rules[i].Methods {
			r.Rules[i].Methods[j] = strings.ToUpper(m)
		}
	}
}

// Validate implements Resource.
func (r *AppRoute) Validate() error {
	return firstError(
		checkID("id", r.ID),
		checkDisplayName("displayName", r.DisplayName),
		checkGUID("appId", r.AppID),
		checkRouteFrom("from", r.From),
		checkUpstreams("to", r.To),
		checkPaths("publicPaths", r.PublicPaths, maxRoutePublicPaths),
		checkRules("rules", r.Rules),
		checkTimeout("upstreamTimeoutSeconds", r.UpstreamTimeoutSeconds),
		checkHealthCheck("healthCheck", r.HealthCheck),
	)
}

func checkRouteFrom(path, s string) error {
	if s == "" {
		return strictjson.Errorf(path, "is required: the external URL, https://host/ or https://host/prefix/")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || len(s) > 2048:
		return strictjson.Errorf(path, "is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return strictjson.Errorf(path, "must be an https URL (http is accepted for a loopback or test host only behind TLS offload)")
	case u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return strictjson.Errorf(path, "must be scheme://host[:port]/[prefix/] without user, query or fragment")
	case strings.Contains(u.Path, "//") || strings.Contains(u.Path, "/./") || strings.Contains(u.Path, "/../") || strings.ContainsAny(u.Path, "%\\"):
		return strictjson.Errorf(path, "path must be a plain prefix (no //, dot segments, escapes or backslashes)")
	case strings.HasPrefix(u.Path, "/.verity/"):
		return strictjson.Errorf(path, "the path /.verity/ belongs to the proxy")
	}
	return nil
}

func checkUpstreams(path string, to []string) error {
	if len(to) == 0 {
		return strictjson.Errorf(path, "needs at least one upstream URL")
	}
	if len(to) > maxRouteUpstreams {
		return strictjson.Errorf(path, "at most %d upstreams", maxRouteUpstreams)
	}
	for i, s := range to {
		p := strictjson.Index(path, i)
		u, err := url.Parse(s)
		if err != nil || len(s) > 2048 || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return strictjson.Errorf(p, "must be an http or https URL without user, query or fragment")
		}
	}
	return nil
}

func checkPaths(path string, paths []string, max int) error {
	if len(paths) > max {
		return strictjson.Errorf(path, "at most %d paths", max)
	}
	for i, s := range paths {
		if err := checkRoutePath(strictjson.Index(path, i), s); err != nil {
			return err
		}
	}
	return nil
}

func checkRoutePath(path, s string) error {
	if !strings.HasPrefix(s, "/") || len(s) > maxRoutePath || strings.Contains(s, "//") || strings.Contains(s, "/./") || strings.Contains(s, "/../") ||
		strings.HasSuffix(s, "/..") || strings.HasSuffix(s, "/.") || strings.ContainsAny(s, "%\\?#") {
		return strictjson.Errorf(path, "must be a plain path prefix starting with / (no //, dot segments, escapes, ? or #)")
	}
	return nil
}

func checkRules(path string, rules []RouteRule) error {
	if len(rules) > maxRouteRules {
		return strictjson.Errorf(path, "at most %d rules", maxRouteRules)
	}
	for i, ru := range rules {
		p := strictjson.Index(path, i)
		if err := checkRoutePath(p+".pathPrefix", ru.PathPrefix); err != nil {
			return err
		}
		for j, m := range ru.Methods {
			if m == "" || len(m) > 32 || strings.ToUpper(m) != m || strings.IndexFunc(m, func(c rune) bool { return c < 'A' || c > 'Z' }) >= 0 {
				return strictjson.Errorf(strictjson.Index(p+".methods", j), "must be an HTTP method such as GET")
			}
		}
		if ru.DataAction == "" || len(ru.DataAction) > 512 || strings.ContainsAny(ru.DataAction, " *") || !strings.Contains(ru.DataAction, "/") {
			return strictjson.Errorf(p+".dataAction", "must be a data action such as %s", DefaultRouteDataAction)
		}
	}
	return nil
}

func checkTimeout(path string, n int) error {
	if n < 0 || n > MaxRouteTimeoutSeconds {
		return strictjson.Errorf(path, "must be between 1 and %d (0: the default of 30)", MaxRouteTimeoutSeconds)
	}
	return nil
}

func checkHealthCheck(path string, h *RouteHealthCheck) error {
	if h == nil {
		return nil
	}
	if h.Path == "" {
		return strictjson.Errorf(path+".path", "is required: the path probed on every upstream, such as /healthz")
	}
	if err := checkRoutePath(path+".path", h.Path); err != nil {
		return err
	}
	bounds := []struct {
		field    string
		n, max   int
		fallback int
	}{
		{"intervalSeconds", h.IntervalSeconds, MaxHealthCheckIntervalSeconds, DefaultHealthCheckIntervalSeconds},
		{"timeoutSeconds", h.TimeoutSeconds, MaxHealthCheckTimeoutSeconds, DefaultHealthCheckTimeoutSeconds},
		{"healthyThreshold", h.HealthyThreshold, MaxHealthCheckThreshold, DefaultHealthCheckHealthyThreshold},
		{"unhealthyThreshold", h.UnhealthyThreshold, MaxHealthCheckThreshold, DefaultHealthCheckUnhealthyThreshold},
	}
	for _, b := range bounds {
		if b.n < 0 || b.n > b.max {
			return strictjson.Errorf(path+"."+b.field, "must be between 1 and %d (0: the default of %d)", b.max, b.fallback)
		}
	}
	if h.Timeout() > h.Interval() {
		return strictjson.Errorf(path+".timeoutSeconds", "must not exceed intervalSeconds (%d): a probe ends before the next one starts", int(h.Interval()/time.Second))
	}
	return nil
}
