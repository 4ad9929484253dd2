// Package detect is where the sign-in and audit stream is to become
// detections, risk and responses. It starts with reading sign-in records
// as the tools people bring them: Verity's own sign-in log, and Microsoft Entra
// sign-in logs in either of the two shapes they are exported in — Log
// Analytics table rows (SigninLogs: TitleCase columns, JSON-valued
// columns as JSON strings, CSV or JSON lines) and Azure Monitor diagnostic
// records (time/category/operationName/properties{...}).
package detect

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// SignIn is one sign-in attempt, whatever log it came from.
type SignIn struct {
	Time      time.Time
	ID        string // the record's id
	User      string // userPrincipalName, lower-cased; "" for a service principal
	UserID    string
	AppID     string
	AppName   string
	IP        netip.Addr // invalid when the record has none
	Country   string     // ISO 3166 alpha-2, "" when unknown
	State     string
	City      string
	Lat, Lon  float64 // valid only when HasGeo
	HasGeo    bool
	ASN       string
	Code      int  // the Entra error code: 0 success, 50126 wrong password, 50057 disabled, 500121 MFA denied...
	Success   bool // Code == 0
	ClientApp string
	UserAgent string
	// DeviceID, Browser and OS are the record's deviceDetail: the device's
	// directory id ("" for an unregistered one), the browser and operating
	// system as Entra names them ("Edge 90.0.818", "Windows 10").
	DeviceID, Browser, OS string
	// SessionID is the session the sign-in belongs to (sessionId: every
	// sign-in of one browser session carries it; Verity's is a digest of
	// its session, never the cookie). TokenID is Entra's
	// uniqueTokenIdentifier, the token the sign-in issued or redeemed.
	SessionID, TokenID string
	// Interactive is false for non-interactive and service principal
	// sign-ins.
	Interactive      bool
	ServicePrincipal bool
	CorrelationID    string
}

// ReadSignIns reads sign-in records from r in any of the shapes above
// (told apart by the first byte: CSV, a JSON array, or one JSON object
// after another); a record that is not a sign-in (an audit record in a
// mixed export) is skipped. Errors name the line (the record of an array)
// they are about.
func ReadSignIns(r io.Reader) ([]SignIn, error) {
	return readRows(r, "sign-in", signInFromRow)
}

