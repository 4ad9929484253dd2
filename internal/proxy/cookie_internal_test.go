package proxy

import (
	"fmt"
	"testing"
	"unsafe"
)

// TestCookieCacheBound: the opened-cookie cache starts over when full, and
// keeps its own copy of each value.
func TestCookieCacheBound(t *testing.T) {
	t.Parallel()
	var c cookieCache
	header := "other=" + string(make([]byte, 1000)) + "; __Host-verity-proxy=abc"
	value := header[len(header)-3:]
	c.put(cookieKey{host: "a.example", value: value}, sessionRef{SessionID: "s1"})
	for k := range c.entries {
		if unsafe.StringData(k.value) == unsafe.StringData(value) {
			t.Fatal("the cache holds the request's header")
		}
	}
	if ref, ok := c.get(cookieKey{host: "a.example", value: "abc"}); !ok || ref.SessionID != "s1" {
		t.Fatalf("get: %+v %v", ref, ok)
	}
	if _, ok := c.get(cookieKey{host: "b.example", value: "abc"}); ok {
		t.Fatal("a cookie of one host served another")
	}
	for i := range maxCookieCache + 10 {
		c.put(cookieKey{host: "a.example", value: fmt.Sprint(i)}, sessionRef{SessionID: "s"})
	}
	if n := len(c.entries); n > maxCookieCache {
		t.Fatalf("%d entries, bound %d", n, maxCookieCache)
	}
}
