package delivery

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message is what a signature and header templates are computed over. The
// id and body never change between attempts; Timestamp is taken fresh.
type Message struct {
	ID        string
	Type      string
	Timestamp time.Time
	Body      []byte
}

// A template is a string with {placeholders}, parsed once at config time.
type template []segment

type segment struct {
	lit string
	v   string // "" for a literal
}

// parseTemplate splits s into literals and the placeholders in allowed.
func parseTemplate(s string, allowed ...string) (template, error) {
	var t template
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t = append(t, segment{lit: s})
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in %q", s)
		}
		name := s[i+1 : i+j]
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return nil, fmt.Errorf("unknown placeholder {%s}; allowed: {%s}", name, strings.Join(allowed, "}, {"))
		}
		if i > 0 {
			t = append(t, segment{lit: s[:i]})
		}
		t = append(t, segment{v: name})
		s = s[i+j+1:]
	}
	return t, nil
}

// appendTo renders the template for m.
func (t template) appendTo(dst []byte, m *Message) []byte {
	for _, seg := range t {
		switch seg.v {
		case "":
			dst = append(dst, seg.lit...)
		case "id":
			dst = append(dst, m.ID...)
		case "type":
			dst = append(dst, m.Type...)
		case "timestamp":
			dst = strconv.AppendInt(dst, m.Timestamp.Unix(), 10)
		case "body":
			dst = append(dst, m.Body...)
		}
	}
	return dst
}
