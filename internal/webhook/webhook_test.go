package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/verityhq/verity/internal/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Each answer is told apart: delivered, worth another attempt, or not;
// what arrives verifies with the library's verifier, and no error names
// the URL.
func TestSend(t *testing.T) {
	t.Parallel()
	hook, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusOK {
			b := make([]byte, r.ContentLength)
			_, _ = r.Body.Read(b)
			if err := hook.Verify(b, r.Header); err != nil || r.Header.Get("webhook-id") != "evt_1" || r.UserAgent() != "Verity-Test" {
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
		}
		if status == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	u := srv.URL + "/hook?token=s3cret"
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tt := range []struct {
		status int
		retry  bool
		ok     bool
	}{
		{http.StatusOK, false, true},
		{http.StatusServiceUnavailable, true, false},
		{http.StatusTooManyRequests, true, false},
		{http.StatusRequestTimeout, true, false},
		{http.StatusBadRequest, false, false},
		{http.StatusFound, false, false},
	} {
		status = tt.status
		retry, err := webhook.Send(context.Background(), client, hook, u, "evt_1", time.Now(), []byte(`{"a":1}`), "Verity-Test")
		if (err == nil) != tt.ok || retry != tt.retry {
			t.Errorf("%d: retry %v err %v, want retry %v ok %v", tt.status, retry, err, tt.retry, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%d: the error names the URL: %v", tt.status, err)
		}
	}
	// A receiver that does not answer in time: worth another attempt.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(200 * time.Millisecond) }))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if retry, err := webhook.Send(ctx, slow.Client(), hook, slow.URL+"/?token=s3cret", "evt_2", time.Now(), []byte(`{}`), "Verity-Test"); !retry || err != webhook.ErrNoAnswer {
		t.Errorf("no answer: retry %v err %v", retry, err)
	}
	// A refused connection too, without the URL in the error.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/?token=s3cret"
	dead.Close()
	if retry, err := webhook.Send(context.Background(), http.DefaultClient, hook, deadURL, "evt_3", time.Now(), []byte(`{}`), "Verity-Test"); !retry || err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("refused: retry %v err %v", retry, err)
	}
}
