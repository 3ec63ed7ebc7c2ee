package presence_test

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
)

// genKeys are the presence keys of generated sequences: ordinary ids next to
// names that collide with Object.prototype, array-index keys (which a
// JavaScript object lists first), near misses of them, and unicode.
var genKeys = []string{
	"u1", "u2", "u3", "u4", "u5", "u6",
	"__proto__", "constructor", "toString", "hasOwnProperty", "",
	"ünï😀", "0", "1", "42", "01", "4294967294", "4294967295", "-1", "1.5",
	"a\"b\\c", "line\nbreak", " 7",
}

type genMeta struct {
	ref  string // the raw JSON of phx_ref, "" when the meta has none
	body string // the raw JSON of the meta object
}

// gen simulates a Phoenix server and the channel that stamps join refs, and
// writes the presence_state / presence_diff messages a client would see,
// including the awkward ones: rejoins with diffs before the state, changes
// made while the client was away, leaves of unknown refs, repeated joins,
// updates with phx_ref_prev, repeated JSON keys and odd phx_ref values.
type gen struct {
	r       *rand.Rand
	keys    []string // keys in the order the server first tracked them
	metas   map[string][]genMeta
	nextRef int
	joinRef string // the channel's join ref, "" when not joined
	nextJR  int
	queue   []genMsg // messages already decided, e.g. the state after a rejoin
	plain   bool     // only unique string refs, as a real server sends
}

type genMsg struct {
	Event   string
	JoinRef string
	Raw     string
}

func newGen(seed uint64, plain bool) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), metas: map[string][]genMeta{}, plain: plain}
	g.rejoin()
	return g
}

func (g *gen) rejoin() {
	g.nextJR++
	g.joinRef = strconv.Itoa(g.nextJR)
	// Real Phoenix: the diff of our own join arrives before the state.
	g.queue = append(g.queue, g.track(g.pickKey()))
	for range g.r.IntN(3) {
		g.queue = append(g.queue, g.randomDiff())
	}
	g.queue = append(g.queue, g.stateMsg())
}

func (g *gen) next() genMsg {
	if len(g.queue) > 0 {
		m := g.queue[0]
		g.queue = g.queue[1:]
		return m
	}
	switch n := g.r.IntN(100); {
	case n < 3:
		// Connection lost: changes happen unseen, then a rejoin.
		g.joinRef = ""
		for range g.r.IntN(5) {
			g.randomDiff()
		}
		if g.r.IntN(3) == 0 {
			// A diff that reaches the client while it is not joined.
			m := g.randomDiff()
			g.rejoin()
			return m
		}
		g.rejoin()
		return g.next()
	case n < 6:
		return g.stateMsg()
	case n < 8:
		// A state that disagrees with what the diffs said (a newer snapshot).
		g.randomDiff()
		return g.stateMsg()
	}
	return g.randomDiff()
}

func (g *gen) pickKey() string { return genKeys[g.r.IntN(len(genKeys))] }

func (g *gen) newRef() string {
	g.nextRef++
	n := g.r.IntN(200)
	if g.plain {
		n = 199
	}
	switch {
	case n == 0:
		return "null"
	case n == 1:
		return "" // no phx_ref at all
	case n == 2:
		return `{"o":1}`
	case n < 6:
		return strconv.Itoa(g.nextRef)
	case n == 6:
		return strconv.Itoa(g.nextRef) + ".0"
	}
	return strconv.Quote("r" + strconv.Itoa(g.nextRef))
}

func (g *gen) newMeta(prev string) genMeta {
	ref := g.newRef()
	var parts []string
	if ref != "" {
		parts = append(parts, `"phx_ref":`+ref)
	}
	if prev != "" {
		parts = append(parts, `"phx_ref_prev":`+prev)
	}
	parts = append(parts, `"n":`+strconv.Itoa(g.r.IntN(1000)))
	switch g.r.IntN(8) {
	case 0:
		parts = append(parts, `"device":"phöne é\n"`)
	case 1:
		if g.r.IntN(20) == 0 {
			parts = append(parts, `"device":"ph\u00f6ne \/ \ud83d\ude00"`)
		}
	}
	g.r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return genMeta{ref: ref, body: "{" + strings.Join(parts, ",") + "}"}
}

func (g *gen) addMeta(key string, m genMeta) {
	if _, ok := g.metas[key]; !ok {
		g.keys = append(g.keys, key)
	}
	g.metas[key] = append(g.metas[key], m)
}

func (g *gen) removeMeta(key string, i int) genMeta {
	ms := g.metas[key]
	m := ms[i]
	g.metas[key] = append(ms[:i:i], ms[i+1:]...)
	if len(g.metas[key]) == 0 {
		delete(g.metas, key)
		for j, k := range g.keys {
			if k == key {
				g.keys = append(g.keys[:j:j], g.keys[j+1:]...)
				break
			}
		}
	}
	return m
}

