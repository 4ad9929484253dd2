// Usage: node verify.mjs ISSUER AUDIENCE < id_token
// Reads the provider's discovery document, verifies the ID token on stdin
// against its jwks_uri with jose, and prints the verified header and
// payload as JSON. Exits non-zero when verification fails.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience] = process.argv.slice(2);
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const token = Buffer.concat(chunks).toString().trim();

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, algorithms: ['ES256', 'EdDSA'] });
  console.log(JSON.stringify({ header: protectedHeader, payload }));
} catch (e) {
  console.error(`${e.code || 'ERR'}: ${e.message}`);
  process.exit(1);
}
