package directory

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// storeApp writes an application registration made now and returns it as
// the store gives it back.
func storeApp(t *testing.T, st store.Store, id, appID string) *Application {
	t.Helper()
	a := &Application{ID: id, AppID: appID, DisplayName: "App " + appID[:4]}
	a.SetCreatedDateTime(time.Now())
	o := object(t, a)
	if _, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, o) }); err != nil {
		t.Fatal(err)
	}
	back, err := Applications.FromObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func deleteApp(t *testing.T, st store.Store, id string) {
	t.Helper()
	if _, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error { return tx.Delete(ctx, KindApplication, id) }); err != nil {
		t.Fatal(err)
	}
}

func addSecret(t *testing.T, st store.Store, app *Application, req PasswordCredentialRequest) (PasswordCredential, string) {
	t.Helper()
	cred, secret, err := AddClientSecret(context.Background(), st, app, req)
	if err != nil {
		t.Fatalf("AddClientSecret: %v", err)
	}
	return cred, secret
}

func wantInvalid(t *testing.T, st store.Store, appID, secret, why string) {
	t.Helper()
	if err := VerifyClientSecret(context.Background(), st, appID, secret); !errors.Is(err, ErrInvalidClientSecret) {
		t.Errorf("%s: VerifyClientSecret = %v; want ErrInvalidClientSecret", why, err)
	}
}

var secretShape = regexp.MustCompile(`^[A-Za-z0-9_-]{3}~vcs~[A-Za-z0-9_-]{43}$`)

func TestClientSecretLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	app := storeApp(t, st, id("a", 1), id("x", 1))
	other := storeApp(t, st, id("a", 2), id("x", 2))

	before := time.Now()
	cred, secret := addSecret(t, st, app, PasswordCredentialRequest{DisplayName: "prod"})
	if !secretShape.MatchString(secret) || cred.Hint != secret[:3] || !IsGUID(cred.KeyID) || cred.DisplayName != "prod" {
		t.Fatalf("credential %+v, secret %q", cred, secret)
	}
	if life := cred.EndDateTime.Sub(cred.StartDateTime); cred.StartDateTime.Before(before.Add(-time.Second)) || life != DefaultClientSecretLifetime {
		t.Errorf("validity %v to %v; want from now for %v", cred.StartDateTime, cred.EndDateTime, DefaultClientSecretLifetime)
	}
	_, secret2 := addSecret(t, st, app, PasswordCredentialRequest{})
	if secret2 == secret || secret2[8:] == secret[8:] {
		t.Fatal("two secrets share their random part")
	}

	// Only the hash is stored, and the record expires with the secret.
	rec, err := st.GetRecord(ctx, KindClientSecret, cred.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Body), secret) || strings.Contains(string(rec.Body), secret[8:]) || rec.Subject != app.AppID || !rec.ExpiresAt.Equal(cred.EndDateTime) {
		t.Errorf("record %s %+v", rec.Body, rec)
	}

	list, err := ClientSecrets(ctx, st, app)
	if err != nil || len(list) != 2 || list[0] != cred {
		t.Fatalf("ClientSecrets = %+v, %v; want the two, %+v first", list, err, cred)
	}
	if list, _ := ClientSecrets(ctx, st, other); len(list) != 0 {
		t.Errorf("the other application lists %+v", list)
	}

	for _, s := range []string{secret, secret2} {
		if err := VerifyClientSecret(ctx, st, app.AppID, s); err != nil {
			t.Errorf("VerifyClientSecret: %v", err)
		}
	}
	if err := VerifyClientSecret(ctx, st, strings.ToUpper(app.AppID), secret); err != nil {
		t.Errorf("VerifyClientSecret with an upper-case appId: %v", err)
	}
	changed := "A"
	if strings.HasSuffix(secret, "A") {
		changed = "B" // a changed secret must differ
	}
	wantInvalid(t, st, app.AppID, secret[:len(secret)-1]+changed, "a changed secret")
	wantInvalid(t, st, app.AppID, secret+"A", "a longer secret")
	wantInvalid(t, st, app.AppID, "", "no secret")
	wantInvalid(t, st, app.AppID, strings.Repeat("A", 10000), "a huge secret")
	wantInvalid(t, st, other.AppID, secret, "another application's secret")
	wantInvalid(t, st, id("x", 9), secret, "an unknown appId")

	// Removing is per application and per key id.
	if err := RemoveClientSecret(ctx, st, other, cred.KeyID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("remove through another application: %v", err)
	}
	if err := RemoveClientSecret(ctx, st, app, strings.ToUpper(cred.KeyID)); err != nil {
		t.Fatalf("RemoveClientSecret: %v", err)
	}
	wantInvalid(t, st, app.AppID, secret, "a removed secret")
	if err := VerifyClientSecret(ctx, st, app.AppID, secret2); err != nil {
		t.Errorf("the other secret stopped working: %v", err)
	}
	if err := RemoveClientSecret(ctx, st, app, cred.KeyID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if err := RemoveClientSecret(ctx, st, app, id("x", 7)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("remove an unknown key id: %v", err)
	}
}

