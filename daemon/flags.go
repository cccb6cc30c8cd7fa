package daemon

import (
	"flag"
	"io"
)

// DefaultConfigPath is where hookd and its CLI look for the config when
// -config is not given.
const DefaultConfigPath = "/etc/hookd/hookd.toml"

// ParseRunFlags parses `hookd run` flags and returns the config path.
func ParseRunFlags(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", DefaultConfigPath, "configuration file")
	err := fs.Parse(args)
	return *path, err
}
