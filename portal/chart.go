package portal

import (
	"fmt"
	"math"
	"strings"
	"time"

	"hookd/api"
)

// chart is an endpoint's last 24 hours drawn by the server as an inline
// SVG: one stacked bar per hour, delivered below failed, and the text
// summary that says the same for screen readers and at a glance.
type chart struct {
	// Detail draws one rect per hour with its counts as a tooltip (the
	// endpoint's page); otherwise one path per outcome keeps a list of 50
	// endpoints light.
	Detail    bool
	Bars      []bar
	OkPath    string
	FailPath  string
	Attempts  int
	Delivered int
	Failed    int
	Peak      int // the most attempts in one hour (the scale)
}

// bar is one hour; coordinates are in the SVG's 0 0 240 60 viewBox.
type bar struct {
	X      int
	DY, DH float64 // delivered rect
	FY, FH float64 // failed rect, on top
	Label  string  // the hour and its counts, the bar's <title>
}

const chartH = 60.0

func newChart(h *api.Hours, detail bool) *chart {
	if h == nil {
		return nil
	}
	c := &chart{Detail: detail}
	for i := range 24 {
		c.Delivered += h.Delivered[i]
		c.Failed += h.Failed[i]
		c.Peak = max(c.Peak, h.Delivered[i]+h.Failed[i])
	}
	c.Attempts = c.Delivered + c.Failed
	for i := range 24 {
		d, f := h.Delivered[i], h.Failed[i]
		start := h.Start.Add(time.Duration(i) * time.Hour).UTC()
		b := bar{X: i * 10,
			Label: fmt.Sprintf("%s–%s UTC: %d delivered, %d failed", start.Format("15:04"), start.Add(time.Hour).Format("15:04"), d, f)}
		if c.Peak > 0 && d+f > 0 {
			// At least 2 units for a non-zero count, so one failure shows.
			b.DH = scale(d, c.Peak)
			b.FH = scale(f, c.Peak)
			b.DY = chartH - b.DH
			b.FY = b.DY - b.FH
		}
		c.Bars = append(c.Bars, b)
	}
	var ok, fail strings.Builder
	for _, b := range c.Bars {
		if b.DH > 0 {
			fmt.Fprintf(&ok, "M%d %gh8v%gh-8z", b.X, b.DY, b.DH)
		}
		if b.FH > 0 {
			fmt.Fprintf(&fail, "M%d %gh8v%gh-8z", b.X, b.FY, b.FH)
		}
	}
	c.OkPath, c.FailPath = ok.String(), fail.String()
	return c
}

func scale(n, peak int) float64 {
	if n == 0 {
		return 0
	}
	return math.Round(max(2, float64(n)/float64(peak)*(chartH-2))*10) / 10
}

// Rate is the share of attempts that were delivered.
func (c *chart) Rate() string { return pct(c.Delivered, c.Attempts) }

// Health is the rate's class: good, warn or bad (with the text beside it).
func (c *chart) Health() string {
	switch {
	case c.Attempts == 0:
		return "none"
	case c.Failed == 0 || float64(c.Delivered)/float64(c.Attempts) >= 0.99:
		return "good"
	case float64(c.Delivered)/float64(c.Attempts) >= 0.9:
		return "warn"
	}
	return "bad"
}
