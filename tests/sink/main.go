// Command sink is a webhook receiver for trying hookd by hand: it listens
// on loopback, verifies each request's Standard Webhooks signature with the
// example secret, and prints what arrived. It is written independently of
// hookd's signing code, as a customer's receiver would be.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	secret := flag.String("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "Standard Webhooks secret to verify with")
	status := flag.Int("status", 200, "HTTP status to answer (try 500 to watch retries)")
	flag.Parse()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(*secret, "whsec_"))
	if err != nil {
		log.Fatalf("bad secret: %v", err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		verdict := verify(key, r.Header, body)
		fmt.Printf("%s %s %s id=%s signature=%s answer=%d\n  %s\n", time.Now().Format("15:04:05.000"), r.Method, r.URL.Path,
			r.Header.Get("webhook-id"), verdict, *status, body)
		w.WriteHeader(*status)
	})
	log.Printf("sink listening on http://%s (answering %d)", *addr, *status)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// verify checks webhook-signature as the Standard Webhooks spec says:
// HMAC-SHA256 of "{id}.{timestamp}.{body}", any of the space-separated
// v1 signatures may match, and the timestamp must be within 5 minutes.
func verify(key []byte, h http.Header, body []byte) string {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return "MISSING"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "STALE-TIMESTAMP"
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Split(sigs, " ") {
		if v, ok := strings.CutPrefix(s, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			return "OK"
		}
	}
	return "INVALID"
}
