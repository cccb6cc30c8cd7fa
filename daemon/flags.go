package daemon

import (
	"flag"
	"io"

	"hookd/config"
)

// ParseRunFlags parses `hookd run` flags and returns the config path.
func ParseRunFlags(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultPath, "configuration file")
	err := fs.Parse(args)
	return *path, err
}
