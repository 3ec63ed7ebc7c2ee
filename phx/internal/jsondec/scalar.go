package jsondec

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// str reads a string value at d.i (a '"'). Invalid UTF-8 and lone
// surrogates, which encoding/json replaces by U+FFFD, are refused instead.
func (d *decoder) str() (string, bool) {
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.data); j++ {
		c := d.data[j]
		switch {
		case c == '"':
			s := d.data[start:j]
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			d.i = j + 1
			return string(s), true
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

func (d *decoder) unescape(start int) (string, bool) {
	b := make([]byte, 0, 32)
	j := start
	for j < len(d.data) {
		c := d.data[j]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", false
			}
			d.i = j + 1
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(d.data) {
			return "", false
		}
		switch e := d.data[j+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(d.data[j+2:])
			if r < 0 {
				return "", false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				if len(d.data)-j < 6 || d.data[j] != '\\' || d.data[j+1] != 'u' {
					return "", false
				}
				r2 := hex4(d.data[j+2:])
				dec := utf16.DecodeRune(r, r2)
				if r2 < 0 || dec == utf8.RuneError {
					return "", false
				}
				r = dec
				j += 6
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number reads a JSON number at d.i and reports whether it is an integer
// literal (no fraction or exponent).
func (d *decoder) number() (s []byte, integer, ok bool) {
	start := d.i
	j := d.i
	if j < len(d.data) && d.data[j] == '-' {
		j++
	}
	if j >= len(d.data) {
		return nil, false, false
	}
	switch c := d.data[j]; {
	case c == '0':
		j++
	case '1' <= c && c <= '9':
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
	default:
		return nil, false, false
	}
	integer = true
	if j < len(d.data) && d.data[j] == '.' {
		integer = false
		j++
		k := j
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	if j < len(d.data) && (d.data[j] == 'e' || d.data[j] == 'E') {
		integer = false
		j++
		if j < len(d.data) && (d.data[j] == '+' || d.data[j] == '-') {
			j++
		}
		k := j
		for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	d.i = j
	return d.data[start:j], integer, true
}

func (d *decoder) int(p *plan, ptr unsafe.Pointer) bool {
	s, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(s), len(s)), 10, 64)
	if err != nil {
		return false
	}
	if p.bits < 64 && (n < -1<<(p.bits-1) || n > 1<<(p.bits-1)-1) {
		return false
	}
	switch p.bits {
	case 8:
		*(*int8)(ptr) = int8(n)
	case 16:
		*(*int16)(ptr) = int16(n)
	case 32:
		*(*int32)(ptr) = int32(n)
	default:
		*(*int64)(ptr) = n
	}
	return true
}

func (d *decoder) uint(p *plan, ptr unsafe.Pointer) bool {
	s, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	n, err := strconv.ParseUint(unsafe.String(unsafe.SliceData(s), len(s)), 10, 64)
	if err != nil {
		return false
	}
	if p.bits < 64 && n > 1<<p.bits-1 {
		return false
	}
	switch p.bits {
	case 8:
		*(*uint8)(ptr) = uint8(n)
	case 16:
		*(*uint16)(ptr) = uint16(n)
	case 32:
		*(*uint32)(ptr) = uint32(n)
	default:
		*(*uint64)(ptr) = n
	}
	return true
}

func (d *decoder) float(p *plan, ptr unsafe.Pointer) bool {
	s, _, ok := d.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), p.bits)
	if err != nil {
		return false
	}
	if p.bits == 32 {
		*(*float32)(ptr) = float32(f)
	} else {
		*(*float64)(ptr) = f
	}
	return true
}
