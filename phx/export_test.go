package phx

import (
	"context"
	"testing"
)

// Requests that only tests send to the actors. They reach the actors through
// sockRun and chanRun, so the production message sets stay free of them.

// debugMsg asks for the sizes of the socket actor's bookkeeping.
type debugMsg struct{ reply chan debugInfo }

type debugInfo struct {
	pending, deadlines, chans, topics, buffered, closing int
	actors                                               []*chanActor
}

func (debugMsg) isSockMsg() {}

func (m debugMsg) runOn(a *sockActor) {
	d := debugInfo{pending: len(a.pending), deadlines: len(a.dls), chans: len(a.chans), topics: len(a.routes), closing: len(a.closing)}
	for ca := range a.chans {
		d.actors = append(d.actors, ca)
	}
	m.reply <- d
}

// testFuncMsg runs f on the socket actor.
type testFuncMsg struct{ f func(*sockActor) }

func (testFuncMsg) isSockMsg() {}

func (m testFuncMsg) runOn(a *sockActor) { m.f(a) }

// chanDebugReq asks for the sizes of the channel actor's bookkeeping.
type chanDebugReq struct{ reply chan debugInfo }

func (chanDebugReq) isChanMsg() {}

func (m chanDebugReq) runOn(ca *chanActor) { ca.debug(m.reply) }

func (ca *chanActor) debug(reply chan debugInfo) {
	var d debugInfo
	if b := ca.b; b != nil {
		d = debugInfo{pending: len(b.pending), deadlines: len(b.dls), buffered: len(b.buf)}
		if b.tidyDL.idx >= 0 {
			d.deadlines-- // housekeeping, not a timeout of the channel's
		}
	}
	reply <- d
}

// chanFuncReq runs f on the channel actor.
type chanFuncReq struct{ f func(*chanActor) }

func (chanFuncReq) isChanMsg() {}

func (m chanFuncReq) runOn(ca *chanActor) { m.f(ca) }

// buffered is what a channel's subscription holds for its consumer: C and
// its owner's queue, asked of the owner.
func buffered(t testing.TB, sub *Subscription) int {
	t.Helper()
	r := make(chan int, 1)
	if err := sub.ca.mb.Tell(context.Background(), chanFuncReq{f: func(*chanActor) { r <- len(sub.c) + int(sub.n) }}); err != nil {
		t.Fatal(err)
	}
	return <-r
}

// LeaseOf is the reusable buffer a lent message's payload is in, nil for
// an owned payload.
func LeaseOf(m Message) any {
	if m.lease == nil {
		return nil
	}
	return m.lease
}
