package actor_test

import (
	"context"
	"testing"
	"time"
)

// waitBound bounds every wait of a concurrency test: a lost wake-up fails
// the test in seconds, naming what it waited for, instead of surfacing as
// the whole run's timeout. It is generous for a loaded two-core machine
// under -race; nothing here takes more than milliseconds when it works.
const waitBound = 10 * time.Second

// waitCtx is the test's deadline: producers put with it, so that a test
// that fails leaves no goroutine blocked behind it.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	t.Cleanup(cancel)
	return ctx
}

// await receives from c, failing the test if ctx ends first.
func await[T any](t *testing.T, ctx context.Context, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-ctx.Done():
		t.Fatalf("no %s within %v", what, waitBound)
		panic("unreachable")
	}
}

// awaitCall runs f (a Wait of some kind) and fails the test if it has not
// returned when ctx ends.
func awaitCall(t *testing.T, ctx context.Context, f func(), what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	await(t, ctx, done, what)
}
