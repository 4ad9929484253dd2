package detect_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/signin"
)

// TestVeritySignInFastPath: the engine's reader of Verity's own sign-in
// records gives what the general reader gives, record for record.
func TestVeritySignInFastPath(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 9, 30, 15, 123456000, time.FixedZone("x", 3600))
	events := []signin.Event{
		{ID: "a", CreatedDateTime: at, UserID: "u1", UserPrincipalName: "Alice@Contoso.com", AppID: "app", AppDisplayName: "Payroll",
			IPAddress: "::ffff:203.0.113.9", AutonomousSystemNumber: 64500, ClientAppUsed: "Browser", UserAgent: "Mozilla/5.0 Firefox/130.0",
			CorrelationID: "c", IsInteractive: true, SessionID: "s1", Status: signin.Status{ErrorCode: 50126},
			Location: signin.Location{City: "Sydney", State: "New South Wales", CountryOrRegion: "au",
				GeoCoordinates: &signin.GeoCoordinates{Latitude: -33.87, Longitude: 151.21}}},
		{ID: "b", CreatedDateTime: at, UserID: "u2", UserPrincipalName: "bob@contoso.com", IPAddress: "2001:db8::1", IsInteractive: false,
			Location: signin.Location{GeoCoordinates: &signin.GeoCoordinates{Latitude: 125, Longitude: 3}}, Status: signin.Status{ErrorCode: 0}},
		{ID: "c", CreatedDateTime: at, ServicePrincipalID: "sp", AppID: "app2", IPAddress: "not an address", SignInEventTypes: []string{"servicePrincipal"}},
	}
	for _, ev := range events {
		b, _ := json.Marshal(ev)
		fast, err := detect.SignInFromVerityForTest(b)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := detect.ReadSignIns(strings.NewReader(string(b)))
		if err != nil || len(slow) != 1 {
			t.Fatalf("%s: %v %v", b, slow, err)
		}
		if fast != slow[0] {
			t.Errorf("fast %+v\nslow %+v", fast, slow[0])
		}
	}
	if _, err := detect.SignInFromVerityForTest([]byte(`{"id": "x"}`)); err == nil {
		t.Error("a record without a time was read")
	}
	if _, err := detect.SignInFromVerityForTest([]byte(`{"id": `)); err == nil {
		t.Error("a cut record was read")
	}
}
