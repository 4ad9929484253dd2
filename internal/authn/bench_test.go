package authn

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyPassword(h, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTOTP(b *testing.B) {
	now := time.Unix(1111111111, 0)
	code, err := totp.GenerateCode(rfcSecret, now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := VerifyTOTP(rfcSecret, code, now, 0); !ok {
			b.Fatal("code refused")
		}
	}
}

// BenchmarkBreachedContains looks up in a 1M-line file (about 45 MB, in the
// page cache): each lookup is about 25 positioned reads, log2 of its size.
func BenchmarkBreachedContains(b *testing.B) {
	list := openBreached(b, writeBreachedFile(b, breachedPasswords, 1_000_000, "\r\n", true))
	for _, bc := range []struct {
		name, password string
		want           bool
	}{{"hit", "password1234", true}, {"miss", "a passphrase of my own", false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if found, err := list.Contains(bc.password); err != nil || found != bc.want {
					b.Fatalf("Contains = %v, %v", found, err)
				}
			}
		})
	}
}
