package portal

import (
	"context"
	"fmt"

	"hookd/config"
	"hookd/store"
)

// loadKey returns the HMAC key of magic-link tokens: [portal] key_file's
// (read with the config: config.PortalKey), or a key generated once and
// kept, sealed, in the database.
func loadKey(ctx context.Context, cfg *config.Config, st *store.Store) ([]byte, error) {
	if cfg.PortalKey != nil {
		return cfg.PortalKey, nil
	}
	k, err := st.PortalKey(ctx, config.PortalKeyMin)
	if err != nil {
		return nil, fmt.Errorf("portal token key: %w", err)
	}
	return k, nil
}