// TestClientSecretOutlivesNoRegistration: a registration deleted and made
// again with the same appId, even with the same id, does not inherit the
// old registration's secrets.
func TestClientSecretOutlivesNoRegistration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	app := storeApp(t, st, id("a", 1), id("x", 1))
	_, secret := addSecret(t, st, app, PasswordCredentialRequest{})
	deleteApp(t, st, app.ID)
	wantInvalid(t, st, app.AppID, secret, "the application is gone")

	again := storeApp(t, st, id("a", 1), id("x", 1)) // a later createdDateTime
	wantInvalid(t, st, again.AppID, secret, "same id and appId, new registration")
	if list, err := ClientSecrets(ctx, st, again); err != nil || len(list) != 0 {
		t.Errorf("the new registration lists %+v, %v", list, err)
	}
	deleteApp(t, st, again.ID)
	renamed := storeApp(t, st, id("a", 2), id("x", 1))
	wantInvalid(t, st, renamed.AppID, secret, "same appId, another id")

	if n, err := DeleteClientSecrets(ctx, st, strings.ToUpper(app.AppID)); err != nil || n != 1 {
		t.Errorf("DeleteClientSecrets = %d, %v; want 1", n, err)
	}
}

// TestClientSecretValidity checks secrets outside their validity window,
// whether the store or only the record body knows it.
func TestClientSecretValidity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	app := storeApp(t, st, id("a", 1), id("x", 1))
	now := time.Now().UTC()
	put := func(secret string, start, end, expires time.Time) {
		t.Helper()
		sum := sha256Sum(secret)
		body, _ := json.Marshal(clientSecretRecord{ApplicationID: app.ID, ApplicationCreated: app.CreatedDateTime, Hash: sum,
			Hint: secret[:3], StartDateTime: start, EndDateTime: end})
		if _, err := st.PutRecord(ctx, store.Record{Kind: KindClientSecret, ID: NewID(), Subject: app.AppID, Body: body, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	put("expired-in-body", now.Add(-2*time.Hour), now.Add(-time.Hour), time.Time{})
	put("expired-in-store", now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-time.Hour))
	put("not-yet-valid", now.Add(time.Hour), now.Add(2*time.Hour), now.Add(2*time.Hour))
	put("valid", now.Add(-time.Minute), now.Add(time.Hour), now.Add(time.Hour))
	for _, s := range []string{"expired-in-body", "expired-in-store", "not-yet-valid"} {
		wantInvalid(t, st, app.AppID, s, s)
	}
	if err := VerifyClientSecret(ctx, st, app.AppID, "valid"); err != nil {
		t.Errorf("a valid secret among invalid ones: %v", err)
	}
	if err := RemoveClientSecret(ctx, st, app, NewID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("remove unknown: %v", err)
	}
}

func TestClientSecretRequestValidation(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	day := 24 * time.Hour
	tests := []struct {
		name               string
		req                PasswordCredentialRequest
		wantStart, wantEnd time.Time
		wantPath, wantMsg  string
	}{
		{"defaults", PasswordCredentialRequest{}, now, now.Add(180 * day), "", ""},
		{"end given", PasswordCredentialRequest{EndDateTime: at(30 * day)}, now, now.Add(30 * day), "", ""},
		{"future start", PasswordCredentialRequest{StartDateTime: at(10 * day)}, now.Add(10 * day), now.Add(190 * day), "", ""},
		{"past start", PasswordCredentialRequest{StartDateTime: at(-10 * day)}, now.Add(-10 * day), now.Add(180 * day), "", ""},
		{"two years exactly", PasswordCredentialRequest{EndDateTime: ptr(now.AddDate(2, 0, 0))}, now, now.AddDate(2, 0, 0), "", ""},
		{"past end", PasswordCredentialRequest{EndDateTime: at(-time.Second)}, time.Time{}, time.Time{}, "endDateTime", "must be in the future"},
		{"end now", PasswordCredentialRequest{EndDateTime: at(0)}, time.Time{}, time.Time{}, "endDateTime", "must be in the future"},
		{"end before start", PasswordCredentialRequest{StartDateTime: at(20 * day), EndDateTime: at(10 * day)}, time.Time{}, time.Time{}, "endDateTime", "after startDateTime"},
		{"beyond two years", PasswordCredentialRequest{EndDateTime: ptr(now.AddDate(2, 0, 0).Add(time.Second))}, time.Time{}, time.Time{}, "endDateTime", "at most 2 years"},
		{"default end beyond two years", PasswordCredentialRequest{StartDateTime: at(700 * day)}, time.Time{}, time.Time{}, "endDateTime", "at most 2 years"},
		{"name too long", PasswordCredentialRequest{DisplayName: strings.Repeat("n", 257)}, time.Time{}, time.Time{}, "displayName", "at most 256"},
		{"name control", PasswordCredentialRequest{DisplayName: "a\nb"}, time.Time{}, time.Time{}, "displayName", "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start, end, err := tt.req.window(now)
			if tt.wantPath == "" {
				if err != nil || !start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) {
					t.Errorf("window = %v, %v, %v; want %v, %v", start, end, err, tt.wantStart, tt.wantEnd)
				}
				return
			}
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) || fe.Path != tt.wantPath || !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("window error = %v; want %s: ...%s...", err, tt.wantPath, tt.wantMsg)
			}
		})
	}
}

func TestClientSecretLimit(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	app := storeApp(t, st, id("a", 1), id("x", 1))
	for range MaxClientSecrets {
		addSecret(t, st, app, PasswordCredentialRequest{})
	}
	if _, _, err := AddClientSecret(context.Background(), st, app, PasswordCredentialRequest{}); !errors.Is(err, ErrTooManyClientSecrets) {
		t.Errorf("secret %d: %v; want ErrTooManyClientSecrets", MaxClientSecrets+1, err)
	}
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
