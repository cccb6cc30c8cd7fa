package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Configured secrets and tokens never appear in logs, API responses or
// metrics, whatever happens.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		hmacSecret  = "hmac-SECRET-do-not-print"
		ingestToken = "ingest-TOKEN-do-not-print"
		adminToken  = "admin-TOKEN-do-not-print"
	)
	secrets := []string{hmacSecret, ingestToken, adminToken, strings.TrimPrefix(testSecret, "whsec_")}
	rcv := NewReceiver(t)
	rcv.Status("/a", 500, 1)
	rcv.Status("/b", 401, 100)
	cfg := endpoint("a", rcv.URL+"/a", `["*"]`, "schedule = [\"50ms\"]\n"+standardSigning(testSecret)) +
		endpoint("b", rcv.URL+"/b", `["*"]`, "schedule = []\n  [endpoints.signing]\n  scheme = \"hmac-sha256\"\n  secret = \""+hmacSecret+"\"\n")
	d := MustOpenDaemonExtra(t, Extra{Ingest: `token = "` + ingestToken + `"`, Admin: `token = "` + adminToken + `"`}, cfg, nil)

	auth := []string{"Authorization", "Bearer " + ingestToken}
	status, out, _ := do(t, "POST", "http://"+d.IngestAddr()+"/v1/events", "application/json", `{"id":"s1","type":"t","data":{}}`, auth...)
	if status != 202 {
		t.Fatalf("%d %v", status, out)
	}
	do(t, "POST", "http://"+d.IngestAddr()+"/v1/events", "application/json", `{"type":"t","data":{}}`, "Authorization", "Bearer "+ingestToken+"x")
	rcv.Wait(t, "/a", 2)
	rcv.Wait(t, "/b", 1)

	// A reload with a broken secret is refused and logged without the value.
	d.rewrite(endpoint("a", rcv.URL+"/a", `["*"]`, "  [endpoints.signing]\n  secret = \"whsec_"+hmacSecret+"\"\n"))
	if err := d.Reload(); err == nil {
		t.Fatal("bad secret accepted")
	} else if containsAny(err.Error(), secrets) {
		t.Fatalf("reload error leaks a secret: %v", err)
	}

	var bodies []string
	for _, path := range []string{"/v1/events/s1", "/v1/endpoints", "/v1/undeliverable", "/metrics"} {
		req, _ := http.NewRequest("GET", "http://"+d.AdminAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		bodies = append(bodies, string(b))
	}
	if status, _, _ := do(t, "GET", "http://"+d.AdminAddr()+"/v1/endpoints", "", ""); status != 401 {
		t.Fatalf("admin without token: %d", status)
	}
	d.Close()
	for i, s := range append(bodies, d.logs.String()) {
		if containsAny(s, secrets) {
			t.Errorf("output %d leaks a secret:\n%s", i, s)
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
