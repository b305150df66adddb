package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at dbPath (hushd's
// hushd.db) to the file to, while a hushd may be serving from it.
//
// It runs VACUUM INTO on a connection of its own. In WAL mode that reads
// one snapshot (a read transaction), so the copy holds every transaction
// committed before it began, hence every message whose send was
// acknowledged by then, and nothing of one committed later; the server's
// writer goes on meanwhile (only its truncating checkpoints wait for the
// end of the read). The copy is compact (free pages are not copied) and
// readable by Open as it is.
//
// The copy is written beside to under a temporary name, fsynced, and only
// then given its name, so that to is either a whole backup or absent. to
// must not exist; dbPath must be an existing hushd database (Backup
// creates nothing there).
func Backup(ctx context.Context, dbPath, to string) error {
	if fi, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("sqlitestore: backup: %s is not a database file", dbPath)
	}
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("sqlitestore: backup: %s exists already", to)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	// mode=rw: never create a database where there was none.
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlitestore: backup: %s: %w", dbPath, err)
	}
	if v == 0 {
		return fmt.Errorf("sqlitestore: backup: %s is not a hushd database (no schema version)", dbPath)
	}

	// VACUUM INTO wants an empty or missing file; an empty one made here
	// with O_EXCL gets the database's permissions (the copy holds the
	// mailboxes and every credential's hash).
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	tmp := filepath.Join(filepath.Dir(to), "."+filepath.Base(to)+".tmp-"+hex.EncodeToString(b))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	f.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	// A hard link gives the copy its name only if that name is still free
	// (rename would replace a file made meanwhile).
	if err := os.Link(tmp, to); err != nil {
		return fmt.Errorf("sqlitestore: backup: %w", err)
	}
	done = true
	os.Remove(tmp)
	return syncFile(filepath.Dir(to))
}

// syncFile fsyncs a file or a directory.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
