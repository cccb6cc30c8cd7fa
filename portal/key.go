package portal

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"hookd/store"
)

// keySize is the size of a generated token key, and the least a key file
// must hold: HMAC-SHA256 gains nothing from more, and loses from less.
const keySize = 32

// loadKey returns the HMAC key of magic-link tokens: [portal] key_file's
// contents (surrounding white space trimmed, at least 32 bytes; e.g. what
// `hookd gen-secret -key` prints), or a key generated once and kept,
// sealed, in the database. Errors name the file, never its contents.
func loadKey(ctx context.Context, file string, st *store.Store) ([]byte, error) {
	if file == "" {
		k, err := st.PortalKey(ctx, keySize)
		if err != nil {
			return nil, fmt.Errorf("portal token key: %w", err)
		}
		return k, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("portal.key_file: %w", err)
	}
	k := bytes.TrimSpace(b)
	if len(k) < keySize {
		return nil, fmt.Errorf("portal.key_file %s: must hold at least %d bytes", file, keySize)
	}
	return k, nil
}
