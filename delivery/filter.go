package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// An endpoint's filter is a github.com/expr-lang/expr expression over the
// event; an event is delivered to the endpoint only when it yields true.
// It is compiled once, when the endpoint is built (a config load, an API
// call), and evaluated at ingest for each event whose type the endpoint
// subscribes to.
//
// Filters may come from a platform's customers (through the API), and
// ingest runs them for every matching event, so what they may do is
// bounded: their cost grows at most with the expression's size times the
// event's size, never faster.
//   - At most MaxFilterBytes of source and maxFilterNodes syntax nodes.
//   - No `let`: without variables no value is used twice, so no string or
//     array can double in size step after step.
//   - No range operator (`1..1000000` builds an array from nothing).
//   - Iterating builtins (all, any, none, one, count, sum, filter, map, find…)
//     may not nest, and their predicate may use only the element (`#`,
//     `.field`) and literals: over all elements, a predicate then reads
//     the array once, not the array times the event.
//   - Builtins whose output can outgrow their input, or that depend on
//     something other than the event, are not available: repeat, join,
//     replace, reduce, toJSON, fromJSON, toBase64, fromBase64, string, now,
//     date, duration, timezone; nor split and splitAfter, which make an
//     object of each piece (split(s, "") of a 250 KB string is 250,000
//     strings; a hundred of them in one filter took seconds and gigabytes
//     per event); nor uniq, which compares each element with every one
//     kept before it (20,000 numbers took 1.9 s).
//   - At most maxGrowing `+` operators, concat calls and string copies
//     (upper, lower, trim, trimPrefix, trimSuffix): each may build a
//     value as long as its operands together (strings, arrays), and a
//     chain of them copies the growing value at every step, so k of them
//     cost up to k²/2 times the event; 8 keep that a small multiple.
//   - matches takes a string literal, and a filter's patterns together
//     compile to at most maxRegexInsts instructions: RE2's cost per byte
//     is its program's size, which counted repetition multiplies. Checked
//     where a filter is written (CheckRegexCost), not where it is built.
//   - The VM's memory budget (vm.MemoryBudget, expr's default of 1e6
//     elements) bounds the arrays and maps an evaluation builds and the
//     elements it iterates over.

// MaxFilterBytes bounds a filter's source.
const MaxFilterBytes = 4 << 10

// maxFilterNodes bounds a filter's syntax tree; 4 KiB of source rarely
// needs more.
const maxFilterNodes = 1024

// maxGrowing bounds a filter's `+` operators and concat calls.
const maxGrowing = 8

var filterBuiltinsOff = []string{"repeat", "join", "replace", "reduce", "toJSON", "fromJSON", "toBase64", "fromBase64",
	"string", "now", "date", "duration", "timezone", "split", "splitAfter", "uniq"}

// copyingBuiltins make a copy of a string as long as their argument.
var copyingBuiltins = map[string]bool{"concat": true, "upper": true, "lower": true, "trim": true, "trimPrefix": true, "trimSuffix": true}

// FilterInput is what a filter sees: `type`, `tenant`, `id` and `data`
// (the event's data, or its payload for payload events, as
// ParseFilterData returns it).
type FilterInput struct {
	Type   string `expr:"type"`
	Tenant string `expr:"tenant"`
	ID     string `expr:"id"`
	Data   any    `expr:"data"`
}

// Filter is a compiled filter expression. It is safe for concurrent use.
type Filter struct {
	src  string
	prog *vm.Program
	// regex: it uses matches. RE2 is linear in the string, but its cost
	// per byte grows with the pattern: one `(x+x+)+y` over a 250 KB string
	// took 11 ms, and a filter has room for a hundred of them, so
	// untrusted filters may not (config.CheckNewManaged).
	regex bool
	// written is what a filter may not have where it is written (the
	// file, a create or patch): matches patterns that are not literals or
	// over maxRegexInsts, a builtin that is not available. It is not
	// refused where a filter is built, so that a stored endpoint's filter
	// from before the rule does not stop the start: one with costly
	// patterns keeps working, and one with an unavailable builtin never
	// runs (broken: Match returns it).
	written, broken error
}

// UsesRegex reports whether the filter uses the matches operator.
func (f *Filter) UsesRegex() bool { return f.regex }

