package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as an ISO 8601 duration in JSON
// ("PT8H", "P365D"), as Graph and ARM write them; a Go duration string
// ("8h") is read too.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the ISO 8601 form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(FormatISODuration(d.D())) }

// UnmarshalJSON reads "PT8H" or "8h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`must be a duration such as "PT8H"`)
	}
	v, err := ParseISODuration(s)
	if err != nil {
		if g, gerr := time.ParseDuration(s); gerr == nil && g > 0 {
			v, err = g, nil
		}
	}
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseISODuration reads the ISO 8601 durations Graph and ARM use: days,
// hours, minutes and seconds ("P365D", "PT8H", "P1DT30M", "PT90S"); years
// and months, whose length varies, are refused.
func ParseISODuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO 8601 duration such as PT8H or P30D", s)
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok || rest == "" {
		return 0, bad
	}
	var total time.Duration
	inTime := false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, bad
			}
			inTime, rest = true, rest[1:]
			if rest == "" {
				return 0, bad
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		if i == 0 || i == len(rest) || i > 6 {
			return 0, bad
		}
		n, _ := strconv.Atoi(rest[:i])
		unit := time.Duration(0)
		switch u := rest[i]; {
		case !inTime && u == 'D':
			unit = 24 * time.Hour
		case !inTime && u == 'W':
			unit = 7 * 24 * time.Hour
		case inTime && u == 'H':
			unit = time.Hour
		case inTime && u == 'M':
			unit = time.Minute
		case inTime && u == 'S':
			unit = time.Second
		default:
			return 0, bad
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if total <= 0 {
		return 0, bad
	}
	return total, nil
}

// FormatISODuration writes d as ISO 8601 (whole seconds): "PT8H",
// "P365D", "P1DT2H30M".
func FormatISODuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	d = d.Round(time.Second)
	var b strings.Builder
	b.WriteByte('P')
	if days := d / (24 * time.Hour); days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10) + "D")
		d -= days * 24 * time.Hour
	}
	if d > 0 {
		b.WriteByte('T')
		for _, u := range []struct {
			unit time.Duration
			c    string
		}{{time.Hour, "H"}, {time.Minute, "M"}, {time.Second, "S"}} {
			if n := d / u.unit; n > 0 {
				b.WriteString(strconv.FormatInt(int64(n), 10) + u.c)
				d -= n * u.unit
			}
		}
	}
	return b.String()
}
