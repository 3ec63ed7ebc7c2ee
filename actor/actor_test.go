package actor_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/phxgo/phxgo/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter is a minimal actor: a sealed message set handled in one select.
type counterMsg interface{ isCounterMsg() }

type incr struct{ n int }
type get struct{ reply chan<- int }

func (incr) isCounterMsg() {}
func (get) isCounterMsg()  {}

type counter struct {
	mb    actor.Mailbox[counterMsg]
	total int
}

func (c *counter) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case m := <-c.mb.C():
			switch m := m.(type) {
			case incr:
				c.total += m.n
			case get:
				m.reply <- c.total
			}
		}
	}
}

func startCounter(t *testing.T, size int) (*counter, *actor.Proc) {
	t.Helper()
	done := make(chan struct{})
	c := &counter{mb: actor.NewMailbox[counterMsg](size, done)}
	p := actor.Start(context.Background(), actor.Func(func(ctx context.Context) error {
		defer close(done)
		return c.Run(ctx)
	}))
	return c, p
}

func TestTellAsk(t *testing.T) {
	t.Parallel()
	c, p := startCounter(t, 4)
	ctx := waitCtx(t)
	for i := 1; i <= 10; i++ {
		if err := c.mb.Tell(ctx, incr{i}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := actor.Ask(ctx, c.mb, func(r chan<- int) counterMsg { return get{r} })
	if err != nil || got != 55 {
		t.Fatalf("Ask = %d, %v; want 55, nil", got, err)
	}
	reason := errors.New("bye")
	awaitCall(t, ctx, func() { err = p.StopWait(reason) }, "return of StopWait")
	if !errors.Is(err, reason) {
		t.Fatalf("StopWait = %v, want %v", err, reason)
	}
	if err := c.mb.Tell(ctx, incr{1}); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("Tell after stop = %v, want ErrStopped", err)
	}
	if c.mb.TryTell(incr{1}) {
		t.Fatal("TryTell after stop succeeded")
	}
	if _, err := actor.Ask(ctx, c.mb, func(r chan<- int) counterMsg { return get{r} }); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("Ask after stop = %v, want ErrStopped", err)
	}
}

func TestTellFullMailboxHonoursContext(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	defer close(done)
	mb := actor.NewMailbox[counterMsg](1, done) // nobody receives
	if !mb.TryTell(incr{1}) {
		t.Fatal("first TryTell failed")
	}
	if mb.TryTell(incr{1}) {
		t.Fatal("TryTell on a full mailbox succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := mb.Tell(ctx, incr{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Tell = %v, want context.Canceled", err)
	}
	if mb.Len() != 1 {
		t.Fatalf("Len = %d, want 1", mb.Len())
	}
}

func TestAskContextCancelled(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	defer close(done)
	mb := actor.NewMailbox[counterMsg](1, done) // taken but never answered
	ctx, cancel := context.WithCancel(waitCtx(t))
	go func() {
		<-mb.C()
		cancel()
	}()
	if _, err := actor.Ask(ctx, mb, func(r chan<- int) counterMsg { return get{r} }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ask = %v, want context.Canceled", err)
	}
}

func TestGroupWaitsForChildren(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var g actor.Group
	started := make(chan struct{}, 3)
	var procs []*actor.Proc
	for range 3 {
		procs = append(procs, g.Go(ctx, actor.Func(func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})))
	}
	wctx := waitCtx(t)
	for i := range 3 {
		await(t, wctx, started, fmt.Sprintf("start of child %d of 3", i+1))
	}
	for _, p := range procs {
		select {
		case <-p.Done():
			t.Fatal("child stopped before its context was cancelled")
		default:
		}
		if p.Err() != nil {
			t.Fatal("Err before Done is not nil")
		}
	}
	cancel()
	awaitCall(t, wctx, g.Wait, "return of Group.Wait after cancel")
	for _, p := range procs {
		if err := p.Wait(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("child err = %v", err)
		}
	}
}

func TestProcStopOnlyOne(t *testing.T) {
	t.Parallel()
	var g actor.Group
	ctx := context.Background()
	block := actor.Func(func(ctx context.Context) error { <-ctx.Done(); return context.Cause(ctx) })
	a, b := g.Go(ctx, block), g.Go(ctx, block)
	errA := errors.New("a")
	var err error
	awaitCall(t, waitCtx(t), func() { err = a.StopWait(errA) }, "return of StopWait")
	if !errors.Is(err, errA) {
		t.Fatalf("a = %v", err)
	}
	select {
	case <-b.Done():
		t.Fatal("stopping a stopped b")
	default:
	}
	b.Stop(nil)
	awaitCall(t, waitCtx(t), g.Wait, "return of Group.Wait after Stop")
	if !errors.Is(b.Err(), context.Canceled) {
		t.Fatalf("b = %v", b.Err())
	}
}

func Example() {
	done := make(chan struct{})
	c := &counter{mb: actor.NewMailbox[counterMsg](8, done)}
	p := actor.Start(context.Background(), actor.Func(func(ctx context.Context) error {
		defer close(done)
		return c.Run(ctx)
	}))
	ctx := context.Background()
	_ = c.mb.Tell(ctx, incr{2})
	_ = c.mb.Tell(ctx, incr{40})
	n, _ := actor.Ask(ctx, c.mb, func(r chan<- int) counterMsg { return get{r} })
	fmt.Println(n)
	fmt.Println(p.StopWait(errors.New("done")))
	// Output:
	// 42
	// done
}

func TestGroupSpawnWaitsAndStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var g actor.Group
	started := make(chan struct{}, 3)
	stopped := make(chan struct{}, 3)
	for range 3 {
		g.Spawn(ctx, actor.Func(func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done()
			stopped <- struct{}{}
			return ctx.Err()
		}))
	}
	wctx := waitCtx(t)
	for i := range 3 {
		await(t, wctx, started, fmt.Sprintf("start of child %d of 3", i+1))
	}
	if len(stopped) != 0 {
		t.Fatal("a child stopped before its context was cancelled")
	}
	cancel()
	awaitCall(t, wctx, g.Wait, "return of Group.Wait after cancel")
	if len(stopped) != 3 {
		t.Fatalf("Wait returned with %d of 3 children stopped", len(stopped))
	}
}
