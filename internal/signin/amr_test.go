package signin_test

import (
	"testing"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/signin"
)

// A credential that kept only its amr (an API token) reads back as
// methods of the same strength as the sign-in's.
func TestMethodsFromAMR(t *testing.T) {
	t.Parallel()
	for _, m := range []access.AuthMethod{
		access.MethodPassword,
		access.MethodPassword | access.MethodSoftwareOath,
		access.MethodPassword | access.MethodHardwareOath,
		access.MethodFIDO2,
		access.MethodFederatedSingleFactor,
		access.MethodFederatedMultiFactor,
		access.MethodFederatedSingleFactor | access.MethodSoftwareOath,
	} {
		sess := signin.Session{Methods: m}
		back := signin.MethodsFromAMR(sess.AMR())
		if signin.Strength(back) != signin.Strength(m) {
			t.Errorf("%v: amr %v reads back as %v (strength %v, want %v)", m, sess.AMR(), back, signin.Strength(back), signin.Strength(m))
		}
	}
	if m := signin.MethodsFromAMR([]string{"pwd", "unknown"}); m != access.MethodPassword {
		t.Errorf("unknown values add nothing: %v", m)
	}
}
