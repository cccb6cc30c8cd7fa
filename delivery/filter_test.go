package delivery

import (
	"errors"
	"strings"
	"testing"
)

func filterInput(t testing.TB, typ, tenant, data string) *FilterInput {
	t.Helper()
	in := &FilterInput{Type: typ, Tenant: tenant, ID: "evt_1"}
	var err error
	if in.Data, err = ParseFilterData([]byte(data)); err != nil {
		t.Fatal(err)
	}
	return in
}

// Filters see type, tenant, id and the parsed data; a missing field is
// nil; numbers compare whatever their JSON spelling; an error rejects.
func TestFilterMatch(t *testing.T) {
	ended := `{"outcome":"completed","duration_seconds":127,"customer":{"plan":"pro","tags":["vip","eu"]},"items":[{"sku":"a","qty":2},{"sku":"b","qty":5}]}`
	for _, c := range []struct {
		filter, data string
		want         bool
		err          bool
	}{
		{`data.outcome == "completed"`, ended, true, false},
		{`data.outcome == "completed" && data.duration_seconds > 60`, ended, true, false},
		{`data.duration_seconds > 127`, ended, false, false},
		{`data.duration_seconds == 127.0`, `{"duration_seconds":1.27e2}`, true, false},
		{`data.n % 2 == 1 && data.n / 2 == 3.5`, `{"n":7}`, true, false},
		{`data.big > 1e19 && data.neg == -3 && data.neg % 2 == -1`, `{"big":12345678901234567890,"neg":-3}`, true, false},
		{`data.whole == 2`, `{"whole":2.0}`, true, false},
		// Integers beyond 2^53 stay exact; one number beyond float64 is
		// ±Inf and leaves the rest of the data readable.
		{`data.n == 9007199254740993`, `{"n":9007199254740992}`, false, false},
		{`data.n == 9007199254740993 && data.n % 2 == 1`, `{"n":9007199254740993}`, true, false},
		{`data.n == 9223372036854775807`, `{"n":9223372036854775807}`, true, false},
		{`data.ok == true && data.huge > 1e300 && data.tiny < -1e300`, `{"huge":1e400,"tiny":-1e400,"ok":true}`, true, false},
		// Integer arithmetic is exact, and on overflow float64, as
		// JavaScript's numbers: never wrapped around.
		{`data.n + 1 > 0 && data.n - -1 > 0 && data.n * 2 > 1e19 && -data.m > 0`, `{"n":9223372036854775807,"m":-9223372036854775808}`, true, false},
		{`data.n - 1 < 0 && data.n * data.n > 1e37`, `{"n":-9223372036854775808}`, true, false},
		{`data.n + 1 == 9007199254740994 && data.n * 3 == 27021597764222979 && -data.n == -9007199254740993`, `{"n":9007199254740993}`, true, false},
		{`data.s + "x" == "ax" && data.f * 2 == 3.0 && -data.f == -1.5 && 2 - 3 == -1`, `{"s":"a","f":1.5}`, true, false},
		{`data.z == 0`, `{"z":1e-400}`, true, false},
		{`data.f % 2 == 1`, `{"f":7.5}`, false, true},
		{`data.customer.plan in ["pro", "enterprise"]`, ended, true, false},
		{`"vip" in data.customer.tags`, ended, true, false},
		{`any(data.items, .qty > 4)`, ended, true, false},
		{`count(data.items, .qty > 1) == 2`, ended, true, false},
		{`sum(data.items, .qty) >= 7`, ended, true, false},
		{`type == "conversation.ended" and tenant == "wgt_1" and id startsWith "evt_"`, ended, true, false},
		{`data.missing == nil`, ended, true, false},
		{`data.missing == "x"`, ended, false, false},
		{`data.missing?.deeper == nil`, ended, true, false},
		{`data.customer.plan matches "^pr"`, ended, true, false},
		{`len(data.customer.tags) == 2`, ended, true, false},
		{`data[0] == 1`, `[1,2]`, true, false},
		{`data.missing.deeper == nil`, ended, false, true}, // nil dereferenced
		{`data.outcome > 3`, ended, false, true},           // string vs number
		{`data.outcome`, ended, false, true},               // not a boolean
		{`data == "plain"`, `"plain"`, true, false},
	} {
		f, err := CompileFilter(c.filter)
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		got, err := f.Match(filterInput(t, "conversation.ended", "wgt_1", c.data))
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s over %s: %v, %v; want %v, error %v", c.filter, c.data, got, err, c.want, c.err)
		}
	}
}

