CREATE TABLE IF NOT EXISTS accounts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	username TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	secret_device INTEGER,
	identity_key BLOB,
	next_device INTEGER NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
	account INTEGER NOT NULL REFERENCES accounts(id),
	device INTEGER NOT NULL,
	name TEXT NOT NULL,
	token_hash BLOB NOT NULL,
	registration_id INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS signed_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
	PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS kyber_prekeys (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device, key_id)
);
CREATE TABLE IF NOT EXISTS kyber_last_resort (
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	key_id INTEGER NOT NULL, public_key BLOB NOT NULL, signature BLOB NOT NULL,
	PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS blocks (
	account INTEGER NOT NULL, blocked INTEGER NOT NULL,
	PRIMARY KEY (account, blocked)
);
CREATE TABLE IF NOT EXISTS messages (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account INTEGER NOT NULL, device INTEGER NOT NULL,
	from_account INTEGER NOT NULL, from_device INTEGER NOT NULL, from_username TEXT NOT NULL,
	type INTEGER NOT NULL, content BLOB NOT NULL,
	created INTEGER NOT NULL, expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_device ON messages(account, device, id);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages(expires);
PRAGMA user_version = 1;
