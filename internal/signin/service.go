package signin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// Countries resolves an address to its ISO 3166-1 alpha-2 country
// ("" when unknown). *geo.DB implements it.
type Countries interface {
	Country(addr netip.Addr) (string, error)
}

// Options configure a Service.
type Options struct {
	Store  store.Store
	Live   *decision.Live
	Sealer Sealer
	// Countries is optional: without it, country conditions see no
	// country.
	Countries Countries
	Logger    *slog.Logger
	// Issuer names Verity in authenticator apps ("Verity" when empty).
	Issuer string
	// AppID is the application a sign-in targets when no application asks
	// for it: Verity's own console and API.
	AppID string
	// PasswordPolicy applies to password changes (the default policy when
	// zero).
	PasswordPolicy authn.PasswordPolicy
	// MaxFailures and LockDuration configure the smart lockout (10 and 5
	// minutes when zero).
	MaxFailures  int
	LockDuration time.Duration
	// SessionIdle and SessionMax bound a session (12 hours and 7 days when
	// zero); conditional access sign-in frequency shortens them.
	SessionIdle, SessionMax time.Duration
	// UserRisk returns a user's risk level for conditional access
	// (userRiskLevels); nil: no risk signal.
	UserRisk func(ctx context.Context, userID string) access.RiskLevel
	// SignInRisk assesses the attempt in flight once its first factor is
	// proved, from what the sign-in log says of it (address, location,
	// client) — conditional access's signInRiskLevels; nil: no sign-in
	// risk.
	SignInRisk func(ctx context.Context, ev *Event) RiskAssessment
	// UserRiskRemediated is told when a user proves it is them the way
	// risk policies ask (a password changed because the user was at risk):
	// the user's risk is remediated with detail. nil: nobody is told.
	UserRiskRemediated func(ctx context.Context, userID, detail string) error
	// Locate resolves an address to a city, coordinates and autonomous
	// system for the sign-in log (and with them the travel and
	// unfamiliar-network detections); nil: country only.
	Locate func(addr netip.Addr) (loc Location, asn int, ok bool)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ExternalURL is where browsers reach Verity; its host is the passkey
	// relying party id (localhost for a loopback address). Without it,
	// passkeys are off.
	ExternalURL string
	// HTTPClient makes the calls to external identity providers
	// (discovery, keys, token endpoint); a client with a 10-second timeout
	// when nil.
	HTTPClient *http.Client
}

// RiskAssessment is the risk of a sign-in attempt: a level and the risk
// detections that raised it (Entra riskEventType names, e.g.
// anonymizedIPAddress, impossibleTravel, unfamiliarFeatures).
type RiskAssessment struct {
	Level      access.RiskLevel
	EventTypes []string
}

// Service serves the sign-in pages and answers who is signed in.
type Service struct {
	opts     Options
	log      *slog.Logger
	webauthn *webauthn.WebAuthn // nil: passkeys are off
	lockout  *authn.SmartLockout
	familiar *authn.FamiliarSources
	mux      *http.ServeMux
	fed      *federation // sign-in through external identity providers
}

// New returns a Service; an ExternalURL that is not a URL is an error.
func New(opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Issuer == "" {
		opts.Issuer = "Verity"
	}
	if opts.PasswordPolicy.MinLength == 0 {
		opts.PasswordPolicy = authn.DefaultPasswordPolicy()
	}
	if opts.MaxFailures == 0 {
		opts.MaxFailures = 10
	}
	if opts.LockDuration == 0 {
		opts.LockDuration = 5 * time.Minute
	}
	if opts.SessionIdle == 0 {
		opts.SessionIdle = 12 * time.Hour
	}
	if opts.SessionMax == 0 {
		opts.SessionMax = 7 * 24 * time.Hour
	}
	s := &Service{opts: opts, log: opts.Logger,
		lockout:  authn.NewSmartLockout(opts.MaxFailures, opts.LockDuration, opts.Now),
		familiar: authn.NewFamiliarSources(32),
		mux:      http.NewServeMux(),
		fed:      newFederation(opts.HTTPClient),
	}
	wa, err := newWebAuthn(opts.ExternalURL, opts.Issuer)
	if err != nil {
		return nil, err
	}
	s.webauthn = wa
	s.routes()
	return s, nil
}

// rpID is the passkeys' domain ("" when passkeys are off).
func (s *Service) rpID() string {
	if s.webauthn == nil {
		return ""
	}
	return s.webauthn.Config.RPID
}

// Handler serves the pages under /signin/.
func (s *Service) Handler() http.Handler { return s.mux }

