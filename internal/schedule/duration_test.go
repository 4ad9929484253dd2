package schedule

import (
	"encoding/json"
	"testing"
	"time"
)

func TestISODurations(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]time.Duration{"PT8H": 8 * time.Hour, "P365D": 365 * 24 * time.Hour, "P1DT30M": 24*time.Hour + 30*time.Minute,
		"PT90S": 90 * time.Second, "P2W": 14 * 24 * time.Hour, "pt1h": time.Hour} {
		got, err := ParseISODuration(s)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", s, got, err, want)
		}
		if back, _ := ParseISODuration(FormatISODuration(want)); back != want {
			t.Errorf("%s round trip: %s", s, FormatISODuration(want))
		}
	}
	for _, s := range []string{"", "P", "PT", "8h", "P1Y", "P1M", "PT1D", "P1H", "PTT1H", "P-1D", "P0D", "P9999999D"} {
		if _, err := ParseISODuration(s); err == nil {
			t.Errorf("%q was read", s)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"90m"`), &d); err != nil || d.D() != 90*time.Minute {
		t.Errorf("a Go duration: %v %v", d, err)
	}
	if b, _ := json.Marshal(Duration(90 * time.Minute)); string(b) != `"PT1H30M"` {
		t.Errorf("marshal: %s", b)
	}
}
