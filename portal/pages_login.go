package portal

// loginPage is GET /ui/login on the admin listener: the operators' form
// for the admin token. Its script posts the token as JSON (POST /ui/login
// answers 204 and sets the session), so the browser sends the request's
// real Origin; the portal listener's /login is the magic link, served
// before the pages.
func (s *Server) loginPage(r *request) error {
	if !r.ui || s.conf().AdminToken() == "" || r.sess != nil {
		seeOther(r.ctx, r.base+"/endpoints")
		return nil
	}
	return s.render(r, 200, "login", "", "Log in", nil)
}
