// Package webhook posts one event to a receiver, signed as Standard
// Webhooks says (webhook-id, webhook-timestamp, webhook-signature), and
// says whether a failure may pass on another attempt. Detection's
// playbooks and PIM's notifications both deliver through it; each keeps
// its own retry schedule and what it records of a failure.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// maxAnswer bounds how much of a receiver's answer is read (and dropped).
const maxAnswer = 64 << 10

// Send posts body to u once, as the event id signed at time at with hook,
// through client (whose timeout, or ctx's deadline, bounds the attempt).
// retry reports whether a failure may pass on another attempt: no answer,
// or an answer of 5xx, 408 or 429; any other non-2xx answer — a refusal, or
// a redirect a client that follows none hands back — will not fare better. Errors never
// carry the URL: its path or query may hold the receiver's token.
func Send(ctx context.Context, client *http.Client, hook *standardwebhooks.Webhook, u, id string, at time.Time, body []byte, userAgent string) (retry bool, err error) {
	sig, err := hook.Sign(id, at, body)
	if err != nil {
		return false, errors.New("sign the event")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the URL cannot be requested")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return true, ErrNoAnswer
			}
			err = ue.Err
		}
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxAnswer))
	res.Body.Close()
	switch s := res.StatusCode; {
	case s/100 == 2:
		return false, nil
	case s/100 == 5 || s == http.StatusRequestTimeout || s == http.StatusTooManyRequests:
		return true, fmt.Errorf("the receiver answered %s", res.Status)
	default:
		return false, fmt.Errorf("the receiver answered %s", res.Status)
	}
}

// ErrNoAnswer is a receiver that did not answer in time.
var ErrNoAnswer = errors.New("no answer in time")
