package proxy

import (
	"net/http"
	"strings"
)

// normalPath returns the request's path when it is in normal form, or
// why it is refused. A route and its rules are chosen on this path, and
// the upstream gets the same bytes, so nothing an upstream would decode
// or fold differently may pass: encoded slashes and backslashes, dot
// segments (also when percent-encoded), empty segments, NUL and control
// characters are refused rather than rewritten.
func normalPath(r *http.Request) (string, string) {
	if r.URL.Opaque != "" || (r.Method != http.MethodConnect && !strings.HasPrefix(r.URL.Path, "/")) {
		return "", "The request target must be an absolute path."
	}
	if raw := strings.ToLower(r.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(raw, "%00") {
		return "", "The path holds an encoded slash, backslash or NUL."
	}
	p := r.URL.Path
	if len(p) > maxPath {
		return "", "The path is too long."
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", "The path holds a control character or a backslash."
		}
	}
	if strings.Contains(p, "//") {
		return "", "The path holds an empty segment (//)."
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return "", "The path holds a dot segment (. or ..)."
		}
	}
	return p, ""
}

// maxPath bounds a request path.
const maxPath = 8 << 10