// CheckWritten returns what is wrong with the filter where it is
// written: an unavailable builtin, a matches pattern that is not a string
// literal, or patterns that compile to more than maxRegexInsts
// instructions together.
func (f *Filter) CheckWritten() error { return f.written }

// maxRegexInsts bounds the compiled size of a filter's matches patterns,
// together. RE2's time is linear in the string but grows with the program
// it runs per byte, and counted repetition makes that program far larger
// than the pattern's source: `.{1000}` is a thousand instructions. On a
// 256 KiB string each instruction costs ~2.5 ms (`.{200}c` took 0.5 s),
// so 256 of them keep the worst filter under a second per event at the
// default max_event_bytes while leaving room for what filters match
// (an email address is 13, a UUID about 40, `(?i)completed|abandoned|error`
// 27).
const maxRegexInsts = 256

// regexVisitor is an ast.Visitor checking a filter's matches operators:
// each pattern a string literal (a pattern from the event would be
// compiled per event, at any size), all of them together within
// maxRegexInsts.
type regexVisitor struct {
	found bool
	insts int
	err   *file.Error
}

func (v *regexVisitor) Visit(n *ast.Node) {
	b, ok := (*n).(*ast.BinaryNode)
	if !ok || b.Operator != "matches" || v.err != nil {
		return
	}
	v.found = true
	lit, ok := b.Right.(*ast.StringNode)
	if !ok {
		v.err = refuse(b, "the pattern of matches must be a string literal")
		return
	}
	re, err := syntax.Parse(lit.Value, syntax.Perl)
	if err != nil {
		return // expr's own compile reports it
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return
	}
	if v.insts += len(prog.Inst); v.insts > maxRegexInsts {
		v.err = refuse(b, "matches patterns compile to %d regexp instructions in all, over the %d a filter may have (a counted repeat like {100} repeats its operand)", v.insts, maxRegexInsts)
	}
}

// FilterError is a filter that does not compile, with where.
type FilterError struct {
	Line, Column int // 1-based; 0 when the error has no position
	Msg          string
}

func (e *FilterError) Error() string {
	switch {
	case e.Line > 1:
		return fmt.Sprintf("%s (line %d, column %d)", e.Msg, e.Line, e.Column)
	case e.Column > 0:
		return fmt.Sprintf("%s (column %d)", e.Msg, e.Column)
	}
	return e.Msg
}

// CompileFilter compiles src. Errors are *FilterError.
func CompileFilter(src string) (*Filter, error) {
	if len(src) > MaxFilterBytes {
		return nil, &FilterError{Msg: fmt.Sprintf("longer than %d bytes", MaxFilterBytes)}
	}
	opts := []expr.Option{expr.Env(FilterInput{}), expr.AsBool(), expr.MaxNodes(maxFilterNodes), expr.Optimize(false)}
	for _, name := range filterBuiltinsOff {
		opts = append(opts, expr.DisableBuiltin(name))
	}
	// Unoptimized first: the optimizer folds constant expressions at
	// compile time (a constant range included), which the checks below
	// must see, and refuse, before anything is evaluated.
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, filterError(err)
	}
	if fe := checkFilter(prog.Node(), false); fe != nil {
		return nil, filterError(fe.Bind(file.NewSource(src)))
	}
	if fe := checkGrowing(prog.Node()); fe != nil {
		return nil, filterError(fe.Bind(file.NewSource(src)))
	}
	if fe := checkUnavailable(prog.Node()); fe != nil {
		err := filterError(fe.Bind(file.NewSource(src)))
		return &Filter{src: src, written: err, broken: err}, nil
	}
	var m regexVisitor
	root := prog.Node()
	ast.Walk(&root, &m)
	var written error
	if m.err != nil {
		written = filterError(m.err.Bind(file.NewSource(src)))
	}
	if prog, err = expr.Compile(src, append(opts[:len(opts):len(opts)], append(exactArith, expr.Optimize(true))...)...); err != nil {
		return nil, filterError(err)
	}
	return &Filter{src: src, prog: prog, regex: m.found, written: written}, nil
}

