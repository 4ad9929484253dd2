package detect

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// veritySignIn is the part of Verity's own sign-in record (the signin
// package's Event, a Graph signIn object) the detectors read. Decoding
// into it is the engine's fast path: the general reader's case-insensitive
// map walk (signInFromRow) takes most of the engine's time for a log
// whose shape is known.
type veritySignIn struct {
	ID            string    `json:"id"`
	Created       time.Time `json:"createdDateTime"`
	UserID        string    `json:"userId"`
	UPN           string    `json:"userPrincipalName"`
	AppID         string    `json:"appId"`
	AppName       string    `json:"appDisplayName"`
	IP            string    `json:"ipAddress"`
	ASN           *int64    `json:"autonomousSystemNumber"`
	ClientApp     string    `json:"clientAppUsed"`
	UserAgent     string    `json:"userAgent"`
	CorrelationID string    `json:"correlationId"`
	Interactive   *bool     `json:"isInteractive"`
	SessionID     string    `json:"sessionId"`
	TokenID       string    `json:"uniqueTokenIdentifier"`
	ServicePrinc  string    `json:"servicePrincipalId"`
	Location      *struct {
		City, State     string
		CountryOrRegion string `json:"countryOrRegion"`
		GeoCoordinates  *struct {
			Latitude  *float64 `json:"latitude"`
			Longitude *float64 `json:"longitude"`
		} `json:"geoCoordinates"`
	} `json:"location"`
	Status *struct {
		ErrorCode *float64 `json:"errorCode"`
	} `json:"status"`
	DeviceDetail *struct {
		DeviceID        string `json:"deviceId"`
		Browser         string `json:"browser"`
		OperatingSystem string `json:"operatingSystem"`
	} `json:"deviceDetail"`
}

var errNoTime = errors.New("no time: no createdDateTime")

// signInFromVerity reads one of Verity's own sign-in records; it gives
// the SignIn signInFromRow gives for it (a test holds them equal).
func signInFromVerity(details []byte) (SignIn, error) {
	var v veritySignIn
	if err := json.Unmarshal(details, &v); err != nil {
		return SignIn{}, err
	}
	if v.Created.IsZero() {
		return SignIn{}, errNoTime
	}
	s := SignIn{Time: v.Created.UTC(), ID: v.ID, User: strings.ToLower(v.UPN), UserID: v.UserID, AppID: v.AppID, AppName: v.AppName,
		ClientApp: v.ClientApp, UserAgent: v.UserAgent, SessionID: v.SessionID, TokenID: v.TokenID, CorrelationID: v.CorrelationID,
		Interactive: v.Interactive == nil || *v.Interactive}
	if v.IP != "" {
		if a, err := netip.ParseAddr(v.IP); err == nil {
			s.IP = a.Unmap()
		}
	}
	if l := v.Location; l != nil {
		s.Country, s.State, s.City = strings.ToUpper(l.CountryOrRegion), l.State, l.City
		if g := l.GeoCoordinates; g != nil && g.Latitude != nil && g.Longitude != nil {
			if lat, lon := *g.Latitude, *g.Longitude; lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
				s.Lat, s.Lon, s.HasGeo = lat, lon, true
			}
		}
	}
	if v.ASN != nil {
		s.ASN = strconv.FormatInt(*v.ASN, 10)
	}
	if v.Status != nil && v.Status.ErrorCode != nil {
		s.Code = int(*v.Status.ErrorCode)
	}
	s.Success = s.Code == 0
	if d := v.DeviceDetail; d != nil {
		s.DeviceID, s.Browser, s.OS = d.DeviceID, d.Browser, d.OperatingSystem
	}
	s.ServicePrincipal = s.User == "" && v.ServicePrinc != ""
	return s, nil
}
