package portal

import "hookd/api"

// apiRoutes are the portal's JSON API (SPEC §12), the admin routes with
// the scope implied: /api/ on the portal listener, /ui/api/ on the admin
// listener. Each needs the capability that its change or read takes.
var apiRoutes = []route{
	{"GET", "/api/endpoints", CapView, (*Server).apiEndpoints},
	{"POST", "/api/endpoints", CapManageEndpoints, (*Server).apiCreateEndpoint},
	{"GET", "/api/endpoints/{}", CapView, (*Server).apiEndpoint},
	{"PATCH", "/api/endpoints/{}", CapManageEndpoints, (*Server).apiPatchEndpoint},
	{"DELETE", "/api/endpoints/{}", CapManageEndpoints, (*Server).apiDeleteEndpoint},
	{"POST", "/api/endpoints/{}/enable", CapManageEndpoints, (*Server).apiEnableEndpoint},
	{"POST", "/api/endpoints/{}/disable", CapManageEndpoints, (*Server).apiDisableEndpoint},
	{"POST", "/api/endpoints/{}/test", CapTest, (*Server).apiTestEndpoint},
	{"GET", "/api/endpoints/{}/secret", CapViewSecret, (*Server).apiEndpointSecret},
	// A rotation answers the new secret: it needs view_secret too (a link
	// with rotate_secret alone read the secret through it).
	{"POST", "/api/endpoints/{}/rotate-secret", CapRotateSecret | CapViewSecret, (*Server).apiRotateSecret},
	{"GET", "/api/endpoints/{}/hours", CapView, (*Server).apiEndpointHours},
	{"GET", "/api/deliveries", CapView, (*Server).apiDeliveries},
	{"GET", "/api/events/{}", CapView, (*Server).apiEvent},
	{"POST", "/api/events/{}/redeliver", CapResend, (*Server).apiRedeliver},
	{"POST", "/api/undeliverable/redeliver", CapResend, (*Server).apiRedeliverUndeliverable},
	{"GET", "/api/event-types", CapView, (*Server).apiEventTypes},
}

// listQueries name the query parameters of the /api/ lists, as the admin
// API's routes do (api.CheckQuery); other routes let any through unread
// (the pages keep their state in the query, and a link is not refused
// for it).
var listQueries = map[string][]string{
	"GET /api/endpoints":   api.EndpointsQuery,
	"GET /api/deliveries":  api.DeliveriesQuery,
	"GET /api/event-types": api.NoQuery,
}

// Route is one route of the portal listener that api/openapi.yaml
// describes: the JSON API and the login and logout routes (the HTML pages
// are not an API).
type Route struct{ Method, Path string }

// Routes lists the portal listener's described routes, from the tables
// the server dispatches on. The admin listener serves the same /api/
// routes under /ui/.
func Routes() []Route {
	rs := []Route{{"GET", "/login"}, {"POST", "/logout"}}
	for _, r := range apiRoutes {
		rs = append(rs, Route{r.method, r.pattern})
	}
	return rs
}
