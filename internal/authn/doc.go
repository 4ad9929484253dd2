// Package authn proves who a caller is. It owns:
//
//   - passwords: argon2id hashing with documented parameters, verification
//     of hashes made with older (bounded) parameters and NeedsRehash to
//     upgrade them at sign-in; PasswordPolicy (length range and a
//     BreachedList, a sorted Have I Been Pwned SHA-1 file searched on disk);
//   - second factors: TOTP enrollment (secret, otpauth URL, QR code) and
//     single-use verification by time step; single-use recovery codes
//     stored as salted hashes;
//   - API bearer tokens;
//   - guessing limits: Lockout per account name, and SmartLockout, which
//     counts failures from familiar and unfamiliar sources apart, with
//     FamiliarSources to remember where each user signed in from.
//
// It keeps secrets out of everything it returns except the one moment a
// secret is minted, and holds no state of its own: lockouts and source sets
// are values the caller wires in. authn imports no other Verity package.
package authn
