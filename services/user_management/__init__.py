"""user-management: accounts, argon2 password hashes, Ed25519 access tokens and rotating refresh tokens."""
