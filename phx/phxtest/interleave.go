package phxtest

import (
	"hash/fnv"
	"os"
	"strconv"
)

// Interleave chooses the order of two frames for one client where real
// Phoenix sends them from two processes and so in either order. There are
// two such places:
//
//   - A push's reply and the presence_diff of a Track, Update or Untrack
//     its handler made while handling it (Phoenix: the channel process
//     replies, the presence tracker broadcasts the diff). The fixed order
//     is the diff first; swapped, the reply comes first and the diff, with
//     any diff that follows it, right after.
//   - Within one long-poll POST batch, the replies to pushes and the reply
//     to a heartbeat that follows them (Phoenix: channel processes answer
//     the pushes, the socket process the heartbeat). The fixed order is
//     the one recorded from Phoenix, pushes first (replies a handler makes
//     later through a ReplyRef aside); swapped, the heartbeat's reply comes
//     first.
//
// A client must accept both orders; running its tests under
// InterleaveFixed and InterleaveSwapped, or InterleaveSeeded with several
// seeds, shows whether it does.
type Interleave int

// The interleavings.
const (
	// InterleaveDefault reads the environment variable PHXTEST_INTERLEAVE:
	// "fixed" or unset is InterleaveFixed, "swapped" InterleaveSwapped, and
	// any other value InterleaveSeeded with that value as the seed (a
	// number is used as it is, other text is hashed). It lets a whole test
	// suite run under another order without changing its code.
	InterleaveDefault Interleave = iota
	// InterleaveFixed always gives the fixed order.
	InterleaveFixed
	// InterleaveSwapped always gives the other order.
	InterleaveSwapped
	// InterleaveSeeded chooses at every occurrence, from a sequence that
	// Config.InterleaveSeed and the connection's ID determine: a test with
	// one client gets the same choices on every run with the same seed.
	InterleaveSeeded
)

// interleaveEnv is the environment variable InterleaveDefault reads.
const interleaveEnv = "PHXTEST_INTERLEAVE"

func interleaveFromEnv() (Interleave, uint64) {
	v := os.Getenv(interleaveEnv)
	switch v {
	case "", "fixed":
		return InterleaveFixed, 0
	case "swapped":
		return InterleaveSwapped, 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		return InterleaveSeeded, n
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(v))
	return InterleaveSeeded, h.Sum64()
}

// splitmix64 is a small, well-mixed hash of a counter: enough to turn
// (seed, connection, occurrence) into a reproducible coin.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// swap decides one occurrence on c: true gives the swapped order.
func (c *Conn) swap() bool {
	n := c.interleaved.Add(1)
	var s bool
	switch c.srv.cfg.Interleave {
	case InterleaveSwapped:
		s = true
	case InterleaveSeeded:
		s = splitmix64(c.srv.cfg.InterleaveSeed^uint64(c.id)<<40^uint64(n))&1 == 1
	}
	if s {
		c.swapped.Add(1)
	}
	return s
}

// Interleavings reports how many times an order was chosen on this
// connection (see Interleave) and how many of those chose the swapped one.
func (c *Conn) Interleavings() (chosen, swapped int64) {
	return c.interleaved.Load(), c.swapped.Load()
}
