package store

import (
	"encoding/binary"
	"errors"
)

// Records are encoded with a small length-prefixed binary codec rather than
// JSON: the delivery record carries the rendered body, which would otherwise
// be base64-inflated and re-validated on every attempt.

var errCorrupt = errors.New("corrupt record")

type encoder struct{ b []byte }

func (e *encoder) u64(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i64(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(p []byte) { e.u64(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)   { e.u64(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) boolean(v bool) { e.b = append(e.b, b2u(v)) }
func (e *encoder) byte1(v uint8)  { e.b = append(e.b, v) }

// fixed64 is big-endian and fixed-size, so a value can be stamped into an
// encoded record in place (stampSeq).
func (e *encoder) fixed64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func b2u(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

type decoder struct {
	b   []byte
	err error
	// view makes bytes return slices of b instead of copies: only for
	// records read and rewritten within one write transaction.
	view bool
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes copies (unless view), because bbolt's value memory is only valid
// inside the transaction.
func (d *decoder) bytes() []byte {
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errCorrupt
		return nil
	}
	out := d.b[:n:n]
	if !d.view {
		out = append([]byte(nil), out...)
	}
	d.b = d.b[n:]
	return out
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) byte1() uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) boolean() bool { return d.byte1() == 1 }

func (d *decoder) fixed64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