// A bad filter is refused with where it went wrong; the constructs whose
// cost is not bounded by the event are refused too.
func TestFilterCompileErrors(t *testing.T) {
	for _, c := range []struct{ filter, want string }{
		{`data.x ==`, "unexpected token EOF (column 9)"},
		{"data.x == 1 &&\n  dta.y", "unknown name dta (line 2, column 3)"},
		{`1 + 1`, "expected bool"},
		{`let s = data.x; s + s == ""`, "let is not available"},
		{`len(1..1000000) > 0`, "range operator"},
		{`any(data.xs, any(data.ys, # > 1))`, "may use only the element"},
		{`any(data.xs, any(#.ys, # > 1))`, "may not be nested"},
		{`any(data.xs, # == data.y)`, "data: a predicate may use only the element"},
		{`repeat("a", 1000000000) == ""`, "unknown name repeat"},
		{`toJSON(data) == ""`, "unknown name toJSON"},
		{`now() > date("2020-01-01")`, "unknown name now"},
		{strings.Repeat(" ", MaxFilterBytes) + "true", "longer than 4096 bytes"},
		{strings.Repeat("1+", 1100) + "1 > 0", "maximum allowed nodes"},
		// Each + may copy all it has built so far: a chain of 250 over a
		// 64 KiB string would build gigabytes.
		{"len(data.s" + strings.Repeat(" + data.s", 9) + ") > 0", "at most 8 + operators, concat calls and string copies (upper, lower, trim…) in a filter (column"},
		{"len(" + strings.Repeat("concat(", 9) + "data.a" + strings.Repeat(", data.a)", 9) + ") > 0", "at most 8"},
		// Each piece a string of its own: split(s, "") of 250 KB is 250,000.
		{`len(split(data.s, "")) > 0`, "unknown name split"},
		{`len(splitAfter(data.s, "")) > 0`, "unknown name splitAfter"},
		{`len(uniq(data.a)) > 0`, "unknown name uniq"},
		{strings.Repeat(`upper(data.s) != "" && `, 9) + "true", "at most 8"},
		{strings.Repeat(`len(trim(data.s)) > 0 && `, 9) + "true", "at most 8"},
		// In the filter's terms, not Go's strconv.
		{`data.n > 99999999999999999999`, "integer 99999999999999999999 is out of range (at most 9223372036854775807; write 99999999999999999999.0 for a float) (column"},
		{`data.n > 1e999`, "number 1e999 is out of range"},
	} {
		_, err := CompileFilter(c.filter)
		var fe *FilterError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v; want a one-line *FilterError with %q", c.filter, err, c.want)
		}
	}
}

// FuzzFilter: any source either compiles or is refused with a
// *FilterError; a compiled filter evaluates without panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`data.outcome == "completed" && data.duration_seconds > 60`,
		`type startsWith "conversation." and tenant != ""`,
		`any(data.items, .qty > 4) || "vip" in data.tags`,
		`data?.a?.b ?? 1 > 0`,
		`let x = 1; x > 0`,
		`1..3 == [1, 2, 3]`,
		`(data.a + data.b) * 2 > 10 ? true : false`,
	} {
		f.Add(s)
	}
	in := filterInput(f, "t", "", `{"outcome":"completed","items":[{"qty":5}],"tags":["vip"],"a":1,"b":2}`)
	f.Fuzz(func(t *testing.T, src string) {
		flt, err := CompileFilter(src)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("%q: error %T %v is not a *FilterError", src, err, err)
			}
			return
		}
		flt.Match(in)
	})
}

// BenchmarkFilter is the per-event cost at ingest for an endpoint with a
// filter: parsing a 256-byte event's data once, and one evaluation.
func BenchmarkFilter(b *testing.B) {
	raw := []byte(`{"conversation_id":"conv_01J9ZQ4","outcome":"completed","duration_seconds":127,"customer":{"plan":"pro","tags":["vip","eu"]},"transcript":"` + strings.Repeat("x", 120) + `"}`)
	f, err := CompileFilter(`data.outcome == "completed" && data.duration_seconds > 60`)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ParseFilterData(raw)
		}
	})
	data, _ := ParseFilterData(raw)
	in := &FilterInput{Type: "conversation.ended", ID: "evt_1", Data: data}
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.Match(in)
		}
	})
}

// A matches pattern must be a literal and a filter's patterns small: the
// filter compiles (a stored one keeps working), and CheckWritten says
// what is wrong, for where filters are written to refuse it.
func TestFilterRegexCost(t *testing.T) {
	for _, c := range []struct{ filter, want string }{
		{`data.s matches "^pr[a-z]+$"`, ""},
		{`data.s matches data.pattern`, "the pattern of matches must be a string literal (column 8)"},
		{`data.s matches ("a" + "b")`, "must be a string literal"},
		{`data.s matches ".{1000}.{1000}.{1000}c"`, "matches patterns compile to 3003 regexp instructions in all, over the 256"},
		{`data.a matches "[a-f]{100}" || data.b not matches "x{200}"`, "over the 256"},
		// expr's parser makes reduce itself, past DisableBuiltin; its
		// accumulator doubles at each element: never run.
		{`len(reduce(data.a, #acc + #acc, "ab")) > 0`, "reduce is not available in filters (column 5)"},
		{`data.a | reduce(#acc + 1) > 0`, "reduce is not available in filters"},
	} {
		f, err := CompileFilter(c.filter)
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		err = f.CheckWritten()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.filter, err, c.want)
		}
		if strings.Contains(c.want, "reduce") {
			in := &FilterInput{Data: map[string]any{"a": make([]any, 64)}}
			if ok, err := f.Match(in); ok || err == nil {
				t.Errorf("%s ran: %v %v", c.filter, ok, err)
			}
		}
	}
}
