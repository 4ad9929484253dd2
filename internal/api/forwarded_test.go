package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestForwardedFor(t *testing.T) {
	t.Parallel()
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := ForwardedFor(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	for _, c := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer keeps its address", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9:5000"},
		{"trusted peer, one hop", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1:5000"},
		{"client-written entries on the left are ignored", "10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1:5000"},
		{"two trusted hops", "192.0.2.1:443", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1:443"},
		{"headers joined in order", "192.0.2.1:443", []string{"198.51.100.1", "10.9.9.9"}, "198.51.100.1:443"},
		{"garbage stops at the last trusted hop", "10.1.2.3:5000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3:5000"},
		{"all trusted: the leftmost", "10.1.2.3:5000", []string{"10.4.4.4"}, "10.4.4.4:5000"},
		{"no header", "10.1.2.3:5000", nil, "10.1.2.3:5000"},
		{"IPv6 client", "10.1.2.3:5000", []string{"2001:db8::1"}, "[2001:db8::1]:5000"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != c.want {
			t.Errorf("%s: RemoteAddr %s, want %s", c.name, seen, c.want)
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
	if p, _ := ParsePrefixes([]string{"::ffff:192.0.2.1"}); p[0] != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("mapped address: %v", p)
	}
}