// exactArith makes + - * and unary minus on integers exact, or on
// overflow float64, as JavaScript computes them (the filters of Svix and
// Convoy run on JavaScript's numbers): expr's own wrap around, and with
// integers read exactly up to int64 (ParseFilterData), `data.n + 1 > 0`
// was false for n = 9223372036854775807. Other operands keep expr's
// meaning. The compile that checks a filter runs without it: its rules
// see the operators as written, and the names it calls by are none a
// filter could write.
var exactArith = []expr.Option{
	expr.Patch(arithVisitor{}),
	expr.Function("+int", func(p ...any) (any, error) { return exactAdd(p[0], p[1], false), nil }, new(func(any, any) any)),
	expr.Function("-int", func(p ...any) (any, error) { return exactAdd(p[0], p[1], true), nil }, new(func(any, any) any)),
	expr.Function("*int", func(p ...any) (any, error) { return exactMul(p[0], p[1]), nil }, new(func(any, any) any)),
	expr.Function("neg", func(p ...any) (any, error) { return exactNeg(p[0]), nil }, new(func(any) any)),
}

// arithVisitor turns the operators exactArith covers into calls.
type arithVisitor struct{}

func (arithVisitor) Visit(n *ast.Node) {
	var name string
	var args []ast.Node
	switch x := (*n).(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "+", "-", "*":
			name, args = x.Operator+"int", []ast.Node{x.Left, x.Right}
		}
	case *ast.UnaryNode:
		if x.Operator == "-" {
			name, args = "neg", []ast.Node{x.Node}
		}
	}
	if name != "" {
		ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args})
	}
}

func exactAdd(a, b any, minus bool) any {
	x, ok1 := a.(int)
	y, ok2 := b.(int)
	switch {
	case !ok1 || !ok2:
		if minus {
			return runtime.Subtract(a, b)
		}
		return runtime.Add(a, b)
	case minus:
		if d := x - y; (d < x) == (y > 0) {
			return d
		}
		return float64(x) - float64(y)
	}
	if s := x + y; (s > x) == (y > 0) {
		return s
	}
	return float64(x) + float64(y)
}

func exactMul(a, b any) any {
	x, ok1 := a.(int)
	y, ok2 := b.(int)
	if !ok1 || !ok2 {
		return runtime.Multiply(a, b)
	}
	if p := x * y; x == 0 || (p/x == y && !(x == -1 && y == math.MinInt)) {
		return p
	}
	return float64(x) * float64(y)
}

func exactNeg(a any) any {
	if x, ok := a.(int); ok && x == math.MinInt {
		return -float64(x)
	}
	return runtime.Negate(a)
}

// filterError turns expr's error (a message, a position and a snippet
// over several lines) into one line for a config error.
func filterError(err error) *FilterError {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &FilterError{Line: fe.Line, Column: fe.Column + 1, Msg: literalMessage(fe.Message)}
	}
	return &FilterError{Msg: err.Error()}
}

// outOfRange is expr's message for a number literal its Go parse refused.
var outOfRange = regexp.MustCompile(`^invalid (integer|float) literal: strconv\.Parse(?:Int|Float): parsing "([^"]*)": value out of range$`)

// literalMessage says what is wrong with an out-of-range number literal in
// the filter's terms rather than Go's.
func literalMessage(msg string) string {
	m := outOfRange.FindStringSubmatch(msg)
	switch {
	case m == nil:
		return msg
	case m[1] == "integer":
		return fmt.Sprintf("integer %.40s is out of range (at most 9223372036854775807; write %.40s.0 for a float)", m[2], m[2])
	}
	return fmt.Sprintf("number %.40s is out of range (at most about 1.8e308)", m[2])
}

// refuse is an error at node n; CompileFilter binds it to the source for
// its line and column.
func refuse(n ast.Node, format string, args ...any) *file.Error {
	return &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}
}

