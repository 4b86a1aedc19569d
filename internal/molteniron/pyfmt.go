package molteniron

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Object is a JSON object that keeps its keys in insertion order. Molten
// Iron is Python: its replies, its blob column and its csv status all show
// dict keys in the order they were inserted, so the Go side must too if the
// bytes a script sees are to stay the same.
type Object []Member

// Member is one key of an Object.
type Member struct {
	Key   string
	Value any
}

// Get returns the value of key and whether it is present.
func (o Object) Get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of key in place, or appends it, the way assigning
// to a Python dict does.
func (o *Object) Set(key string, v any) {
	for i := range *o {
		if (*o)[i].Key == key {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{key, v})
}

// Decode parses JSON text into Objects, []any, string, json.Number, bool and
// nil, keeping key order. A repeated key keeps its first position and its
// last value, as Python's json.loads does.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		off := int(dec.InputOffset())
		for off < len(data) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
			off++
		}
		return nil, &extraData{off}
	}
	return v, nil
}

// extraData is Python's "Extra data" error: something follows the value.
type extraData struct{ off int }

func (e *extraData) Error() string { return "extra data after the JSON value" }

// MaxDepth bounds how deeply arrays and objects may nest: encoding/json's
// own limit, which the REST API's decoder applies. Without it, a 1 MiB body
// of "[[[[…" recursed a million levels and cost hundreds of megabytes.
const MaxDepth = 10000

// errTooDeep is the refusal of a body nested deeper than MaxDepth.
var errTooDeep = fmt.Errorf("the JSON value nests deeper than %d levels", MaxDepth)

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, errTooDeep
		}
		switch t {
		case '{':
			o := Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.Set(k, v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			l := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := dec.Token()
			return l, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// pythonJSONError words a JSON syntax error the way Python's json module
// does ("Expecting value: line 1 column 1 (char 0)") for the cases a client
// meets: a body that is not JSON at all, and data after the value. Other
// errors keep Go's wording with Python's position format.
func pythonJSONError(data []byte, err error) string {
	start := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
	what, off := "Expecting value", start
	var ed *extraData
	var se *json.SyntaxError
	switch {
	case errors.Is(err, errTooDeep):
		return err.Error()
	case !startsValue(data[start:]):
	case errors.As(err, &ed):
		what, off = "Extra data", ed.off
	case errors.As(err, &se):
		what, off = "Invalid JSON ("+se.Error()+")", max(int(se.Offset)-1, 0)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		what, off = "Unterminated JSON", len(data)
	}
	off = min(off, len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off + 1
	if i := bytes.LastIndexByte(data[:off], '\n'); i >= 0 {
		col = off - i
	}
	return fmt.Sprintf("%s: line %d column %d (char %d)", what, line, col, off)
}

// startsValue reports whether b begins like a JSON value, the check behind
// Python's "Expecting value".
func startsValue(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case '{', '[', '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(b, []byte(lit)) {
			return true
		}
	}
	return false
}

// EncodeJSON renders v as Python's json.dumps does by default: ", " and ": "
// separators and every non-ASCII character escaped (ensure_ascii). Values
// are Objects, []any, map[string]any (sorted keys), strings, json.Number,
// ints, floats, bools and nil.
func EncodeJSON(v any) []byte {
	var b bytes.Buffer
	encodeJSON(&b, v)
	return b.Bytes()
}

func encodeJSON(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writePyJSONString(b, t)
	case json.Number:
		b.WriteString(pyNumber(t, true))
	case int:
		b.WriteString(strconv.Itoa(t))
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case float64:
		b.WriteString(pyFloat(t, true))
	case Object:
		b.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyJSONString(b, m.Key)
			b.WriteString(": ")
			encodeJSON(b, m.Value)
		}
		b.WriteByte('}')
	case map[string]any:
		encodeJSON(b, sortedObject(t))
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			encodeJSON(b, e)
		}
		b.WriteByte(']')
	case []Object:
		l := make([]any, len(t))
		for i := range t {
			l[i] = t[i]
		}
		encodeJSON(b, l)
	default:
		writePyJSONString(b, fmt.Sprint(t))
	}
}

func sortedObject(m map[string]any) Object {
	o := make(Object, 0, len(m))
	for k, v := range m {
		o = append(o, Member{k, v})
	}
	for i := 1; i < len(o); i++ {
		for j := i; j > 0 && o[j].Key < o[j-1].Key; j-- {
			o[j], o[j-1] = o[j-1], o[j]
		}
	}
	return o
}

func writePyJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r >= 0x20 && r < 0x7f:
				b.WriteRune(r)
			case r > 0xffff:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
}

// pyNumber renders a JSON number as Python would after json.loads: integers
// exactly, anything with a fraction or exponent as a float.
func pyNumber(n json.Number, inJSON bool) string {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, ok := new(big.Int).SetString(s, 10); ok {
			return i.String()
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return s
	}
	return pyFloat(f, inJSON)
}

// pyFloat is Python's float repr: shortest round-trip digits, ".0" on whole
// numbers, and exponent form below 1e-4 or from 1e16 up.
func pyFloat(f float64, inJSON bool) string {
	switch {
	case math.IsInf(f, 1):
		if inJSON {
			return "Infinity"
		}
		return "inf"
	case math.IsInf(f, -1):
		if inJSON {
			return "-Infinity"
		}
		return "-inf"
	case math.IsNaN(f):
		if inJSON {
			return "NaN"
		}
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	if f != 0 && (exp < -4 || exp >= 16) {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// Repr renders v as Python's repr() of the value json.loads would give:
// the status csv prints the blob dict this way.
func Repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if t {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		b.WriteString(reprString(t))
	case json.Number:
		b.WriteString(pyNumber(t, false))
	case int:
		b.WriteString(strconv.Itoa(t))
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case float64:
		b.WriteString(pyFloat(t, false))
	case Object:
		b.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(reprString(m.Key))
			b.WriteString(": ")
			writeRepr(b, m.Value)
		}
		b.WriteByte('}')
	case map[string]any:
		writeRepr(b, sortedObject(t))
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e)
		}
		b.WriteByte(']')
	default:
		b.WriteString(reprString(fmt.Sprint(t)))
	}
}

// reprString is Python 3's str.__repr__: single quotes unless the text has
// a single quote and no double quote, printable Unicode kept as is.
func reprString(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\udc%02x`, s[i-1])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case r > 0x7f && !unicode.IsPrint(r):
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// Str is Python's str() of a decoded JSON value: strings as they are,
// everything else as its repr. The csv and human status tables use it.
func Str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return Repr(v)
}

// timedelta renders d as Python's str(datetime.timedelta): "H:MM:SS",
// ".ffffff" when there are microseconds, and "N day(s), " in front; the
// csv status shows how long a node has been allocated this way.
func timedelta(d time.Duration) string {
	us := d.Microseconds()
	const day = int64(86400 * 1e6)
	days := us / day
	rem := us % day
	if rem < 0 {
		rem += day
		days--
	}
	secs, micro := rem/1e6, rem%1e6
	s := fmt.Sprintf("%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	if micro != 0 {
		s += fmt.Sprintf(".%06d", micro)
	}
	if days != 0 {
		plural := "s"
		if days == 1 || days == -1 {
			plural = ""
		}
		s = fmt.Sprintf("%d day%s, %s", days, plural, s)
	}
	return s
}
