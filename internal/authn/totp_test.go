package authn

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is the SHA-1 key of RFC 6238 appendix B, "12345678901234567890".
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// rfc6238Vectors are the SHA-1 rows of RFC 6238 appendix B.
var rfc6238Vectors = []struct {
	unix int64
	step int64
	code string // 8 digits
}{
	{59, 0x1, "94287082"},
	{1111111109, 0x23523EC, "07081804"},
	{1111111111, 0x23523ED, "14050471"},
	{1234567890, 0x273EF07, "89005924"},
	{2000000000, 0x3F940AA, "69279037"},
	{20000000000, 0x27BC86AA, "65353130"},
}

func TestTOTPRFC6238Vectors(t *testing.T) {
	t.Parallel()
	for _, v := range rfc6238Vectors {
		t.Run(v.code, func(t *testing.T) {
			t.Parallel()
			now := time.Unix(v.unix, 0).UTC()
			got, err := totp.GenerateCodeCustom(rfcSecret, now, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
			if err != nil || got != v.code {
				t.Fatalf("8-digit code at %d = %q, %v; want %q", v.unix, got, err, v.code)
			}
			// A 6-digit code is the same truncation modulo 10^6: the last six.
			step, ok := VerifyTOTP(rfcSecret, v.code[2:], now, 0)
			if !ok || step != v.step {
				t.Fatalf("VerifyTOTP(%s) at %d = %d, %v; want step %d", v.code[2:], v.unix, step, ok, v.step)
			}
		})
	}
}

func TestVerifyTOTP(t *testing.T) {
	t.Parallel()
	now := time.Unix(1111111111, 0) // step 0x23523ED, 1 s into it
	cur := now.Unix() / totpPeriod
	codeAt := func(step int64) string {
		c, err := totp.GenerateCodeCustom(rfcSecret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{Digits: otp.DigitsSix})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		secret   string
		code     string
		lastUsed int64
		wantStep int64
		wantOK   bool
	}{
		{"current step", rfcSecret, codeAt(cur), 0, cur, true},
		{"previous step (skew)", rfcSecret, codeAt(cur - 1), 0, cur - 1, true},
		{"next step (skew)", rfcSecret, codeAt(cur + 1), 0, cur + 1, true},
		{"two steps old", rfcSecret, codeAt(cur - 2), 0, 0, false},
		{"two steps ahead", rfcSecret, codeAt(cur + 2), 0, 0, false},
		{"replay of the used step", rfcSecret, codeAt(cur), cur, 0, false},
		{"older step after a newer was used", rfcSecret, codeAt(cur - 1), cur, 0, false},
		{"current after the previous was used", rfcSecret, codeAt(cur), cur - 1, cur, true},
		{"next after the current was used", rfcSecret, codeAt(cur + 1), cur, cur + 1, true},
		{"lower-case secret", strings.ToLower(rfcSecret), codeAt(cur), 0, cur, true},
		{"unpadded secret", strings.TrimRight(rfcSecret, "="), codeAt(cur), 0, cur, true},
		{"wrong code", rfcSecret, "000000", 0, 0, false},
		{"five digits", rfcSecret, codeAt(cur)[:5], 0, 0, false},
		{"seven digits", rfcSecret, codeAt(cur) + "0", 0, 0, false},
		{"eight-digit RFC code", rfcSecret, "14050471", 0, 0, false},
		{"space inside", rfcSecret, codeAt(cur)[:3] + " " + codeAt(cur)[3:], 0, 0, false},
		{"leading space", rfcSecret, " " + codeAt(cur)[1:], 0, 0, false},
		{"letters", rfcSecret, "12a456", 0, 0, false},
		{"full-width digits", rfcSecret, "１２３４５６", 0, 0, false},
		{"empty code", rfcSecret, "", 0, 0, false},
		{"empty secret", "", codeAt(cur), 0, 0, false},
		{"secret not base32", "not base32!", codeAt(cur), 0, 0, false},
		{"80-bit secret", base32.StdEncoding.EncodeToString([]byte("1234567890")), codeAt(cur), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			step, ok := VerifyTOTP(tt.secret, tt.code, now, tt.lastUsed)
			if step != tt.wantStep || ok != tt.wantOK {
				t.Fatalf("VerifyTOTP(%q) = %d, %v; want %d, %v", tt.code, step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

func TestVerifyTOTPBeforeEpoch(t *testing.T) {
	t.Parallel()
	// Step 0 codes exist, but a clock before 1970 gives negative steps that
	// must not wrap around to huge counters.
	if _, ok := VerifyTOTP(rfcSecret, "287082", time.Unix(-31, 0), -10); ok {
		t.Fatal("accepted a code at a negative time")
	}
}

func TestTOTPEnrollment(t *testing.T) {
	t.Parallel()
	e, err := NewTOTPEnrollment("Verity", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(key) != totpSecretSize {
		t.Fatalf("secret %q decodes to %d bytes, %v", e.Secret, len(key), err)
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Verity:alice@example.com" ||
		q.Get("secret") != e.Secret || q.Get("issuer") != "Verity" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("URL %s", e.URL)
	}
	img, err := png.Decode(bytes.NewReader(e.QRCode))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != totpQRSize || b.Dy() != totpQRSize {
		t.Fatalf("QR code %v", b)
	}
	// The authenticator app's code verifies.
	now := time.Now()
	code, err := totp.GenerateCode(e.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if step, ok := VerifyTOTP(e.Secret, code, now, 0); !ok || step != now.Unix()/totpPeriod {
		t.Fatalf("VerifyTOTP of the app's code = %d, %v", step, ok)
	}
	other, err := NewTOTPEnrollment("Verity", "alice@example.com")
	if err != nil || other.Secret == e.Secret {
		t.Fatalf("second enrollment: %v, same secret %v", err, other.Secret == e.Secret)
	}
}

func TestTOTPEnrollmentRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, issuer, account, wantErr string }{
		{"no issuer", "", "alice", "issuer"},
		{"colon in issuer", "Veri:ty", "alice", "issuer"},
		{"no account", "Verity", "", "account name"},
		{"colon in account", "Verity", "a:lice", "account name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewTOTPEnrollment(tt.issuer, tt.account); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewTOTPEnrollment(%q, %q) = %v; want an error about the %s", tt.issuer, tt.account, err, tt.wantErr)
			}
		})
	}
}

func TestTOTPEnrollmentForRendersTheSameKey(t *testing.T) {
	t.Parallel()
	e, err := NewTOTPEnrollment("Verity", "ada@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	again, err := TOTPEnrollmentFor("Verity", "ada@contoso.com", e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if again.Secret != e.Secret || again.URL != e.URL || len(again.QRCode) == 0 {
		t.Fatalf("re-rendered enrollment differs: %q vs %q", again.URL, e.URL)
	}
	if _, err := TOTPEnrollmentFor("Verity", "ada@contoso.com", "not base32!"); err == nil {
		t.Fatal("accepted a malformed secret")
	}
}
