package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// runUpstream serves a static 200 "ok" with keep-alive: the application
// every configuration forwards to, so that what differs is the proxy.
func runUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18080", "listen address")
	_ = fs.Parse(args)
	body := []byte("ok")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	return serve(*addr, h, nil)
}

// runReverseProxy is a plain httputil.ReverseProxy tuned the way a
// careful operator would: an idle pool sized for the load (Go's default
// of two idle connections per host redials under 64 connections) and
// pooled copy buffers.
func runReverseProxy(args []string) error {
	fs := flag.NewFlagSet("reverseproxy", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18081", "listen address")
	upstream := fs.String("upstream", "http://127.0.0.1:18080", "upstream base URL")
	idle := fs.Int("idle", 256, "idle upstream connections kept")
	certFile := fs.String("cert", "", "TLS certificate (optional)")
	keyFile := fs.String("key", "", "TLS key")
	_ = fs.Parse(args)
	up, err := url.Parse(*upstream)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        *idle,
			MaxIdleConnsPerHost: *idle,
			IdleConnTimeout:     90 * time.Second,
		},
		// Copy buffers from a pool, not 32 KiB allocated per response.
		BufferPool: bufferPool{},
		// A client that goes away (wrk at the end of a run) is no error.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.Is(err, context.Canceled) {
				w.WriteHeader(http.StatusBadGateway)
			}
		},
	}
	var tlsConf *tls.Config
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return err
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	return serve(*addr, rp, tlsConf)
}

// bufferPool lends the reverse proxy its copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// serve runs h on addr until SIGTERM or SIGINT.
func serve(addr string, h http.Handler, tlsConf *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runPorts prints n free loopback ports, one a line. They are free when
// asked; the script starts its servers on them at once.
func runPorts(args []string) error {
	fs := flag.NewFlagSet("ports", flag.ExitOnError)
	n := fs.Int("n", 1, "how many")
	_ = fs.Parse(args)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range *n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
