package detect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func readFile(t *testing.T, path string) []SignIn {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ReadSignIns(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// TestSentinelTrainingLab reads the Log Analytics CSV exports of the
// Microsoft Sentinel Training Lab: JSON-valued columns as strings, the
// portal's time format, a file whose time is only in its authentication
// steps, and coordinates that cannot be (latitude 125) dropped.
func TestSentinelTrainingLab(t *testing.T) {
	t.Parallel()
	adele := readFile(t, "testdata/logs/sentinel-training-lab/sign-in_adelete.csv")
	codes := map[int]int{}
	for _, s := range adele {
		codes[s.Code]++
		if s.User != "adelev@m365x816222.onmicrosoft.com" || s.IP.String() != "175.45.176.99" || s.Country != "IL" || !s.HasGeo ||
			s.AppName == "" || !s.Interactive || s.ID == "" {
			t.Fatalf("record %+v", s)
		}
		if s.Time.Before(time.Date(2021, 4, 28, 14, 8, 0, 0, time.UTC)) || s.Time.After(time.Date(2021, 4, 28, 15, 20, 0, 0, time.UTC)) {
			t.Fatalf("time %v", s.Time)
		}
	}
	if len(adele) != 56 || codes[0] != 53 || codes[16000] != 2 || codes[50058] != 1 {
		t.Fatalf("%d records, codes %v", len(adele), codes)
	}
	if got := adele[0].Time; !got.Equal(time.Date(2021, 4, 28, 14, 8, 45, 221e6, time.UTC)) {
		t.Errorf("first time %v", got)
	}

	disabled := readFile(t, "testdata/logs/sentinel-training-lab/disable_accounts.csv")
	if len(disabled) != 4 {
		t.Fatalf("%d records", len(disabled))
	}
	for _, s := range disabled {
		if s.Code != 50057 || s.Success || s.User != "johns@m365x816222.onmicrosoft.com" || s.Country != "KP" || s.HasGeo ||
			s.Time.Format("2006-01-02 15") != "2021-04-19 12" {
			t.Fatalf("record %+v", s)
		}
	}
}

// TestAzureMonitorRecords reads the diagnostic-export shape (Panther's
// rule tests): lower- and camel-case keys, properties, categories; audit
// records in the same stream are skipped.
func TestAzureMonitorRecords(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/logs/panther/panther_azure_signin_tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var logs bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var tc struct {
			Log json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &tc); err != nil {
			t.Fatal(err)
		}
		logs.Write(tc.Log)
		logs.WriteByte('\n')
	}
	got, err := ReadSignIns(&logs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 22 {
		t.Fatalf("%d sign-ins, want 22 (13 interactive, 8 service principal, 1 non-interactive)", len(got))
	}
	var sp, locked int
	for _, s := range got {
		if s.Time.IsZero() {
			t.Fatalf("no time: %+v", s)
		}
		if s.ServicePrincipal {
			sp++
		}
		if s.User == "boromir@lotr.com" && s.Code == 50053 && s.Country == "RU" && s.ASN == "12345" && s.IP.String() == "4.4.4.4" {
			locked++
		}
	}
	if sp != 8 || locked == 0 {
		t.Fatalf("%d service principal sign-ins (want 8), %d lockouts of boromir", sp, locked)
	}
}

// TestBadRecords: what is wrong is named with its record.
func TestBadRecords(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"{\"category\":\"SignInLogs\",\"time\":\"2025-01-15 08:15:23\"}\n{oops\n", "JSON line 2"},
		{"{\"category\":\"SignInLogs\",\"time\":\"yesterday\"}\n", `time: not a time: "yesterday"`},
		{"{\"category\":\"SignInLogs\"}\n", "no time"},
		{"Id,UserPrincipalName,CreatedDateTime [UTC]\n1,a@b.c,4/28/2021, 2:08:45.221 PM\n", "CSV line 2"},
		{"[{\"category\":\"SignInLogs\",\"time\":\"2025-01-15 08:15:23\"}, {\"time\": \"soon\"}]", "JSON record 2"},
	} {
		_, err := ReadSignIns(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}
