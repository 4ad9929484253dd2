package oidc_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// TestConsentForApplicationsOfOtherTenants: an application the tenant did
// not register for itself alone asks the user's consent once, remembers
// it, and asks again for prompt=consent; declining ends the flow with
// access_denied. The tenant's own applications never ask (the other tests).
func TestConsentForApplicationsOfOtherTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rev, err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		o, err := tx.GetByKey(ctx, directory.KindApplication, webApp)
		if err != nil {
			return err
		}
		app, err := directory.Applications.Decode(o.Body)
		if err != nil {
			return err
		}
		app.SignInAudience = directory.AudienceMultipleOrgs
		no, err := directory.Applications.Object(app)
		if err != nil {
			return err
		}
		return tx.Put(ctx, no)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.live.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
	c := e.browser()
	consent := func(page, decision string) (*url.URL, string) {
		t.Helper()
		if !strings.Contains(page, "Payroll</strong> asks to:") || !strings.Contains(page, "Sign you in") {
			t.Fatalf("no consent page:\n%s", page)
		}
		m := csrfRe.FindStringSubmatch(page)
		rt := returnToRe.FindStringSubmatch(page)
		scopes := regexp.MustCompile(`name="scopes" value="([^"]+)"`).FindStringSubmatch(page)
		f := url.Values{"csrf": {m[1]}, "return_to": {htmlUnescape(rt[1])}, "app": {webApp}, "scopes": {scopes[1]}, "decision": {decision}}
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/signin/consent", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.srv.URL)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.Request.URL, ""
	}
	a := e.web()
	_, _, page := e.authorize(c, a)
	if u, _ := consent(page, "deny"); u.Query().Get("error") != "access_denied" || u.Query().Get("state") != a.state {
		t.Fatalf("declined consent ended at %s", u)
	}
	a = e.web()
	_, _, page = e.get(c, a.url(e.issuer))
	if u, _ := consent(page, "allow"); u.Query().Get("code") == "" {
		t.Fatalf("accepted consent ended at %s", u)
	}
	// Remembered.
	a = e.web()
	if u, _, body := e.get(c, a.url(e.issuer)); u.Query().Get("code") == "" {
		t.Fatalf("a remembered consent was asked again: %s\n%s", u, body)
	}
	// prompt=consent asks again.
	e.clock.Add(time.Second)
	a = e.web()
	a.extra = url.Values{"prompt": {"consent"}}
	_, _, page = e.get(c, a.url(e.issuer))
	if u, _ := consent(page, "allow"); u.Query().Get("code") == "" {
		t.Fatalf("prompt=consent ended at %s", u)
	}
	// prompt=none for a user who has not consented: consent_required.
	if _, err := e.st.DeleteRecords(ctx, "consent", aliceID); err != nil {
		t.Fatal(err)
	}
	a = e.web()
	a.extra = url.Values{"prompt": {"none"}}
	if u, _, _ := e.get(c, a.url(e.issuer)); u.Query().Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent ended at %s", u)
	}
}
