package oidc

import "testing"

func TestLoopbackMatch(t *testing.T) {
	t.Parallel()
	reg := []string{"http://127.0.0.1/callback", "http://localhost", "http://[::1]/cb", "http://127.0.0.1:8400/fixed", "com.example.app:/cb"}
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"http://127.0.0.1:50123/callback", true},
		{"http://127.0.0.1:1/callback/", true},
		{"http://localhost:8080/", true},
		{"http://[::1]:9000/cb", true},
		{"http://127.0.0.1:50123/other", false},        // another path
		{"http://127.0.0.1:50123/callback?x=1", false}, // another query
		{"http://127.0.0.1/callback", false},           // no port: only the exact registration matches
		{"https://127.0.0.1:50123/callback", false},    // not the registered scheme
		{"http://localhost:50123/callback", false},     // another host than registered for that path
		{"http://127.0.0.1:9999/fixed", false},         // registered with a port: exact only
		{"http://evil.example:80/callback", false},     // not loopback
		{"http://user@127.0.0.1:5/callback", false},    // userinfo
		{"http://127.0.0.1:5/callback#frag", false},    // fragment
		{"http://127.0.0.2:5/callback", false},         // another loopback address than registered
	} {
		if got := loopbackMatch(reg, tc.uri); got != tc.want {
			t.Errorf("loopbackMatch(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}
