package presence

import (
	"context"
	"iter"

	"github.com/phxgo/phxgo/phx"
)

// TypedEvent is an Event with its metas decoded into M: the metas that
// joined (New) and that left (Left). An Update has its new meta in New and
// its old one in Left; Sync and Skipped have neither. Event keeps
// everything else, the raw metas included.
type TypedEvent[M any] struct {
	Event
	Key  string
	New  []M
	Left []M
}

// DecodeEvent decodes the metas of ev into M. A meta that does not decode
// gives a *MetaError, with the event and the metas decoded so far.
func DecodeEvent[M any](ev Event) (TypedEvent[M], error) {
	te := TypedEvent[M]{Event: ev}
	var err error
	switch ev := ev.(type) {
	case Join:
		te.Key = ev.Key
		te.New, err = MetasAs[M](ev.New)
	case Leave:
		te.Key = ev.Key
		te.Left, err = MetasAs[M](ev.Left)
	case Update:
		te.Key = ev.Key
		te.Left, err = MetasAs[M](Presence{Metas: []Meta{ev.Old}})
		if err == nil {
			te.New, err = MetasAs[M](Presence{Metas: []Meta{ev.New}})
		}
	}
	return te, err
}

// TypedTracker is a Tracker whose events and lists come with their metas
// decoded into M, as they are taken; Events still gives the raw events.
// Its methods are those of Tracker, safe for concurrent use.
type TypedTracker[M any] struct {
	*Tracker
}

// TrackAs starts a Tracker on ch, as Track does, for metas of type M.
func TrackAs[M any](ctx context.Context, ch *phx.Channel, opts *TrackOptions) *TypedTracker[M] {
	return &TypedTracker[M]{Track(ctx, ch, opts)}
}

// All iterates like Tracker.All, decoding each event's metas. An event
// whose metas do not decode comes with a *MetaError, and iteration goes on.
func (t *TypedTracker[M]) All(ctx context.Context) iter.Seq2[TypedEvent[M], error] {
	return func(yield func(TypedEvent[M], error) bool) {
		for ev, err := range t.Tracker.All(ctx) {
			if ev == nil {
				yield(TypedEvent[M]{}, err)
				return
			}
			te, derr := DecodeEvent[M](ev)
			if derr != nil {
				err = derr
			}
			if !yield(te, err) {
				return
			}
		}
	}
}

// KeyMetas is one key of a state with its metas decoded.
type KeyMetas[M any] struct {
	Key   string
	Metas []M
}

// List returns every key with its metas decoded into M, in the JavaScript
// client's order. Keys whose metas do not decode are left out; the error
// is the first *MetaError.
func (t *TypedTracker[M]) List() ([]KeyMetas[M], error) {
	var first error
	var out []KeyMetas[M]
	for key, p := range t.State().All() {
		metas, err := MetasAs[M](p)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, KeyMetas[M]{Key: key, Metas: metas})
	}
	return out, first
}
