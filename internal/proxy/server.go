package proxy

import (
	"log/slog"
	"net/http"
	"time"
)

// ServerOptions bound what a client may make the proxy's server wait for
// or read. Zero values take the defaults.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request's headers (slow clients):
	// default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle that long: default
	// 2 min.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers: default 64 KiB (431 past it).
	MaxHeaderBytes int
	Logger         *slog.Logger
}

// Server returns the HTTP server that serves the proxy. It has no write
// timeout: proxied responses stream (downloads, server-sent events,
// WebSockets), and the upstream's response-header timeout bounds waiting
// for them; a body is read only as fast as the upstream takes it.
func (p *Proxy) Server(o ServerOptions) *http.Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = p.log
	}
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
}
