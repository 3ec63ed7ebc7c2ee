package presence_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// jsCanon rewrites a JSON value the way JSON.stringify(JSON.parse(v)) prints
// it in node: numbers as JavaScript formats doubles, strings with only the
// escapes JSON.stringify uses, object members with array-index names first
// and repeated names collapsed. It lets the differential test compare the
// Go side's raw metas with node's output byte for byte.
func jsCanon(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b bytes.Buffer
	if err := canonValue(dec, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func canonValue(dec *json.Decoder, b *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			b.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					b.WriteByte(',')
				}
				if err := canonValue(dec, b); err != nil {
					return err
				}
			}
			b.WriteByte(']')
			_, err = dec.Token()
			return err
		}
		type member struct {
			key string
			val []byte
		}
		var ms []member
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			var vb bytes.Buffer
			if err := canonValue(dec, &vb); err != nil {
				return err
			}
			k := kt.(string)
			if i := slices.IndexFunc(ms, func(m member) bool { return m.key == k }); i >= 0 {
				ms[i].val = vb.Bytes()
			} else {
				ms = append(ms, member{k, vb.Bytes()})
			}
		}
		slices.SortStableFunc(ms, func(a, c member) int {
			ai, ci := jsIndex(a.key), jsIndex(c.key)
			switch {
			case ai >= 0 && ci >= 0:
				return int(ai - ci)
			case ai >= 0:
				return -1
			case ci >= 0:
				return 1
			}
			return 0
		})
		b.WriteByte('{')
		for i, m := range ms {
			if i > 0 {
				b.WriteByte(',')
			}
			jsString(b, m.key)
			b.WriteByte(':')
			b.Write(m.val)
		}
		b.WriteByte('}')
		_, err = dec.Token()
		return err
	case string:
		jsString(b, t)
	case json.Number:
		f, _ := strconv.ParseFloat(string(t), 64)
		b.WriteString(jsNumber(f))
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case nil:
		b.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %v", tok)
	}
	return nil
}

func jsIndex(k string) int64 {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return -1
	}
	v, err := strconv.ParseInt(k, 10, 64)
	if err != nil || v < 0 || v > 4294967294 || strconv.FormatInt(v, 10) != k {
		return -1
	}
	return v
}

func jsString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func jsNumber(f float64) string {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return "null"
	case f == 0:
		return "0"
	case math.Abs(f) >= 1e21 || math.Abs(f) < 1e-6:
		s := strconv.FormatFloat(f, 'e', -1, 64)
		s = strings.Replace(s, "e+0", "e+", 1)
		s = strings.Replace(s, "e-0", "e-", 1)
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
