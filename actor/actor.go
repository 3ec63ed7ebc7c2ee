package actor

import (
	"context"
	"errors"
	"sync"
)

// ErrStopped is returned by Tell and Ask when the receiving actor has stopped
// before it took the message.
var ErrStopped = errors.New("actor: stopped")

// Actor is the one contract every actor fulfils. Run runs in the goroutine
// that calls it, owns the actor's state, and returns only after everything it
// started has stopped. Cancelling ctx is how an actor is stopped; the cause of
// the cancellation (context.Cause) is the stop reason.
type Actor interface {
	Run(ctx context.Context) error
}

// Func adapts a function to the Actor interface.
type Func func(ctx context.Context) error

// Run calls f(ctx).
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// Proc is a running actor started by Start or Group.Go.
//
// Concurrency: every method is safe to call from any goroutine, any number of
// times. Stop does not wait; Wait blocks until the actor returned.
type Proc struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error // written once before done is closed
}

// Done is closed when the actor's Run has returned.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns what Run returned. It is valid only after Done is closed and
// returns nil before.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop cancels the actor's context with reason as its cause (context.Canceled
// when reason is nil). It does not wait.
func (p *Proc) Stop(reason error) { p.cancel(reason) }

// Wait blocks until the actor has returned, or ctx is done, and returns what
// Run returned (or ctx.Err()).
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopWait stops the actor with reason and waits for it to return. It never
// blocks longer than the actor takes to honour its context.
func (p *Proc) StopWait(reason error) error {
	p.cancel(reason)
	<-p.done
	return p.err
}

// Start runs a in a new goroutine with a context derived from ctx and returns
// its handle. The caller owns the returned Proc and must eventually stop or
// wait for it (or start it in a Group, which does so for it).
func Start(ctx context.Context, a Actor) *Proc {
	ctx, cancel := context.WithCancelCause(ctx)
	p := &Proc{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer cancel(nil)
		p.err = a.Run(ctx)
	}()
	return p
}

// Group owns a set of goroutines and waits for all of them. It is the way an
// actor keeps its promise that Run returns only after its children stopped:
//
//	func (a *parent) Run(ctx context.Context) error {
//		var g actor.Group
//		defer g.Wait()
//		g.Go(ctx, child)
//		...
//	}
//
// The zero Group is ready to use. Go and Wait are safe to call concurrently;
// after Wait has returned once, Go may start new members again. Wait does not
// cancel anything: members stop when the context they were given is cancelled.
type Group struct {
	wg sync.WaitGroup
}

// Go starts a in a new goroutine as a member of g, with a context derived from
// ctx, and returns its handle.
func (g *Group) Go(ctx context.Context, a Actor) *Proc {
	g.wg.Add(1)
	ctx, cancel := context.WithCancelCause(ctx)
	p := &Proc{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer g.wg.Done()
		defer close(p.done)
		defer cancel(nil)
		p.err = a.Run(ctx)
	}()
	return p
}

// Spawn runs a in a new goroutine as a member of g with ctx itself: no
// context or handle of its own, so that an owner of many small children
// (one per channel of a socket) pays only for the goroutine. Such children
// stop when ctx is cancelled or by themselves; what Run returns is
// discarded.
func (g *Group) Spawn(ctx context.Context, a Actor) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		_ = a.Run(ctx)
	}()
}

// Wait blocks until every member started with Go or Spawn has returned.
func (g *Group) Wait() { g.wg.Wait() }
