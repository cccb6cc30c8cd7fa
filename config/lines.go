package config

import (
	"fmt"
	"regexp"
	"strings"
)

// keyLines maps dotted key paths ("endpoints[1].signing.secret", and the
// same without indexes) to the line that sets them, so errors found after
// decoding can still name a line; and each line to the key it sets, so a
// syntax error names the key on its own line rather than the last one the
// parser finished (a table's name, lines above).
type keyLines struct {
	byKey  map[string]int
	byLine map[int]string
}

var (
	tableRe = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_.\-"]+)\s*\]`)
	arrayRe = regexp.MustCompile(`^\s*\[\[\s*([A-Za-z0-9_.\-"]+)\s*\]\]`)
	keyRe   = regexp.MustCompile(`^\s*("[^"]*"|[A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=`)
)

func indexKeys(b []byte) keyLines {
	m := keyLines{byKey: map[string]int{}, byLine: map[int]string{}}
	count := map[string]int{}
	table, plain, broken := "", "", false
	set := func(k string, line int) {
		if _, ok := m.byKey[k]; !ok {
			m.byKey[k] = line
		}
		if _, ok := m.byLine[line]; !ok && !broken {
			m.byLine[line] = k
		}
	}
	for i, l := range strings.Split(string(b), "\n") {
		line := i + 1
		if g := arrayRe.FindStringSubmatch(l); g != nil {
			broken = false
			name := g[1]
			table, plain = fmt.Sprintf("%s[%d]", name, count[name]), name
			count[name]++
			set(table, line)
			set(plain, line)
			continue
		}
		if g := tableRe.FindStringSubmatch(l); g != nil {
			broken = false
			name := g[1]
			// [endpoints.signing] belongs to the latest [[endpoints]].
			plain = name
			table = name
			for arr, n := range count {
				if rest, ok := strings.CutPrefix(name, arr+"."); ok {
					table = fmt.Sprintf("%s[%d].%s", arr, n-1, rest)
				}
			}
			set(table, line)
			set(plain, line)
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "[") {
			// A header the parser will refuse (or a line of a multi-line
			// string): the keys below it may be in no table this can name,
			// so no line below names a key for a syntax error.
			broken = true
			continue
		}
		if g := keyRe.FindStringSubmatch(l); g != nil {
			k := strings.ReplaceAll(strings.Trim(g[1], `"`), " ", "")
			join := func(t string) string {
				if t == "" {
					return k
				}
				return t + "." + k
			}
			set(join(table), line)
			set(join(plain), line)
		}
	}
	return m
}

// find returns the line of key or of its nearest enclosing key.
func (m keyLines) find(key string) int {
	for key != "" {
		if l, ok := m.byKey[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}
