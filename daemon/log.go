package daemon

import (
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"hookd/config"
)

// logOutput is where every component's logger writes. Its level lives in
// zerolog's process-wide setting and its format (json or console) in an
// atomic switch, so a reload changes both for every copy of the logger
// without re-plumbing them; hookd runs one daemon per process.
type logOutput struct {
	out io.Writer
	cur atomic.Pointer[io.Writer]
}

func (o *logOutput) Write(p []byte) (int, error) { return (*o.cur.Load()).Write(p) }

// apply sets the level and the format.
func (o *logOutput) apply(c config.LogConfig) {
	w := o.out
	if c.Format == "console" {
		// Colours only for a terminal: in a file or the journal the
		// escapes were bytes in every line.
		w = zerolog.ConsoleWriter{Out: o.out, TimeFormat: "15:04:05.000", NoColor: !isTerminal(o.out)}
	}
	o.cur.Store(&w)
	if l, err := config.ParseLevel(c.Level); err == nil {
		zerolog.SetGlobalLevel(l)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func init() {
	// Milliseconds: zerolog's default, whole seconds, put a burst of lines
	// at one time and the console's .000 after each.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
}

// newLogger builds the daemon's logger over w.
func newLogger(w io.Writer, c config.LogConfig) (zerolog.Logger, *logOutput) {
	o := &logOutput{out: w}
	o.apply(c)
	return zerolog.New(o).With().Timestamp().Logger(), o
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
