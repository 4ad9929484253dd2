package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/api"
	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/bootstrap"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/geo"
	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/localca"
	"github.com/verityhq/verity/internal/oidc"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/proxy"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/version"
)

// nodeOptions are the differences between `verity up`, `verity server`
// and `verity proxy`.
type nodeOptions struct {
	// devTLS generates a local CA when no certificate files are configured.
	devTLS bool
	// proxyOnly serves the identity-aware proxy and, on http.addr, only
	// /healthz, /readyz and /metrics: no API, sign-in or OpenID Connect
	// provider, no bootstrap administrator.
	proxyOnly bool
	out       io.Writer // where the start banner and bootstrap credential go
}

// runNode wires one Verity node together and serves until ctx ends, then
// shuts down gracefully: in-flight requests finish, the store closes last.
func runNode(ctx context.Context, cfg config.Config, opts nodeOptions, logOut io.Writer) error {
	log := newLogger(cfg.Log, logOut)
	// Libraries that log through the default logger (the OIDC protocol
	// library does) write where the node does.
	slog.SetDefault(log)
	log.Info("starting verity", "version", version.String(), "store", storeConfig(cfg), "proxyOnly", opts.proxyOnly)
	if opts.proxyOnly {
		switch {
		case cfg.Proxy.Addr == "":
			return errors.New("proxy.addr: verity proxy needs the proxy's listen address")
		case cfg.Proxy.SignInURL == "":
			return errors.New("proxy.signInURL: verity proxy serves no sign-in; set the external URL of the Verity nodes that do")
		}
	}
	// Detection's settings and playbooks before anything is opened: a
	// mistake there stops the node at once.
	detectors, err := detection(cfg.Detect)
	if err != nil {
		return err
	}
	var pimSecret string
	if f := cfg.PIM.Notifications.WebhookSecretFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("pim.notifications.webhookSecretFile: %w", err)
		}
		pimSecret = strings.TrimSpace(string(b))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}

	var tlsFiles localca.Files
	switch {
	case cfg.HTTP.TLS.Disable:
	case cfg.HTTP.TLS.CertFile != "":
		tlsFiles = localca.Files{ServerCert: cfg.HTTP.TLS.CertFile, ServerKey: cfg.HTTP.TLS.KeyFile}
	case opts.devTLS:
		var err error
		// *.localhost: apps published through the proxy (browsers resolve
		// every name under localhost to the loopback address).
		tlsFiles, err = localca.Ensure(filepath.Join(cfg.DataDir, "tls"), []string{"localhost", "*.localhost", "127.0.0.1", "::1"})
		if err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
	default:
		return errors.New("http.tls: set certFile and keyFile, or set disable: true behind a TLS-terminating proxy")
	}

	st, err := store.Open(ctx, storeConfig(cfg), log)
	if err != nil {
		return err
	}
	defer st.Close()

	var boot *bootstrap.Result
	if !opts.proxyOnly {
		if boot, err = bootstrap.Admin(ctx, st); err != nil {
			return err
		}
		if err := bootstrap.CLIClient(ctx, st); err != nil {
			return err
		}
	}

	masterKey, oldKeys, err := keyring.LoadOrCreateMasterKey(cfg.Secrets.MasterKeyFile)
	if err != nil {
		return fmt.Errorf("secrets.masterKeyFile: %w", err)
	}
	keys, err := keyring.Open(ctx, st, masterKey, keyring.Options{Algorithm: jose.SignatureAlgorithm(cfg.Signing.Algorithm),
		RotateEvery: cfg.Signing.RotateEvery.D(), OldMasterKeys: oldKeys, Logger: log})
	if err != nil {
		return err
	}

	auditLog, err := audit.Open(ctx, st, keys, audit.Options{Logger: log})
	if err != nil {
		return err
	}

	var geoDB *geo.DB
	if cfg.Geo.MMDBFile != "" {
		if geoDB, err = geo.Open(cfg.Geo.MMDBFile); err != nil {
			return fmt.Errorf("geo.mmdbFile: %w", err)
		}
		defer geoDB.Close()
		log.Info("geolocation database loaded", "file", cfg.Geo.MMDBFile, "type", geoDB.DatabaseType())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	revisionGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "verity_snapshot_revision", Help: "Store revision of the snapshot in use."})
	buildSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "verity_snapshot_build_seconds", Help: "Time to build a snapshot.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	reg.MustRegister(revisionGauge, buildSeconds)
	live, err := decision.NewLive(ctx, st, log, func(s *decision.Snapshot, took time.Duration) {
		revisionGauge.Set(float64(s.Revision()))
		buildSeconds.Observe(took.Seconds())
	})
	if err != nil {
		return err
	}
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFeed()
	go live.Run(feedCtx, cfg.Store.PollInterval.D())

	go keys.Run(feedCtx, 0)
	go auditLog.Run(feedCtx, cfg.Audit.CheckpointInterval.D())
	// Detection reads the audit log — sign-ins and directory changes —
	// and answers with the playbooks (docs/detect.md).
	engine := detect.NewEngine(st, detectors.signIns, log)
	engine.NewAuditDetectors = detectors.audit
	engine.Responder = detect.NewResponder(st, nodeActions{st}, detectors.playbooks, log)
	engine.Responder.DryRun = cfg.Detect.DryRun
	engine.Privileged = func(userID string) bool { return privileged(live.Current(), userID) }
	go engine.Run(feedCtx, time.Second)
	// Just-in-time roles: pending requests time out, ended activations
	// leave the listings (decisions stop honouring them at their end).
	pimSweeper := pim.New(st)
	go pimSweeper.Run(feedCtx, 30*time.Second, func(err error) { log.Error("pim: sweep", "err", err) })
	// Access reviews: instances start and end on time; denials are applied
	// under the admin API's own rule for deletes; ended instances go after
	// the retention (docs/access-reviews.md).
	reviews := pim.NewReviews(pimSweeper, api.RemovalGuard)
	reviews.Retention = cfg.PIM.ReviewRetention.D()
	go reviews.Run(feedCtx, 30*time.Second, func(err error) { log.Error("access reviews: sweep", "err", err) })
	// PIM events go to the webhooks roles' settings name, with the people
	// to tell: the administrators are who may manage the role's
	// assignments, as the API checks it.
	notifier, err := pim.NewNotifier(st, pim.NotifierOptions{Secret: pimSecret, Timeout: cfg.PIM.Notifications.Timeout.D(),
		Attempts: cfg.PIM.Notifications.Attempts}, log)
	if err != nil {
		return fmt.Errorf("pim.notifications.webhookSecretFile: %w", err)
	}
	notifier.Directory = func() *directory.Snapshot { return live.Current().Directory() }
	notifier.Admins = func(roleKind, scope string) []string {
		eng, err := live.Current().RBAC()
		if err != nil {
			return nil
		}
		if roleKind == pim.RoleKindDirectory {
			scope = "/directory"
		}
		return eng.WhoCan("Microsoft.Authorization/roleAssignments/write", scope, false, time.Time{})
	}
	go notifier.Run(feedCtx, time.Second)
	// Just-in-time network access: ended requests are recorded as expired
	// and, after the retention, removed (the proxy closes ports at their
	// end without waiting for this).
	go jit.New(st).Run(feedCtx, 30*time.Second, func(err error) { log.Error("jit: sweep", "err", err) })
	if len(detectors.playbooks) > 0 {
		log.Info("automated responses", "playbooks", len(detectors.playbooks), "dryRun", cfg.Detect.DryRun)
	}
	assessor := detect.NewAssessor(st, detect.RealtimeOptionsOf(detectors.signIns()))
	if r := cfg.Audit.Retention.D(); r > 0 {
		go audit.RunRetention(feedCtx, st, r, time.Hour, log)
	}
	if len(cfg.Audit.Sinks) > 0 {
		sinks, err := auditSinks(cfg.Audit.Sinks)
		if err != nil {
			return err
		}
		go audit.NewExporter(st, sinks, log).Run(feedCtx)
		log.Info("audit log export", "sinks", len(sinks))
	}

	// The listener first: the sign-in pages and the OIDC provider need the
	// URL browsers use (the passkey relying party, the issuer).
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	url := listenURL(cfg, ln.Addr())
	// Where browsers sign in: this node, unless proxy.signInURL names the
	// nodes that serve sign-in (always so for a proxy-only node).
	signInURL := url
	if cfg.Proxy.SignInURL != "" {
		signInURL = strings.TrimSuffix(cfg.Proxy.SignInURL, "/")
	}
	opsURL := url
	if opts.proxyOnly {
		url = signInURL
	}
	var tlsConfig *tls.Config
	if tlsFiles.ServerCert != "" {
		cert, err := tls.LoadX509KeyPair(tlsFiles.ServerCert, tlsFiles.ServerKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, tlsConfig)
	}

	policy := authn.DefaultPasswordPolicy()
	if cfg.Auth.BreachedPasswordsFile != "" {
		list, err := authn.OpenBreachedList(cfg.Auth.BreachedPasswordsFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("auth.breachedPasswordsFile: %w", err)
		}
		defer list.Close()
		policy.BreachedList = list
		log.Info("breached password list loaded", "file", cfg.Auth.BreachedPasswordsFile)
	}
	risk := detect.NewRiskCache(st)
	signinOpts := signin.Options{Store: st, Live: live, Sealer: keys, Logger: log, AppID: api.AdminAPIAppID,
		MaxFailures: cfg.Auth.MaxFailedLogins, LockDuration: cfg.Auth.LockoutDuration.D(), ExternalURL: url,
		PasswordPolicy: policy, UserRisk: userRisk(risk, log), SignInRisk: signInRisk(assessor, log),
		UserRiskRemediated: func(ctx context.Context, userID, detail string) error {
			_, err := detect.RemediateUserRisk(ctx, st, userID, detail)
			return err
		}}
	if geoDB != nil {
		signinOpts.Countries = geoDB
		signinOpts.Locate = locate(geoDB)
	}
	pages, err := signin.New(signinOpts)
	if err != nil {
		ln.Close()
		return fmt.Errorf("http.externalURL: %w", err)
	}
	// The OpenID Connect provider needs an https issuer: behind a
	// TLS-terminating proxy, http.externalURL says the https URL.
	var provider *oidc.Provider
	if strings.HasPrefix(url, "https://") {
		oidcOpts := oidc.Options{Issuer: url, Store: st, Live: live, Keyring: keys, SignIn: pages, Logger: log}
		if geoDB != nil {
			oidcOpts.Countries = geoDB
		}
		if provider, err = oidc.New(oidcOpts); err != nil {
			ln.Close()
			return err
		}
	} else {
		log.Warn("the OpenID Connect provider is off: it needs an https external URL (set http.externalURL behind a TLS-terminating proxy)", "url", url)
	}
	apiOpts := api.Options{
		Store: st, Live: live, Logger: log, Registry: reg,
		HTTP: cfg.HTTP, Auth: cfg.Auth, Version: version.String(), Geo: geoDB, SignIn: pages, Sealer: keys,
		PasswordPolicy: policy, AuditLog: auditLog, AuditWitnesses: cfg.Audit.Witnesses,
	}
	if provider != nil {
		// verity login --web: the CLI's access tokens work on the API.
		apiOpts.AccessTokens, apiOpts.AccessTokenClient = provider, bootstrap.CLIAppID
	}
	srv := api.New(apiOpts)
	handler := srv.OpsHandler()
	if !opts.proxyOnly {
		srv.Mount("/signin", pages.Handler())
		srv.Mount("/signin/", pages.Handler())
		if provider != nil {
			srv.Mount("/.well-known/openid-configuration", provider.Handler())
			srv.Mount("/oauth2/", provider.Handler())
		}
		handler = srv.Handler()
	}

	// Behind a load balancer: the client's address from X-Forwarded-For,
	// believed only from http.trustedProxies.
	trusted, err := api.ParsePrefixes(cfg.HTTP.TrustedProxies)
	if err != nil {
		ln.Close()
		return fmt.Errorf("http.trustedProxies: %w", err)
	}
	handler = api.ForwardedFor(trusted, handler)
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.HTTP.ReadTimeout.D(),
		WriteTimeout:      cfg.HTTP.WriteTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}

	// The identity-aware proxy, on its own listener: the published app
	// routes' hosts point at it.
	served := make(chan error, 2)
	var pxSrv *http.Server
	proxyURL := ""
	if cfg.Proxy.Addr != "" {
		pc := cfg.Proxy
		pxOpts := proxy.Options{Store: st, Live: live, Sessions: pages, Keys: keys, SignInURL: signInURL,
			AuditFailOpen: pc.AuditFailOpen, MaxBodyBytes: pc.MaxBodyBytes, Logger: log,
			PerIP:       proxy.RateLimit{PerSecond: pc.RateLimit.PerIP.RequestsPerSecond, Burst: pc.RateLimit.PerIP.Burst},
			PerIdentity: proxy.RateLimit{PerSecond: pc.RateLimit.PerIdentity.RequestsPerSecond, Burst: pc.RateLimit.PerIdentity.Burst}}
		if pxOpts.UpstreamTLS, err = upstreamTLS(pc.UpstreamTLS); err != nil {
			ln.Close()
			return err
		}
		if provider != nil {
			// The provider's access tokens are credentials at the proxy.
			pxOpts.Bearer = func(ctx context.Context, token string) (proxy.BearerToken, error) {
				i, err := provider.InspectAccessToken(ctx, token)
				return proxy.BearerToken{Subject: i.Subject, App: i.App, Audience: i.Audience, Methods: i.Methods,
					AuthTime: i.AuthTime, MFATime: i.MFATime, Expiry: i.Expiry}, err
			}
		}
		px, err := proxy.New(pxOpts)
		if err != nil {
			ln.Close()
			return err
		}
		defer px.Close()
		reg.MustRegister(px.Metrics())
		pxLn, err := net.Listen("tcp", cfg.Proxy.Addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("proxy: listen on %s: %w", cfg.Proxy.Addr, err)
		}
		proxyURL = "http://" + pxLn.Addr().String()
		// Behind a TLS-terminating proxy (http.tls.disable) without
		// certificates of its own, the proxy is served in plain HTTP too.
		if !cfg.Proxy.TLS.Disable && !(cfg.HTTP.TLS.Disable && cfg.Proxy.TLS.CertFile == "") {
			files := tlsFiles
			if cfg.Proxy.TLS.CertFile != "" {
				files = localca.Files{ServerCert: cfg.Proxy.TLS.CertFile, ServerKey: cfg.Proxy.TLS.KeyFile}
			}
			if files.ServerCert == "" {
				ln.Close()
				pxLn.Close()
				return errors.New("proxy.tls: set certFile and keyFile for the routes' hosts, or disable: true behind a TLS-terminating proxy")
			}
			cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
			if err != nil {
				ln.Close()
				pxLn.Close()
				return fmt.Errorf("proxy: load TLS certificate: %w", err)
			}
			pxTLS := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
			if pc.ClientCertificates == "request" {
				// Any certificate: it is matched exactly against the
				// applications' keyCredentials, as Entra matches them.
				pxTLS.ClientAuth = tls.RequestClientCert
			}
			pxLn = tls.NewListener(pxLn, pxTLS)
			proxyURL = "https://" + pxLn.Addr().String()
		}
		pxSrv = px.Server(proxy.ServerOptions{ReadHeaderTimeout: pc.ReadHeaderTimeout.D(), MaxHeaderBytes: pc.MaxHeaderBytes, Logger: log})
		go func() { served <- pxSrv.Serve(pxLn) }()
		log.Info("the identity-aware proxy is serving", "addr", pxLn.Addr().String())
	}

	go func() { served <- httpSrv.Serve(ln) }()
	log.Info("verity is serving", "url", opsURL, "revision", live.Current().Revision())
	if opts.proxyOnly {
		fmt.Fprintf(opts.out, "\nVerity %s proxy is ready.\n\n  Proxy:       %s\n  Sign-in at:  %s/signin\n  Operations:  %s/healthz, /readyz, /metrics\n\n",
			version.String(), proxyURL, signInURL, opsURL)
	} else {
		printBanner(opts.out, url, proxyURL, tlsFiles.CACert, boot)
	}

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.HTTP.ShutdownTimeout.D().String())
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout.D())
	defer cancel()
	if pxSrv != nil {
		pxCtx, cancelPx := context.WithTimeout(context.Background(), cfg.Proxy.ShutdownTimeout.D())
		defer cancelPx()
		go func() {
			if err := pxSrv.Shutdown(pxCtx); err != nil {
				_ = pxSrv.Close()
			}
		}()
	}
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		log.Warn("shutdown did not finish in time; closing connections", "err", err)
		_ = httpSrv.Close()
	}
	stopFeed()
	log.Info("verity stopped")
	return nil
}

