package access

import "strings"

// Strength is an authentication strength compiled for the hot path: the
// method combinations that satisfy it, each as a set of methods.
type Strength struct {
	ID           string
	DisplayName  string
	Combinations []AuthMethod
}

// Satisfied reports whether the methods used in a sign-in include one of
// the strength's combinations.
func (s *Strength) Satisfied(used AuthMethod) bool {
	for _, c := range s.Combinations {
		if used&c == c {
			return true
		}
	}
	return false
}

// Microsoft's built-in authentication strengths. Graph's evaluate example
// and the j0eyv exports carry the combinations of ...0002 and ...0004
// verbatim; ...0003 ("Passwordless MFA": Windows Hello for Business,
// passkeys (FIDO2), multifactor certificate-based authentication,
// Microsoft Authenticator phone sign-in) is from the Entra documentation
// of built-in strengths, not from an export.
const (
	StrengthMFA               = "00000000-0000-0000-0000-000000000002"
	StrengthPasswordlessMFA   = "00000000-0000-0000-0000-000000000003"
	StrengthPhishingResistant = "00000000-0000-0000-0000-000000000004"
)

var builtinStrengths = []Strength{
	{StrengthMFA, "Multifactor authentication", mustCombinations(
		"windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush",
		"temporaryAccessPassOneTime", "temporaryAccessPassMultiUse",
		"password,microsoftAuthenticatorPush", "password,softwareOath", "password,hardwareOath",
		"password,x509CertificateSingleFactor", "password,x509CertificateMultiFactor",
		"password,sms", "password,voice", "federatedMultiFactor",
		"microsoftAuthenticatorPush,federatedSingleFactor", "softwareOath,federatedSingleFactor",
		"hardwareOath,federatedSingleFactor", "sms,federatedSingleFactor", "voice,federatedSingleFactor")},
	{StrengthPasswordlessMFA, "Passwordless MFA", mustCombinations(
		"windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush")},
	{StrengthPhishingResistant, "Phishing-resistant MFA", mustCombinations(
		"windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor")},
}

// BuiltinStrengths lists Microsoft's built-in authentication strengths.
func BuiltinStrengths() []Strength { return builtinStrengths }

func builtinStrength(id string) *Strength {
	for i := range builtinStrengths {
		if strings.EqualFold(builtinStrengths[i].ID, id) {
			return &builtinStrengths[i]
		}
	}
	return nil
}

// mfaStrength decides whether the methods of a sign-in amount to MFA (the
// mfa control): the combinations of the built-in MFA strength.
var mfaStrength = builtinStrength(StrengthMFA)

func mustCombinations(combos ...string) []AuthMethod {
	out := make([]AuthMethod, len(combos))
	for i, c := range combos {
		m, err := ParseAuthMethods(c)
		if err != nil {
			panic(err) // the table above is part of the program
		}
		out[i] = m
	}
	return out
}

// compileStrength resolves a grant's authentication strength: a built-in
// by id (Microsoft's definition wins over a stale export), else the
// combinations the policy carries. A custom strength given by id only has
// no combinations and can never be satisfied.
func compileStrength(s *AuthenticationStrength) *Strength {
	if b := builtinStrength(s.ID); b != nil {
		return b
	}
	out := &Strength{ID: strings.ToLower(s.ID), DisplayName: s.DisplayName}
	for _, c := range s.AllowedCombinations {
		if m, err := ParseAuthMethods(c); err == nil {
			out.Combinations = append(out.Combinations, m)
		}
	}
	return out
}