// readRows reads an export's rows — CSV with a header, a JSON array, or
// JSON objects one after another (one a line, as exported, though an
// object may span lines) — and turns each into a T with from, which says
// whether the row is one (ok) or to be skipped. what names the kind in
// errors.
func readRows[T any](r io.Reader, what string, from func(map[string]any) (T, bool, error)) ([]T, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	var out []T
	add := func(row map[string]any, where string) error {
		v, ok, err := from(row)
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, where, err)
		}
		if ok {
			out = append(out, v)
		}
		return nil
	}
	t := bytes.TrimSpace(b)
	switch {
	case len(t) > 0 && t[0] == '[':
		var rows []map[string]any
		if err := json.Unmarshal(t, &rows); err != nil {
			return nil, fmt.Errorf("%s JSON: %w", what, err)
		}
		for i, row := range rows {
			if err := add(row, fmt.Sprintf("JSON record %d", i+1)); err != nil {
				return nil, err
			}
		}
	case len(t) > 0 && t[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(b))
		line, counted := 1, 0
		for {
			start := int(dec.InputOffset())
			for start < len(b) && (b[start] == ' ' || b[start] == '\t' || b[start] == '\r' || b[start] == '\n') {
				start++
			}
			if start >= len(b) {
				return out, nil
			}
			line += bytes.Count(b[counted:start], []byte("\n"))
			counted = start
			var row map[string]any
			if err := dec.Decode(&row); err != nil {
				return nil, fmt.Errorf("%s JSON line %d: %w", what, line, err)
			}
			if err := add(row, fmt.Sprintf("JSON line %d", line)); err != nil {
				return nil, err
			}
		}
	default:
		cr := csv.NewReader(bytes.NewReader(b))
		cr.FieldsPerRecord = -1
		head, err := cr.Read()
		if err != nil {
			return nil, fmt.Errorf("%s CSV: header: %w", what, err)
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s CSV: %w", what, err)
			}
			line, _ := cr.FieldPos(0)
			row := make(map[string]any, len(head))
			for i, name := range head {
				if i < len(rec) && rec[i] != "" {
					row[name] = rec[i]
				}
			}
			if err := add(row, fmt.Sprintf("CSV line %d", line)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// fields looks values up by name whatever their case, in a row and, for
// diagnostic records, in its properties.
type fields struct {
	row, props map[string]any
}

func lookup(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// each calls fn with the values of names present (properties first) until
// it returns true; it returns the name of that value.
func (f fields) each(fn func(v any) bool, names ...string) string {
	for _, m := range []map[string]any{f.props, f.row} {
		if m == nil {
			continue
		}
		for _, n := range names {
			if v, ok := lookup(m, n); ok && v != nil && v != "" && fn(v) {
				return n
			}
		}
	}
	return ""
}

func (f fields) get(names ...string) any {
	var out any
	f.each(func(v any) bool { out = v; return true }, names...)
	return out
}

// named returns the first of names present as text, and its name.
func (f fields) named(names ...string) (string, string) {
	var out string
	name := f.each(func(v any) bool {
		switch v := v.(type) {
		case string:
			out = v
		case float64:
			out = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			out = strconv.FormatBool(v)
		default:
			return false
		}
		return true
	}, names...)
	return out, name
}

func (f fields) str(names ...string) string {
	v, _ := f.named(names...)
	return v
}

// obj returns the first of names that is a JSON object, decoding one
// stored as a string (Log Analytics exports JSON-valued columns as JSON
// strings; a column of the same name may hold plain text).
func (f fields) obj(names ...string) map[string]any {
	var out map[string]any
	f.each(func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			out = v
		case string:
			return json.Unmarshal([]byte(v), &out) == nil && out != nil
		}
		return out != nil
	}, names...)
	return out
}

func (f fields) list(names ...string) []any {
	var out []any
	f.each(func(v any) bool {
		switch v := v.(type) {
		case []any:
			out = v
		case string:
			return json.Unmarshal([]byte(v), &out) == nil && out != nil
		}
		return out != nil
	}, names...)
	return out
}

var signInCategories = map[string]bool{
	"signinlogs": true, "noninteractiveusersigninlogs": true, "serviceprincipalsigninlogs": true, "managedidentitysigninlogs": true,
}

// signInFromRow reads one record; ok is false when it is not a sign-in.
func signInFromRow(row map[string]any) (SignIn, bool, error) {
	f := fields{row: row}
	if p, ok := lookup(row, "properties"); ok {
		f.props, _ = p.(map[string]any)
	}
	category := strings.ToLower(f.str("category", "Category", "Type"))
	if category != "" && !signInCategories[category] {
		return SignIn{}, false, nil
	}
	var s SignIn
	var err error
	if s.Time, err = signInTime(f); err != nil {
		return s, false, err
	}
	s.ID = f.str("id", "Id")
	s.User = strings.ToLower(f.str("userPrincipalName", "UserPrincipalName"))
	s.UserID = f.str("userId", "UserId")
	s.AppID = f.str("appId", "AppId")
	s.AppName = f.str("appDisplayName", "AppDisplayName")
	if ip := f.str("ipAddress", "IPAddress", "callerIpAddress"); ip != "" {
		if a, err := netip.ParseAddr(ip); err == nil {
			s.IP = a.Unmap()
		}
	}
	loc := f.obj("location", "LocationDetails", "LocationDetails_dynamic", "LocationDetails_string")
	if loc != nil {
		lf := fields{row: loc}
		s.Country, s.State, s.City = strings.ToUpper(lf.str("countryOrRegion")), lf.str("state"), lf.str("city")
		if geo, ok := loc["geoCoordinates"].(map[string]any); ok {
			lat, okLat := geo["latitude"].(float64)
			lon, okLon := geo["longitude"].(float64)
			// Exports carry impossible coordinates now and then (swapped
			// latitude and longitude): those are no location.
			if okLat && okLon && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
				s.Lat, s.Lon, s.HasGeo = lat, lon, true
			}
		}
	}
	s.ASN = f.str("autonomousSystemNumber", "AutonomousSystemNumber")
	if st := f.obj("status", "Status", "Status_dynamic", "Status_string"); st != nil {
		if c, ok := st["errorCode"].(float64); ok {
			s.Code = int(c)
		}
	} else if rt := f.str("ResultType", "resultType"); rt != "" {
		if c, err := strconv.Atoi(rt); err == nil {
			s.Code = c
		} else if !strings.EqualFold(rt, "success") {
			s.Code = -1 // "Failure" without a code
		}
	}
	s.Success = s.Code == 0
	s.ClientApp = f.str("clientAppUsed", "ClientAppUsed")
	s.UserAgent = f.str("userAgent", "UserAgent")
	if dev := f.obj("deviceDetail", "DeviceDetail", "DeviceDetail_dynamic", "DeviceDetail_string"); dev != nil {
		df := fields{row: dev}
		s.DeviceID, s.Browser, s.OS = df.str("deviceId"), df.str("browser"), df.str("operatingSystem")
	}
	s.SessionID = f.str("sessionId", "SessionId")
	s.TokenID = f.str("uniqueTokenIdentifier", "UniqueTokenIdentifier")
	s.CorrelationID = f.str("correlationId", "CorrelationId")
	s.ServicePrincipal = category == "serviceprincipalsigninlogs" || category == "managedidentitysigninlogs" ||
		(s.User == "" && f.str("servicePrincipalId", "ServicePrincipalId") != "")
	switch v := f.get("isInteractive", "IsInteractive").(type) {
	case bool:
		s.Interactive = v
	case string:
		s.Interactive = strings.EqualFold(v, "true")
	default:
		s.Interactive = category == "" || category == "signinlogs"
	}
	return s, true, nil
}

// Time formats sign-in exports use: RFC 3339, Azure Monitor's
// space-separated one, and the Log Analytics portal's CSV export.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"1/2/2006, 3:04:05.999 PM",
	"1/2/2006, 3:04:05 PM",
}

func parseTime(v string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, strings.TrimSpace(v)); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// signInTime is when the attempt was made: createdDateTime, else
// TimeGenerated or the record's time, else its first authentication
// step's time (some exports keep the time only there).
func signInTime(f fields) (time.Time, error) {
	for _, names := range [][]string{{"createdDateTime", "CreatedDateTime", "CreatedDateTime [UTC]"}, {"TimeGenerated", "TimeGenerated [UTC]", "time"}} {
		if v, name := f.named(names...); v != "" {
			if t, ok := parseTime(v); ok {
				return t, nil
			}
			return time.Time{}, fmt.Errorf("%s: not a time: %q", name, v)
		}
	}
	for _, step := range f.list("authenticationDetails", "AuthenticationDetails") {
		if m, ok := step.(map[string]any); ok {
			if v, ok := m["authenticationStepDateTime"].(string); ok {
				if t, ok := parseTime(v); ok {
					return t, nil
				}
			}
		}
	}
	return time.Time{}, fmt.Errorf("no time: neither createdDateTime, TimeGenerated, time nor an authentication step's time")
}
