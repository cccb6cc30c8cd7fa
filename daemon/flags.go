package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"hookd/config"
)

// ParseRunFlags parses `hookd run` flags and returns the config path.
func ParseRunFlags(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		// "hookd run extra -config F" stopped at extra and ran the default
		// file, as check-config refuses to.
		fmt.Fprintf(stderr, "hookd run: %q: unexpected argument (usage: hookd run [-config FILE])\n", fs.Arg(0))
		return "", errors.New("unexpected argument")
	}
	return *path, nil
}
