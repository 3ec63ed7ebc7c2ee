package phxtest

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// presence is the server's tracker: presences per topic, each owned by the
// channel that tracked it. The lock is held while a diff is broadcast so
// that every subscriber sees diffs in the order of the state changes.
type presence struct {
	srv    *Server
	mu     sync.Mutex
	topics map[string][]*presEntry
	seq    atomic.Uint32
}

type presEntry struct {
	key   string
	meta  map[string]any // phx_ref (and phx_ref_prev after an update) included
	owner *chanProc
}

// ErrNotTracked is returned by Update and Untrack for a key the channel
// does not track.
var ErrNotTracked = errors.New("phxtest: presence not tracked")

// newRef makes a phx_ref: 16 URL-safe characters like Phoenix's.
func (pr *presence) newRef() string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint32(b[8:], pr.seq.Add(1))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func copyMeta(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func group(entries []*presEntry) map[string]any {
	out := map[string]any{}
	for _, e := range entries {
		g, _ := out[e.key].(map[string]any)
		if g == nil {
			g = map[string]any{"metas": []any{}}
			out[e.key] = g
		}
		g["metas"] = append(g["metas"].([]any), e.meta)
	}
	return out
}

// diffLocked broadcasts a diff that by changed (nil when no handler
// did): its own copy may be held behind the push's reply (see Interleave).
func (pr *presence) diffLocked(by *chanProc, topic string, joins, leaves []*presEntry) {
	body, err := marshal(map[string]any{"joins": group(joins), "leaves": group(leaves)})
	if err != nil {
		return
	}
	if by != nil {
		by.holdDiffs()
	}
	_ = pr.srv.pubsub.broadcast(pr.srv.ctx, topic, "presence_diff", body, false, nil, true)
}

func (pr *presence) track(p *chanProc, key string, meta map[string]any) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	m := copyMeta(meta)
	m["phx_ref"] = pr.newRef()
	e := &presEntry{key: key, meta: m, owner: p}
	pr.topics[p.topic] = append(pr.topics[p.topic], e)
	pr.diffLocked(p, p.topic, []*presEntry{e}, nil)
	return nil
}

func (pr *presence) find(p *chanProc, key string) int {
	for i, e := range pr.topics[p.topic] {
		if e.owner == p && e.key == key {
			return i
		}
	}
	return -1
}

func (pr *presence) update(p *chanProc, key string, meta map[string]any) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	i := pr.find(p, key)
	if i < 0 {
		return ErrNotTracked
	}
	old := pr.topics[p.topic][i]
	m := copyMeta(meta)
	m["phx_ref"] = pr.newRef()
	m["phx_ref_prev"] = old.meta["phx_ref"]
	e := &presEntry{key: key, meta: m, owner: p}
	pr.topics[p.topic][i] = e
	pr.diffLocked(p, p.topic, []*presEntry{e}, []*presEntry{old})
	return nil
}

func (pr *presence) untrack(p *chanProc, key string) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	i := pr.find(p, key)
	if i < 0 {
		return ErrNotTracked
	}
	es := pr.topics[p.topic]
	old := es[i]
	pr.topics[p.topic] = append(es[:i:i], es[i+1:]...)
	pr.diffLocked(p, p.topic, nil, []*presEntry{old})
	return nil
}

// untrackAll removes every presence p owns, in one diff.
func (pr *presence) untrackAll(p *chanProc) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var keep, gone []*presEntry
	for _, e := range pr.topics[p.topic] {
		if e.owner == p {
			gone = append(gone, e)
		} else {
			keep = append(keep, e)
		}
	}
	if len(gone) == 0 {
		return
	}
	if len(keep) == 0 {
		delete(pr.topics, p.topic)
	} else {
		pr.topics[p.topic] = keep
	}
	pr.diffLocked(nil, p.topic, nil, gone)
}

func (pr *presence) meta(p *chanProc, key string) map[string]any {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if i := pr.find(p, key); i >= 0 {
		return copyMeta(pr.topics[p.topic][i].meta)
	}
	return nil
}

func (pr *presence) list(topic string) map[string]any {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return group(pr.topics[topic])
}
