package wire

import (
	"encoding/binary"
	"math/bits"
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

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && isWS(b[i]) {
		i++
	}
	return i
}

// scanString checks the JSON string starting at b[i] == '"' and returns the
// index just past its closing quote and whether it contains escapes. It
// checks escapes (including the four hex digits of \u) and UTF-8 validity;
// lone surrogate escapes such as \ud800 are accepted, as JSON's grammar does.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	return scanStringAt(b, i, i+1)
}

// scanStringAt is scanString for the string opened at b[start], resumed at
// b[i] after plain bytes only.
func scanStringAt(b []byte, start, i int) (end int, escaped bool, err error) {
	for {
		// Skip plain bytes 16 and then 8 at a time, then land on the first
		// special one.
		for i+16 <= len(b) && specialMask(binary.LittleEndian.Uint64(b[i:i+8]))|specialMask(binary.LittleEndian.Uint64(b[i+8:i+16])) == 0 {
			i += 16
		}
		for i+8 <= len(b) {
			m := specialMask(binary.LittleEndian.Uint64(b[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, false, malformedAt(start, "unterminated string")
		}
		switch c := b[i]; {
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
		default: // >= 0x80
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, false, errAt(ErrInvalidUTF8, i, "invalid UTF-8 in string")
			}
			i += n
		}
	}
}

// strPlain marks the bytes that need no attention inside a JSON string.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

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

// skipComposite checks an array or object starting at b[i] without
// recursion. The kinds of the innermost 64 open levels live in one word,
// bit 0 for the innermost (1 = object); outer words are saved in a
// kindStack. Few live values keep the hot loop in registers: the scan is a
// chain of dependent loads from one token to the next, and a spill in it
// costs more than the work around it.
func skipComposite(b []byte, i int) (int, error) {
	var saved kindStack
	var kinds uint64
	depth := 0
	var err error
	var msg string // why the input is malformed at b[i]
open: // b[i] is '{' or '['
	if depth >= maxDepth {
		msg = "nesting too deep"
		goto fail
	}
	if depth&63 == 0 && depth > 0 {
		saved.push(kinds)
	}
	kinds <<= 1
	if b[i] == '{' {
		kinds |= 1
	}
	depth++
	i++
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	// '}' is ']' + 0x20: the closing bracket of the innermost level.
	if i < len(b) && b[i] == ']'|byte(kinds&1)<<5 {
		i++
		goto closed
	}
elem: // expecting a member (object) or an element (array) at b[i]
	if kinds&1 == 0 {
		goto value
	}
	if i >= len(b) || b[i] != '"' {
		msg = "expected object key"
		goto fail
	}
key: // b[i] is the quote opening a key
	// A short key whose closing quote, and usually the ':' after it,
	// lie in the next 8 bytes is done here from one word.
	if i+9 <= len(b) {
		w := binary.LittleEndian.Uint64(b[i+1 : i+9])
		if q := quoteMask(w); q != 0 && escapeMask(w)&(q&-q-1) == 0 {
			// The quote's high bit is bit z; the byte after it starts
			// at bit z+1 (none when the quote is the last byte).
			z := bits.TrailingZeros64(q) & 63
			i = advance(i, 2+z>>3)
			if byte(w>>z>>1) == ':' {
				i++
				goto value
			}
			goto keyDone
		}
	}
	if i, _, err = scanString(b, i); err != nil {
		return 0, err
	}
keyDone:
	if i < len(b) && b[i] == ':' {
		i++
	} else {
		if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
			msg = "expected ':'"
			goto fail
		}
		i++
	}
value:
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if i >= len(b) {
		msg = "missing value"
		goto fail
	}
	switch b[i] {
	case '{', '[':
		goto open
	case '"':
		// Plain strings up to 48 bytes, such as names and a chat
		// message's text, are done here a word at a time; longer ones,
		// and the first escape, control or non-ASCII byte, go on in
		// scanStringAt.
		j := i + 1
		for end := j + 48; j+8 <= len(b) && j < end; j += 8 {
			w := binary.LittleEndian.Uint64(b[j : j+8])
			q, e := quoteMask(w), escapeMask(w)
			if q != 0 && e&(q&-q-1) == 0 {
				i = advance(j, 1+bits.TrailingZeros64(q)>>3)
				goto next
			}
			if e != 0 {
				break
			}
		}
		if i, _, err = scanStringAt(b, i, j); err != nil {
			return 0, err
		}
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		// A plain integer followed by a delimiter needs no more checks.
		j := i + 1
		for j+8 <= len(b) {
			if m := nonDigitMask(binary.LittleEndian.Uint64(b[j : j+8])); m != 0 {
				j = advance(j, bits.TrailingZeros64(m)>>3)
				goto digitsDone
			}
			j += 8
		}
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	digitsDone:
		if j < len(b) && b[j] == '.' {
			// A fraction with at most 7 digits, also common, is done
			// from one word too.
			if j+9 <= len(b) {
				m := nonDigitMask(binary.LittleEndian.Uint64(b[j+1 : j+9]))
				if n := bits.TrailingZeros64(m) >> 3; n > 0 && m != 0 {
					j = advance(j, 1+n)
				}
			}
		}
		if j < len(b) && (b[j] == ',' || b[j] == '}' || b[j] == ']') {
			i = j
			goto next
		}
		if i, err = scanNumber(b, i); err != nil {
			return 0, err
		}
	case 't':
		if i+4 <= len(b) && binary.LittleEndian.Uint32(b[i:i+4]) == litTrue {
			i += 4
			goto next
		}
		msg = "invalid literal"
		goto fail
	case 'n':
		if i+4 <= len(b) && binary.LittleEndian.Uint32(b[i:i+4]) == litNull {
			i += 4
			goto next
		}
		msg = "invalid literal"
		goto fail
	case '-', '0':
		if i, err = scanNumber(b, i); err != nil {
			return 0, err
		}
	default:
		if i, err = skipValue(b, i); err != nil {
			return 0, err
		}
	}
next: // after a value inside the innermost level
	// The next member of an object without whitespace: the commonest case.
	if i+2 <= len(b) && binary.LittleEndian.Uint16(b[i:i+2]) == ','|'"'<<8 && kinds&1 != 0 {
		i++
		goto key
	}
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if i >= len(b) {
		msg = "unterminated array or object"
		goto fail
	}
	if c := b[i]; c == ',' {
		i++
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		goto elem
	} else if c == ']'|byte(kinds&1)<<5 {
		i++
		goto closed
	}
	msg = "expected ',' or closing bracket"
	goto fail
closed: // the innermost level has just been closed
	depth--
	if depth == 0 {
		return i, nil
	}
	kinds >>= 1
	if depth&63 == 0 {
		kinds = saved.pop()
	}
	goto next
fail: // one cold exit keeps error construction out of the hot loop
	return 0, malformedAt(i, msg)
}

// kindStack saves the words of level kinds that skipComposite shifts out
// past 64 levels of nesting. The first 320 levels fit in the array, so that
// ordinary payloads allocate nothing. It stays in memory, out of the
// registers the scan loop needs.
type kindStack struct {
	n     int
	small [4]uint64
	more  []uint64
}

func (s *kindStack) push(w uint64) {
	if s.n < len(s.small) {
		s.small[s.n] = w
	} else {
		s.more = append(s.more, w)
	}
	s.n++
}

func (s *kindStack) pop() uint64 {
	s.n--
	if s.n < len(s.small) {
		return s.small[s.n]
	}
	w := s.more[len(s.more)-1]
	s.more = s.more[:len(s.more)-1]
	return w
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
