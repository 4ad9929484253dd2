// Package keyring owns Verity's secrets at rest and its token-signing keys.
// It imports only internal/store, and must never import a domain package:
// sign-in, the API and the proxy call it, not the other way round.
//
// # Sealing
//
// A 32-byte master key, read from a file by LoadOrCreateMasterKey, never
// encrypts anything itself. Each purpose ("totp secret", "signing key")
// gets its own AES-256-GCM key derived with HKDF-SHA256 (info "verity
// keyring v1 seal " + purpose). Seal(purpose, id, plaintext) produces a
// version 1 envelope:
//
//	offset  size  field
//	0       1     format version, 0x01
//	1       8     master key id: HKDF-SHA256(master key, info "verity keyring v1 key id")
//	9       12    random nonce
//	21      n     AES-256-GCM ciphertext of the plaintext
//	21+n    16    GCM tag
//
// The tag also authenticates the first 9 bytes, the purpose and the id
// (each behind a 2-byte big-endian length), so a sealed TOTP secret of one
// user cannot be moved into another user's record, nor into a record of
// another purpose: Open fails with ErrTampered. An envelope names its
// master key, so Options.OldMasterKeys open what earlier keys sealed while
// only the current key seals. Random 96-bit nonces allow about 2^32 seals
// per master key and purpose.
//
// Rotating the master key: (1) give every node the new key as an old key
// (a later line of the key file) so all can open what it will seal; (2)
// make it the current key (first line) on every node; (3) owners of sealed
// data Rewrap whatever NeedsRewrap reports (Maintain does it for signing
// keys); (4) drop the old key. Open refuses a node whose master keys do not
// open the database's check record, so a node with another key file fails
// at start rather than sealing secrets the others cannot open.
//
// # Signing keys
//
// Signing keys (ES256 by default, or EdDSA) are store records of kind
// "signingKey" whose id is the key's RFC 7638 thumbprint (the JWS "kid")
// and whose body holds the PKCS #8 private key sealed for purpose "signing
// key" and that kid. The public key and algorithm are derived from the
// sealed key on load, so a database writer without the master key cannot
// publish a key of their own. One "keyring/signing" record lists the keys
// and their states; every transition is one compare-and-swap write of it,
// so nodes that run Maintain at once make each transition once and never
// list two current keys. A key lives through:
//
//   - next: published in the JWKS, not signing, so relying parties cache it
//     before they see a token it signed. Made PublishAhead (24h) before the
//     current key has signed for RotateEvery (30 days).
//   - current: the one key that signs. The first key of an empty database
//     is current at once; a next key becomes current when due.
//   - retired: no longer signing, still published for RetainAfter (24h,
//     the longest token lifetime) plus a minute for nodes signing from a
//     cached view, so every token it signed verifies until it expires.
//   - deleted: gone from the JWKS, its record removed.
//
// Rotate makes a new key current at once (the next key if there is one).
// Each node caches the keys it has loaded and reads the state record again
// when its copy is five seconds old, so signing, the JWKS and Verify touch
// the database only then; if the database is unreachable a copy up to a
// minute old still serves.
package keyring
