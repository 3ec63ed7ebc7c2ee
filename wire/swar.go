package wire

// Word-at-a-time (SWAR) helpers of the scanner in scan.go: each looks at
// eight bytes of a string or number at once.

// SWAR constants: every byte of the word set to the given value.
const (
	lsb   = 0x0101010101010101
	msb   = 0x8080808080808080
	quote = 0x2222222222222222 // '"'
	bslsh = 0x5c5c5c5c5c5c5c5c // '\\'
	space = 0x2020202020202020 // ' ', the first byte that needs no escape
)

// specialMask returns a word whose lowest set bit lies in the first of the
// 8 bytes of w (read little-endian, so in memory order) that needs
// attention inside a JSON string: a quote, a backslash, a control byte or
// a byte >= 0x80. It is zero when there is none. Bits above the lowest may
// be spurious (borrows propagate upwards); only the lowest is used.
func specialMask(w uint64) uint64 {
	q := w ^ quote
	s := w ^ bslsh
	// (w-space)|w has the high bit of a byte below 0x20 or from 0x80 up.
	return ((q-lsb)&^q | (s-lsb)&^s | (w - space) | w) & msb
}

// quoteMask returns a word with the high bit set in each byte of w that is
// a quote. Bits above the first quote may be spurious; the lowest is exact.
// With q = quoteMask(w), escapeMask(w)&(q&-q-1) == 0 says that no byte
// needing attention comes before the first quote: a spurious bit of either
// mask only ever lies above a true one. Taking the string's end from q
// rather than from the first special byte keeps the scan's chain of
// dependent instructions, from one token's position to the next, shorter.
func quoteMask(w uint64) uint64 {
	q := w ^ quote
	return (q - lsb) &^ q & msb
}

// nonDigitMask returns a word whose lowest set bit lies in the first byte
// of w that is not an ASCII digit, or zero. As in specialMask only the
// lowest bit is exact: a byte above '9' gets its high bit from adding 0x46,
// one below '0' from subtracting 0x30, and one from 0x80 up has it already.
func nonDigitMask(w uint64) uint64 {
	return ((w + 0x4646464646464646) | (w - 0x3030303030303030) | w) & msb
}

// The literals true and null as little-endian words.
const (
	litTrue = 't' | 'r'<<8 | 'u'<<16 | 'e'<<24
	litNull = 'n' | 'u'<<8 | 'l'<<16 | 'l'<<24
)

// escapeMask is specialMask without the quote: its lowest set bit lies in
// the first byte of w that is a backslash, a control byte or >= 0x80.
func escapeMask(w uint64) uint64 {
	s := w ^ bslsh
	return ((s-lsb)&^s | (w - space) | w) & msb
}

// advance returns i+n, for n up to 9 through a branch per value of n
// rather than an addition. The scan is a chain in which each token's end
// depends on the bytes loaded at its start; a predicted branch lets the
// processor run ahead on the next token before those bytes arrive, and
// payloads repeat the same shapes (lists of like objects) so that the
// prediction is mostly right.
func advance(i, n int) int {
	switch n {
	case 1:
		return i + 1
	case 2:
		return i + 2
	case 3:
		return i + 3
	case 4:
		return i + 4
	case 5:
		return i + 5
	case 6:
		return i + 6
	case 7:
		return i + 7
	case 8:
		return i + 8
	case 9:
		return i + 9
	}
	return i + n
}
