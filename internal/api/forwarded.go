package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ForwardedFor makes the request's RemoteAddr the client's address when
// the connection comes from a trusted reverse proxy: the address in
// X-Forwarded-For left of the last trusted hop, read right to left (each
// proxy appends the address it received from). A connection from anyone
// else keeps its own address whatever its headers say, and a malformed
// list stops the walk at the last trusted hop — a client can add
// addresses on the left of the list, never replace the ones the trusted
// proxies wrote.
func ForwardedFor(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, port, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		peer, err := netip.ParseAddr(host)
		if err != nil || !isTrusted(peer.Unmap()) {
			next.ServeHTTP(w, r)
			return
		}
		client := peer.Unmap()
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			client = a.Unmap()
			if !isTrusted(client) {
				break
			}
		}
		if client != peer.Unmap() {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = net.JoinHostPort(client.String(), port)
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// ParsePrefixes reads addresses and CIDRs (a single address is its own
// /32 or /128).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
