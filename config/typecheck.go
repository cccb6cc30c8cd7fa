package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// checkTypes compares each value of the file (decoded as plain TOML, tree)
// with the type of the field it sets, before the file is decoded into a
// Config. BurntSushi/toml drops a value that is not a table where a map is
// wanted without a word (headers = "X-A: 1" set no header) and words the
// other mismatches in Go's terms ("destination has type slice"); here each
// is an error naming its key and line, in the file's own terms. Types that
// decode themselves (Duration, Size, the envelope) check their own values,
// and unknown keys are left to the decoder's list of undecoded ones.
func (c *Config) checkTypes(tree map[string]any) []error {
	var errs []error
	c.checkValue("", tree, reflect.TypeFor[Config](), &errs)
	return errs
}

var (
	textType = reflect.TypeFor[encoding.TextUnmarshaler]()
	tomlType = reflect.TypeFor[toml.Unmarshaler]()
)

func (c *Config) checkValue(key string, v any, t reflect.Type, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(want string) {
		*errs = append(*errs, c.ErrAt(key, "must be %s, not %s", want, tomlKind(v)))
	}
	if t == reflect.TypeFor[Duration]() {
		// The decoder gives a text type any value's text: timeout = 0
		// was taken, and 00:00:05 read as "0000-01-01T00:00:05Z".
		if _, ok := v.(string); !ok {
			bad(`a string such as "5s"`)
		}
		return
	}
	if p := reflect.PointerTo(t); p.Implements(textType) || p.Implements(tomlType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a table")
			return
		}
		// In key order, so that several errors come in the same order each time.
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if f, ok := fieldOf(t, k); ok {
				c.checkValue(join(key, k), m[k], f.Type, errs)
			} else if f, ok := fieldFolded(t, k); ok {
				// The decoder takes URL for url, and the last of url and URL
				// wins; it does not list either as undecoded.
				*errs = append(*errs, c.ErrAt(join(key, k), "unknown key (keys are lower case: %s)", f))
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a table")
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			c.checkValue(join(key, k), m[k], t.Elem(), errs)
		}
	case reflect.Slice:
		rv := reflect.ValueOf(v)
		if v == nil || rv.Kind() != reflect.Slice {
			bad("an array")
			return
		}
		for i := range rv.Len() {
			c.checkValue(fmt.Sprintf("%s[%d]", key, i), rv.Index(i).Interface(), t.Elem(), errs)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, ok := v.(int64); !ok {
			bad("an integer")
		}
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case int64, float64:
		default:
			bad("a number")
		}
	}
}

// tomlKind names a decoded value's type in the file's terms; the API's
// JSON values (numbers as float64, arrays as []any) come here too.
func tomlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	if reflect.ValueOf(v).Kind() == reflect.Slice {
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// fieldOf finds the field of struct type t that key k sets.
func fieldOf(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == k && name != "-" && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldFolded is the key of struct type t that k spells in other case.
func fieldFolded(t reflect.Type, k string) (string, bool) {
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); name != "-" && strings.EqualFold(name, k) {
			return name, true
		}
	}
	return "", false
}

func join(key, k string) string {
	if key == "" {
		return k
	}
	return key + "." + k
}
