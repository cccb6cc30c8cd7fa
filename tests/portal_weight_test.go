package tests

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPortalPageWeight measures what a customer's browser downloads: the
// endpoints page of a tenant with 50 endpoints and the deliveries page of
// a tenant with 1,000 deliveries in its range (the page shows the newest
// 50), each with the stylesheet and the script. It logs the figures the
// README quotes (go test ./tests/ -run PageWeight -v) and fails if a page
// grows past its budget.
func TestPortalPageWeight(t *testing.T) {
	recv := NewReceiver(t)
	d := MustOpenDaemonExtra(t, Extra{}, "[portal]\nlisten = \"127.0.0.1:0\"\ntitle = \"Acme Webhooks\"\n", nil)
	portalURL := "http://" + d.PortalAddr()

	for i := range 50 {
		createEndpoint(t, d, fmt.Sprintf(`{"tenant":"fifty","url":"%s/e%d","events":["invoice.*","customer.created"],"description":"Endpoint %d of a tenant with fifty"}`, recv.URL, i, i))
	}
	busy := createEndpoint(t, d, `{"tenant":"busy","url":"`+recv.URL+`/busy","events":["*"]}`)
	var batch []string
	for i := range 1000 {
		batch = append(batch, fmt.Sprintf(`{"type":"invoice.paid","tenant":"busy","data":{"invoice":"in_%05d","amount":%d,"currency":"EUR"}}`, i, 100+i))
	}
	if status, out, _ := d.Post("/v1/events/batch", "application/json", "["+strings.Join(batch, ",")+"]"); status != 202 && status != 200 {
		t.Fatalf("batch: %d %v", status, out)
	}
	recv.Wait(t, "/busy", 1000)
	eventually(t, "1,000 deliveries logged as delivered", func() bool {
		_, out := d.Admin("GET", "/v1/deliveries?tenant=busy&endpoint="+busy+"&status=delivered&limit=1000", "")
		items, _ := out["items"].([]any)
		return len(items) == 1000
	})

	type weight struct{ raw, wire, gz int }
	measure := func(tenant, page string) (html, css, js weight, p50 time.Duration) {
		t.Helper()
		_, link := d.Admin("POST", "/v1/tenants/"+tenant+"/portal", `{}`)
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Transport: &http.Transport{DisableCompression: true}}
		fetch := func(url string) weight {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			wire, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d", url, resp.StatusCode)
			}
			raw := wire
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(wire))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ = io.ReadAll(zr)
			}
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
			zw.Write(raw)
			zw.Close()
			return weight{raw: len(raw), wire: len(wire), gz: gz.Len()}
		}
		fetch(link["url"].(string)) // logs in, lands on /endpoints
		html = fetch(portalURL + page)
		var times []time.Duration
		for range 21 {
			start := time.Now()
			fetch(portalURL + page)
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		resp, err := c.Get(portalURL + page)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assets := regexp.MustCompile(`/static/portal\.(css|js)\?v=[0-9a-f]+`).FindAllString(string(body), -1)
		if len(assets) != 2 {
			t.Fatalf("%s: assets %v", page, assets)
		}
		return html, fetch(portalURL + assets[0]), fetch(portalURL + assets[1]), times[len(times)/2]
	}

	for _, m := range []struct {
		what, tenant, page string
		budget             int // bytes of HTML, uncompressed
	}{
		{"endpoints page, 50 endpoints", "fifty", "/endpoints", 100 << 10},
		{"deliveries page, 1,000 deliveries in range", "busy", "/deliveries", 100 << 10},
	} {
		html, css, js, p50 := measure(m.tenant, m.page)
		total := weight{html.raw + css.raw + js.raw, html.wire + css.wire + js.wire, html.gz + css.gz + js.gz}
		t.Logf("%s: HTML %d B (%d B gzip), CSS %d B (%d), JS %d B (%d): %d B, %d B gzip; on the wire as hookd sends them %d B; page p50 %v",
			m.what, html.raw, html.gz, css.raw, css.gz, js.raw, js.gz, total.raw, total.gz, total.wire, p50.Round(100*time.Microsecond))
		if html.raw > m.budget {
			t.Errorf("%s: %d B of HTML, budget %d", m.what, html.raw, m.budget)
		}
	}
}