func (s *Service) routes() {
	s.mux.HandleFunc("GET /signin", s.getSignIn)
	s.mux.HandleFunc("POST /signin", s.postSignIn)
	s.mux.HandleFunc("GET /signin/mfa", s.getMFA)
	s.mux.HandleFunc("POST /signin/mfa", s.postMFA)
	s.mux.HandleFunc("GET /signin/enroll", s.getEnroll)
	s.mux.HandleFunc("POST /signin/enroll", s.postEnroll)
	s.mux.HandleFunc("GET /signin/password", s.getPassword)
	s.mux.HandleFunc("POST /signin/password", s.postPassword)
	s.mux.HandleFunc("POST /signin/continue", s.postContinue)
	s.mux.HandleFunc("POST /signin/consent", s.postConsent)
	s.mux.HandleFunc("GET /signin/session", s.getSession)
	s.mux.HandleFunc("GET "+ProxyPath, s.getProxy)
	s.mux.HandleFunc("POST /signin/logout", s.postLogout)
	s.mux.HandleFunc("POST /signin/passkey/login/begin", s.postPasskeyLoginBegin)
	s.mux.HandleFunc("POST /signin/passkey/login/finish", s.postPasskeyLoginFinish)
	s.mux.HandleFunc("POST /signin/passkey/mfa/begin", s.postPasskeyMFABegin)
	s.mux.HandleFunc("POST /signin/passkey/mfa/finish", s.postPasskeyMFAFinish)
	s.mux.HandleFunc("POST /signin/passkey/register/begin", s.postPasskeyRegisterBegin)
	s.mux.HandleFunc("POST /signin/passkey/register/finish", s.postPasskeyRegisterFinish)
	s.mux.HandleFunc("GET /signin/static/passkey.js", servePasskeyScript)
	s.federationRoutes()
	s.mux.HandleFunc("/signin/", func(w http.ResponseWriter, r *http.Request) {
		s.page(w, r, http.StatusNotFound, errorPage{Title: "Page not found", Message: "There is no sign-in page at this address."})
	})
}

// Current returns the request's live session, or nil when it has none.
// Other enforcement points (the OIDC provider, the proxy) call it.
func (s *Service) Current(r *http.Request) (*Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	sess, err := lookupSession(r.Context(), s.opts.Store, c.Value, s.opts.Now())
	if errors.Is(err, errNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	snap := s.opts.Live.Current()
	if !snap.Directory().PrincipalEnabled(sess.UserID) {
		return nil, nil
	}
	if err := touchSession(r.Context(), s.opts.Store, sess, s.opts.Now()); err != nil {
		s.log.WarnContext(r.Context(), "sign-in: record session use", "session", sess.ID, "err", err)
	}
	return sess, nil
}

// SignInURL is where to send a browser to sign in for app and come back
// to returnTo (a path on this server).
func SignInURL(returnTo, appID string) string {
	v := url.Values{"return_to": {returnTo}}
	if appID != "" {
		v.Set("app", appID)
	}
	return "/signin?" + v.Encode()
}

// clientIP is the address the request came from. Verity takes no
// forwarded-for header on trust: behind a proxy, the proxy's address is
// what conditional access sees unless a trusted proxy setting says
// otherwise.
func clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// safeReturn accepts only a path on this server: "/x", not "//host",
// "/\host", a scheme or control characters.
func safeReturn(p string) string {
	if p == "" || len(p) > 2048 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/signin/session"
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\' {
			return "/signin/session"
		}
	}
	return p
}

func newCorrelationID() string { return uuid.NewString() }

// constantEqual compares secrets in constant time.
func constantEqual(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// platform is the device platform a user agent names, as Entra reads it.
func platform(ua string) access.Platform {
	switch {
	case ua == "":
		return access.PlatformNotGiven
	case strings.Contains(ua, "Windows Phone"):
		return access.PlatformWindowsPhone
	case strings.Contains(ua, "Android"):
		return access.PlatformAndroid
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"), strings.Contains(ua, "iPod"):
		return access.PlatformIOS
	case strings.Contains(ua, "Windows"):
		return access.PlatformWindows
	case strings.Contains(ua, "Macintosh"), strings.Contains(ua, "Mac OS X"):
		return access.PlatformMacOS
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		return access.PlatformLinux
	}
	return access.PlatformUnknown
}

// user finds the user a sign-in names in a snapshot that has every write
// committed so far: a user created, disabled or moved out of a group a
// moment ago signs in as the store says, not as an older snapshot does.
func (s *Service) user(ctx context.Context, upn string) (*directory.User, error) {
	snap := s.opts.Live.Current()
	rev, err := s.opts.Store.Revision(ctx)
	if err != nil {
		return nil, err
	}
	if rev > snap.Revision() {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if snap, err = s.opts.Live.WaitFor(wctx, rev); err != nil {
			return nil, fmt.Errorf("the directory is behind the store: %w", err)
		}
	}
	u, _ := snap.Directory().UserByUPN(upn)
	return u, nil
}
