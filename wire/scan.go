package wire

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the hand-written JSON scanner used on the decoding hot
// path. It never builds values: it only finds where a value ends and checks
// that the bytes up to there are well-formed JSON (RFC 8259 grammar) in valid
// UTF-8. Only the header strings (topic, event, refs, reply status) are ever
// turned into Go strings.

// maxDepth bounds nesting of arrays and objects in a payload, as encoding/json
// does, so that a hostile frame cannot exhaust the stack.
const maxDepth = 10000

// SWAR constants: every byte of the word set to the given value.
const (
	lsb   = 0x0101010101010101
	msb   = 0x8080808080808080
	quote = 0x2222222222222222 * 1 // '"'
	bslsh = 0x5c5c5c5c5c5c5c5c     // '\\'
	space = 0x2020202020202020     // ' ', the first byte that needs no escape
)

// plainWord reports whether none of the 8 bytes of w needs attention inside
// a JSON string: no quote, no backslash, no control byte and no byte >= 0x80.
// A false result may be spurious; callers then look at the bytes one by one.
func plainWord(w uint64) bool {
	hasZero := func(v uint64) uint64 { return (v - lsb) &^ v & msb }
	m := hasZero(w^quote) | hasZero(w^bslsh) | ((w - space) &^ w & msb) | (w & msb)
	return m == 0
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// scanString checks the JSON string starting at b[i] == '"' and returns the
// index just past its closing quote and whether it contains escapes. It
// checks escapes (including the four hex digits of \u) and UTF-8 validity;
// lone surrogate escapes such as \ud800 are accepted, as JSON's grammar does.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	start := i
	i++ // opening quote
	for {
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			return 0, false, malformedAt(start, "unterminated string")
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, malformedAt(i, "unterminated escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return 0, false, malformedAt(i, "invalid \\u escape")
				}
				i += 6
			default:
				return 0, false, malformedAt(i, "invalid escape")
			}
		case c < 0x20:
			return 0, false, malformedAt(i, "control character in string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, false, errAt(ErrInvalidUTF8, i, "invalid UTF-8 in string")
			}
			i += n
		}
	}
}

func isHex4(h []byte) bool {
	for _, c := range h[:4] {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// scanNumber checks the JSON number starting at b[i] and returns its end.
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, malformedAt(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, malformedAt(start, "invalid number")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, malformedAt(start, "invalid number")
		}
		i = j
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, malformedAt(i, "invalid literal")
	}
	return i + len(lit), nil
}

// skipValue checks the JSON value starting at b[i] (no leading whitespace)
// and returns the index just past it.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, malformedAt(i, "missing value")
	}
	switch c := b[i]; c {
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case '{', '[':
		return skipComposite(b, i)
	case 't':
		return scanLiteral(b, i, "true")
	case 'f':
		return scanLiteral(b, i, "false")
	case 'n':
		return scanLiteral(b, i, "null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			return scanNumber(b, i)
		}
		return 0, malformedAt(i, "invalid character")
	}
}

// skipComposite checks an array or object without recursion. The nesting
// is tracked in a bit stack (1 = object), kept on the Go stack for the
// first 64 levels so that ordinary payloads allocate nothing.
func skipComposite(b []byte, i int) (int, error) {
	var small [1]uint64
	stack := small[:]
	depth := 0
	push := func(obj bool) bool {
		if depth >= maxDepth {
			return false
		}
		if depth/64 >= len(stack) {
			stack = append(stack, 0)
		}
		w := &stack[depth/64]
		if obj {
			*w |= 1 << (depth % 64)
		} else {
			*w &^= 1 << (depth % 64)
		}
		depth++
		return true
	}
	inObject := func() bool { return stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }

	// Each open brings us to "expect first member or close".
	for {
		// b[i] is '{' or '['.
		obj := b[i] == '{'
		if !push(obj) {
			return 0, malformedAt(i, "nesting too deep")
		}
		i = skipWS(b, i+1)
		if i < len(b) && (b[i] == '}' && obj || b[i] == ']' && !obj) {
			depth--
			i++
			goto afterValue
		}
	member:
		if inObject() {
			if i >= len(b) || b[i] != '"' {
				return 0, malformedAt(i, "expected object key")
			}
			var err error
			if i, _, err = scanString(b, i); err != nil {
				return 0, err
			}
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return 0, malformedAt(i, "expected ':'")
			}
			i = skipWS(b, i+1)
		}
		if i < len(b) && (b[i] == '{' || b[i] == '[') {
			continue // open a nested composite
		}
		{
			var err error
			if i, err = skipValue(b, i); err != nil {
				return 0, err
			}
		}
	afterValue:
		for {
			if depth == 0 {
				return i, nil
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, malformedAt(i, "unterminated array or object")
			}
			obj := inObject()
			switch {
			case b[i] == ',':
				i = skipWS(b, i+1)
				goto member
			case b[i] == '}' && obj, b[i] == ']' && !obj:
				depth--
				i++
			default:
				return 0, malformedAt(i, "expected ',' or closing bracket")
			}
		}
	}
}

// appendUnquoted appends the contents of the JSON string literal s (quotes
// included, already checked by scanString) with escapes resolved. Invalid
// surrogate escapes become U+FFFD, as encoding/json does.
func appendUnquoted(dst, s []byte) []byte {
	s = s[1 : len(s)-1]
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = utf16.DecodeRune(r, rune(hex4(s[i+2:])))
				}
				if r2 != utf8.RuneError {
					i += 6
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(h []byte) int {
	return hexVal(h[0])<<12 | hexVal(h[1])<<8 | hexVal(h[2])<<4 | hexVal(h[3])
}

// appendQuoted appends s as a JSON string the way JavaScript's JSON.stringify
// writes it: only '"', '\\' and control characters are escaped (\b \f \n \r
// \t in short form, the rest as lowercase \u00XX); everything else, including
// '<', '>', '&', U+2028 and U+2029 and all non-ASCII text, is copied as is.
// s must be valid UTF-8.
func appendQuoted(dst []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return dst, ErrInvalidUTF8
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hexDigits = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), nil
}

// validJSON reports whether b is exactly one JSON value, with optional
// surrounding whitespace.
func validJSON(b []byte) error {
	i := skipWS(b, 0)
	end, err := skipValue(b, i)
	if err != nil {
		return err
	}
	if skipWS(b, end) != len(b) {
		return malformedAt(end, "data after JSON value")
	}
	return nil
}