// some returns a random tracked key and meta index.
func (g *gen) some() (string, int, bool) {
	if len(g.keys) == 0 {
		return "", 0, false
	}
	k := g.keys[g.r.IntN(len(g.keys))]
	return k, g.r.IntN(len(g.metas[k])), true
}

type side = []struct {
	key   string
	metas []genMeta
}

func (g *gen) track(key string) genMsg {
	m := g.newMeta("")
	g.addMeta(key, m)
	return g.diffMsg(side{{key, []genMeta{m}}}, nil)
}

func (g *gen) randomDiff() genMsg {
	switch n := g.r.IntN(100); {
	case n < 35:
		return g.track(g.pickKey())
	case n < 55:
		k, i, ok := g.some()
		if !ok {
			return g.track(g.pickKey())
		}
		m := g.removeMeta(k, i)
		return g.diffMsg(nil, side{{k, []genMeta{m}}})
	case n < 70:
		// Presence.update: new meta with phx_ref_prev, old meta leaves.
		k, i, ok := g.some()
		if !ok || g.metas[k][i].ref == "" {
			return g.track(g.pickKey())
		}
		old := g.removeMeta(k, i)
		nm := g.newMeta(old.ref)
		g.addMeta(k, nm)
		return g.diffMsg(side{{k, []genMeta{nm}}}, side{{k, []genMeta{old}}})
	case n < 80:
		// A batch, as when a node goes down or several sockets change at once.
		// Phoenix groups a batch by key: a key appears at most once on each
		// side, with all its metas.
		var joins, leaves side
		for range 1 + g.r.IntN(4) {
			if g.r.IntN(2) == 0 {
				k := g.pickKey()
				m := g.newMeta("")
				g.addMeta(k, m)
				joins = addToSide(joins, k, m)
			} else if k, i, ok := g.some(); ok {
				leaves = addToSide(leaves, k, g.removeMeta(k, i))
			}
		}
		return g.diffMsg(joins, leaves)
	case n < 86:
		// Leaves of refs nobody knows, on known and unknown keys.
		return g.diffMsg(nil, side{{g.pickKey(), []genMeta{g.newMeta("")}}})
	case n < 92:
		// A join of metas that are already known.
		k, _, ok := g.some()
		if !ok {
			return g.track(g.pickKey())
		}
		return g.diffMsg(side{{k, append([]genMeta(nil), g.metas[k]...)}}, nil)
	case n < 95:
		// A join with no metas at all.
		return g.diffMsg(side{{g.pickKey(), nil}}, nil)
	}
	// Two metas joining one key together.
	k := g.pickKey()
	a, b := g.newMeta(""), g.newMeta("")
	g.addMeta(k, a)
	g.addMeta(k, b)
	return g.diffMsg(side{{k, []genMeta{a, b}}}, nil)
}

// addToSide adds m to key's metas in s, or key with m when s lacks it.
func addToSide(s side, key string, m genMeta) side {
	for i := range s {
		if s[i].key == key {
			s[i].metas = append(s[i].metas, m)
			return s
		}
	}
	return append(s, struct {
		key   string
		metas []genMeta
	}{key, []genMeta{m}})
}

func (g *gen) diffMsg(joins, leaves side) genMsg {
	j, l := g.object(joins), g.object(leaves)
	raw := `{"joins":` + j + `,"leaves":` + l + `}`
	if g.r.IntN(2) == 0 {
		raw = `{"leaves":` + l + `,"joins":` + j + `}`
	}
	return genMsg{Event: "presence_diff", JoinRef: g.joinRef, Raw: raw}
}

func (g *gen) stateMsg() genMsg {
	var s side
	for _, k := range g.keys {
		ms := append([]genMeta(nil), g.metas[k]...)
		g.r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		s = append(s, struct {
			key   string
			metas []genMeta
		}{k, ms})
	}
	g.r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return genMsg{Event: "presence_state", JoinRef: g.joinRef, Raw: g.object(s)}
}

// object writes {key: {"metas": [...]}, ...}, now and then with fetch/2
// style fields next to metas, or with a key written twice (JSON.parse keeps
// the last value at the first key's place).
func (g *gen) object(s side) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		if g.r.IntN(40) == 0 {
			b.WriteString(quoteKey(e.key) + `:{"metas":[{"phx_ref":"shadowed"}]},`)
		}
		b.WriteString(quoteKey(e.key))
		b.WriteString(`:{`)
		user := `"user":{"name":"n` + strconv.Itoa(g.r.IntN(3)) + `"}`
		field := g.r.IntN(8)
		if field == 0 && g.r.IntN(25) == 0 {
			b.WriteString(user + ",")
		}
		b.WriteString(`"metas":[`)
		for j, m := range e.metas {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.body)
		}
		b.WriteString(`]`)
		if field == 1 {
			b.WriteString("," + user)
		}
		b.WriteString(`}`)
	}
	b.WriteByte('}')
	return b.String()
}

func quoteKey(k string) string {
	b, _ := json.Marshal(k)
	return string(b)
}
