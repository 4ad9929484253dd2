-- How the principal signed in for each API token (OpenID Connect amr
-- values, space-separated: "pwd", "otp", "mfa", "hwk"...): what a
-- just-in-time activation that requires MFA reads.
ALTER TABLE api_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT '';