// checkFilter walks the tree and refuses what the package comment rules
// out. inPredicate is set inside an iterating builtin's predicate.
func checkFilter(n ast.Node, inPredicate bool) *file.Error {
	if n == nil {
		return nil
	}
	var kids []ast.Node
	switch n := n.(type) {
	case *ast.VariableDeclaratorNode:
		return refuse(n, "let is not available in filters")
	case *ast.BinaryNode:
		if n.Operator == ".." {
			return refuse(n, "the range operator .. is not available in filters")
		}
		kids = []ast.Node{n.Left, n.Right}
	case *ast.IdentifierNode:
		if inPredicate {
			return refuse(n, "%s: a predicate may use only the element (# or .field) and literals", n.Value)
		}
	case *ast.PredicateNode:
		if inPredicate {
			return refuse(n, "iterating builtins may not be nested")
		}
		return checkFilter(n.Node, true)
	case *ast.UnaryNode:
		kids = []ast.Node{n.Node}
	case *ast.ChainNode:
		kids = []ast.Node{n.Node}
	case *ast.MemberNode:
		kids = []ast.Node{n.Node, n.Property}
	case *ast.SliceNode:
		kids = []ast.Node{n.Node, n.From, n.To}
	case *ast.CallNode:
		kids = append([]ast.Node{n.Callee}, n.Arguments...)
	case *ast.BuiltinNode:
		kids = n.Arguments
	case *ast.ConditionalNode:
		kids = []ast.Node{n.Cond, n.Exp1, n.Exp2}
	case *ast.SequenceNode:
		kids = n.Nodes
	case *ast.ArrayNode:
		kids = n.Nodes
	case *ast.MapNode:
		kids = n.Pairs
	case *ast.PairNode:
		kids = []ast.Node{n.Key, n.Value}
	}
	for _, k := range kids {
		if fe := checkFilter(k, inPredicate); fe != nil {
			return fe
		}
	}
	return nil
}

// checkUnavailable refuses the builtins of filterBuiltinsOff that
// expr.DisableBuiltin leaves available: those the parser makes itself
// (reduce, whose accumulator doubles a string at each element with
// `#acc + #acc`: 40 elements would be a terabyte).
func checkUnavailable(root ast.Node) *file.Error {
	var v unavailableVisitor
	ast.Walk(&root, &v)
	return v.err
}

type unavailableVisitor struct{ err *file.Error }

func (v *unavailableVisitor) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BuiltinNode); ok && v.err == nil && slices.Contains(filterBuiltinsOff, b.Name) {
		v.err = refuse(b, "%s is not available in filters", b.Name)
	}
}

// checkGrowing refuses more than maxGrowing `+` operators and concat
// calls, naming the first one over.
func checkGrowing(root ast.Node) *file.Error {
	var v growingVisitor
	ast.Walk(&root, &v)
	return v.err
}

type growingVisitor struct {
	n   int
	err *file.Error
}

func (v *growingVisitor) Visit(node *ast.Node) {
	grows := false
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		grows = n.Operator == "+"
	case *ast.BuiltinNode:
		grows = copyingBuiltins[n.Name]
	}
	if grows {
		if v.n++; v.n > maxGrowing && v.err == nil {
			v.err = refuse(*node, "at most %d + operators, concat calls and string copies (upper, lower, trim…) in a filter", maxGrowing)
		}
	}
}

// ParseFilterData parses an event's data (or payload) for FilterInput.Data.
// Numbers are read from their JSON text one by one, not through float64
// for the whole document: an integer that fits int64 is an int, exact
// beyond 2^53 (`data.id == 9007199254740993` must not match …992), and
// one with a fraction, an exponent or beyond int64 is a float64, whole
// ones up to 2^53 turned back into int. expr's % takes integers, and
// comparisons mix both freely, so `data.n % 2 == 0` works as written. A
// number beyond float64 (1e400) is ±Inf, as JavaScript reads it: one such
// value must not make the whole event unreadable to every filter.
func ParseFilterData(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data: more than one JSON value")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return int(n)
		}
		f, _ := strconv.ParseFloat(string(x), 64) // ±Inf when out of range
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int(f)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// String is the filter's source.
func (f *Filter) String() string { return f.src }

// vms are reused: a VM keeps its stack and scopes between runs.
var vms = sync.Pool{New: func() any { return &vm.VM{} }}

// Match evaluates the filter. An error (a missing field dereferenced, a
// type mismatch, the memory budget) means the event is not delivered.
func (f *Filter) Match(in *FilterInput) (bool, error) {
	if f.broken != nil {
		return false, f.broken
	}
	m := vms.Get().(*vm.VM)
	out, err := m.Run(f.prog, in)
	vms.Put(m)
	if err != nil {
		return false, filterError(err)
	}
	ok, isBool := out.(bool)
	if !isBool {
		return false, fmt.Errorf("filter yielded %T, not a boolean", out)
	}
	return ok, nil
}
