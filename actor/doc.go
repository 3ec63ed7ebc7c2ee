// Package actor is the small runtime phxgo's socket is built on: a goroutine
// that owns its state, a bounded typed mailbox, ask and tell that always give
// up when the caller's context or the actor is done, and a group that makes an
// owner wait for its children. It knows nothing of Phoenix.
//
// # Contract
//
//   - An actor is a Run(ctx) error that runs in the goroutine that calls it.
//   - It returns only when everything it started has stopped (use a Group).
//   - Cancelling its context is how it is stopped; the cancellation cause is
//     the stop reason. Close-style APIs are cancel, then wait.
//   - Start runs an actor in the background and returns a Proc whose Done
//     channel closes when Run has returned.
//
// # Mailboxes
//
// A Mailbox is bounded. Tell waits for room, but always selects on the
// caller's ctx and the actor's done channel, so no send can hang on a stopped
// actor. Ask sends a request carrying a reply channel of capacity 1, so the
// actor answers without ever blocking. Messages are a sealed sum type (an
// interface with an unexported method) handled with a type switch, never
// `any`.
//
// # Concurrency
//
// Two locks exist in this package: Group's sync.WaitGroup, and Queue's
// mutex, held only to append or swap its buffer, never while blocking.
// Proc, Mailbox, Queue (producer side) and Group methods are safe for
// concurrent use.
package actor
