package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"
)

func parseLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("%q: must be debug, info, warn or error", s)
}

// newLogger builds the daemon's logger. The level lives in zerolog's
// process-wide setting so a reload can change it for every component that
// holds a copy of the logger, without re-plumbing them; hookd runs one
// daemon per process.
func newLogger(w io.Writer, c LogConfig) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	setLevel(c.Level)
	return zerolog.New(w).With().Timestamp().Logger()
}

func setLevel(s string) {
	if l, err := parseLevel(s); err == nil {
		zerolog.SetGlobalLevel(l)
	}
}

// serverLogger takes fasthttp's server messages into the JSON log. Their
// arguments are dropped: fasthttp formats the raw request into them (a
// bearer token, the body), which must never be logged. The format string
// up to its first verb still says what happened.
type serverLogger struct{ log zerolog.Logger }

func (l serverLogger) Printf(format string, _ ...any) {
	msg, _, _ := strings.Cut(format, "%")
	l.log.Warn().Str("component", "http").Msg(strings.TrimRight(msg, " :\"'"))
}