// upstreamTLS is the proxy's TLS configuration towards upstreams: the
// system's roots plus caFile's, and the client certificate for mutual
// TLS; nil when nothing is configured.
func upstreamTLS(c config.UpstreamTLS) (*tls.Config, error) {
	return clientTLS(c, "proxy.upstreamTLS")
}

// clientTLS is a client's TLS configuration from c (what names it in
// errors): roots besides the system's and a client certificate; nil when
// nothing is configured.
func clientTLS(c config.UpstreamTLS, what string) (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.caFile: %w", what, err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.caFile: %s holds no PEM certificate", what, c.CAFile)
		}
		cfg.RootCAs = roots
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// listenURL is the configured external URL, or the real listen address
// when the port was chosen by the system (":0").
func listenURL(cfg config.Config, addr net.Addr) string {
	_, port, _ := net.SplitHostPort(cfg.HTTP.Addr)
	if port != "0" {
		return cfg.HTTP.ExternalURL
	}
	scheme := "https"
	if cfg.HTTP.TLS.Disable {
		scheme = "http"
	}
	return scheme + "://" + addr.String()
}

func storeConfig(cfg config.Config) store.Config {
	return store.Config{
		DSN:             cfg.Store.DSN,
		ConnectTimeout:  cfg.Store.ConnectTimeout.D(),
		PollInterval:    cfg.Store.PollInterval.D(),
		MaxConns:        cfg.Store.MaxConns,
		ChangeRetention: cfg.Store.ChangeRetention,
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// printBanner tells a person where Verity is and how to sign in. The
// bootstrap password appears here once and nowhere else: not in the log,
// not in the database.
func printBanner(w io.Writer, url, proxyURL, caFile string, boot *bootstrap.Result) {
	fmt.Fprintf(w, "\nVerity %s is ready.\n\n  Sign-in:     %s/signin\n  Admin API:   %s/api/v1/\n", version.String(), url, url)
	if proxyURL != "" {
		fmt.Fprintf(w, "  Proxy:       %s (publish an app with POST %s/api/v1/appRoutes; docs/proxy.md)\n", proxyURL, url)
	}
	if u, err := neturl.Parse(url); err == nil {
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.IsLoopback() {
			// A passkey belongs to a domain, never an address.
			fmt.Fprintf(w, "  Passkeys:    sign in at %s://%s/signin\n", u.Scheme, net.JoinHostPort("localhost", u.Port()))
		}
	}
	if caFile != "" {
		fmt.Fprintf(w, "  CA to trust: %s\n", caFile)
	}
	login := "verity login --server " + url
	if caFile != "" {
		login += " --ca " + caFile
	}
	if boot != nil {
		fmt.Fprintf(w, `
  First start: a one-time bootstrap administrator was created.
  It is shown only now; the database keeps only its hash.

    user:      %s
    password:  %s

  Sign in:     %s --user %s
`, boot.UserPrincipalName, boot.Password, login, boot.UserPrincipalName)
	} else {
		fmt.Fprintf(w, "\n  Sign in:     %s --user <your user principal name>\n", login)
	}
	fmt.Fprintln(w)
}

// auditSinks builds the configured audit log sinks.
func auditSinks(list config.AuditSinks) ([]audit.Sink, error) {
	var out []audit.Sink
	for i, c := range list {
		what := fmt.Sprintf("audit.sinks[%d]", i)
		tlsConf, err := clientTLS(c.TLS, what+".tls")
		if err != nil {
			return nil, err
		}
		switch c.Type {
		case "file":
			fs, err := audit.NewFileSink(c.Path)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, fs)
		case "syslog":
			if !c.Plain {
				if tlsConf == nil {
					tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
				}
				host, _, _ := net.SplitHostPort(c.Address)
				tlsConf.ServerName = host
			} else {
				tlsConf = nil
			}
			out = append(out, audit.NewSyslogSink(c.Name, c.Address, tlsConf))
		case "otlp":
			out = append(out, audit.NewOTLPSink(c.Name, c.URL, c.Headers, tlsConf))
		}
	}
	return out, nil
}

// userRisk gives conditional access the users' risk the detectors raised;
// a store that cannot answer counts as no risk (the decision's other
// reads fail closed first).
func userRisk(c *detect.RiskCache, log *slog.Logger) func(ctx context.Context, userID string) access.RiskLevel {
	return func(ctx context.Context, userID string) access.RiskLevel {
		level, err := c.Level(ctx, userID)
		if err != nil {
			log.WarnContext(ctx, "user risk unavailable", "user", userID, "err", err)
		}
		return riskLevel(level)
	}
}

// signInRisk judges sign-ins in flight with the detectors' rules; a log
// that cannot be read leaves the attempt judged on itself alone.
func signInRisk(a *detect.Assessor, log *slog.Logger) func(ctx context.Context, ev *signin.Event) signin.RiskAssessment {
	return func(ctx context.Context, ev *signin.Event) signin.RiskAssessment {
		b, err := json.Marshal(ev)
		if err != nil {
			return signin.RiskAssessment{}
		}
		r, err := a.Assess(ctx, b)
		if err != nil {
			log.WarnContext(ctx, "sign-in risk: the user's sign-ins are unavailable", "user", ev.UserID, "err", err)
		}
		return signin.RiskAssessment{Level: riskLevel(r.Level), EventTypes: r.EventTypes}
	}
}

// riskLevel is conditional access's risk level of detect's level names.
func riskLevel(level string) access.RiskLevel {
	switch level {
	case "low":
		return access.RiskLow
	case "medium":
		return access.RiskMedium
	case "high":
		return access.RiskHigh
	}
	return access.RiskNone
}

// locate gives the sign-in log a city, coordinates and network from the
// geolocation database.
func locate(db *geo.DB) func(addr netip.Addr) (signin.Location, int, bool) {
	return func(addr netip.Addr) (signin.Location, int, bool) {
		l, err := db.Locate(addr)
		if err != nil || l.Country == "" && l.ASN == 0 {
			return signin.Location{}, 0, false
		}
		out := signin.Location{City: l.City, State: l.State, CountryOrRegion: l.Country}
		if l.HasCoordinates {
			out.GeoCoordinates = &signin.GeoCoordinates{Latitude: l.Latitude, Longitude: l.Longitude}
		}
		return out, int(l.ASN), true
	}
}

// privileged reports whether a user holds a privileged directory role or
// may grant roles on the whole of Verity (Owner, User Access
// Administrator) now.
func privileged(snap *decision.Snapshot, userID string) bool {
	for _, id := range snap.Directory().DirectoryRoles(userID) {
		if r, ok := directory.RoleByID(id); ok && r.IsPrivileged {
			return true
		}
	}
	return snap.AdminAccess(userID) == decision.WriteAccess
}
