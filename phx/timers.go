package phx

import (
	"container/heap"
	"time"
)

// deadline is one entry of an actor's timer heap: a push, join, leave or
// ping timeout (p), a channel's rejoin (ca), or the hard close of a
// connection whose close handshake may hang (h). Each actor keeps a single
// *time.Timer armed for its earliest entry instead of one timer per push
// (a channel actor keeps none while its heap is empty).
type deadline struct {
	at  time.Time
	idx int // position in the heap; -1 when not in it
	p   *push
	ca  *chanActor
	h   *connHandle
}

type deadlines []*deadline

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].idx, d[j].idx = i, j
}
func (d *deadlines) Push(x any) {
	e := x.(*deadline)
	e.idx = len(*d)
	*d = append(*d, e)
}
func (d *deadlines) Pop() any {
	old := *d
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.idx = -1
	*d = old[:n-1]
	return e
}

// schedule (re)arms e at t.
func (d *deadlines) schedule(e *deadline, t time.Time) {
	e.at = t
	if e.idx >= 0 && e.idx < len(*d) && (*d)[e.idx] == e {
		heap.Fix(d, e.idx)
		return
	}
	heap.Push(d, e)
}

// cancel removes e if it is scheduled.
func (d *deadlines) cancel(e *deadline) {
	if e.idx >= 0 && e.idx < len(*d) && (*d)[e.idx] == e {
		heap.Remove(d, e.idx)
	}
	e.idx = -1
}

// popDue removes and returns the earliest entry if it is due at now.
func (d *deadlines) popDue(now time.Time) *deadline {
	if len(*d) == 0 || (*d)[0].at.After(now) {
		return nil
	}
	return heap.Pop(d).(*deadline)
}
